"""Run an SQL project on Spark: models in dependency order, views as temp views, tables as Parquet.

As in dbt, a model that fails does not stop the others: what reads it is skipped, and each model's result says
whether it was built, failed or skipped (:class:`ModelRun`).

A ``table`` model is written atomically under ``<features_dir>/<model>/`` and then read back from there by its
dependants, so it is computed once. A model with ``cache=true`` is cached before its first dependant runs and
released as soon as the last table that needs it has been written. A table's row count, and any aggregates the
caller asks for (the data tests' counts), are observed metrics of its write: computed as the rows go by, not by
reading the table again.
"""

from __future__ import annotations

import functools
import logging
import shutil
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import CompilationError, ConfigError, ModelExecutionError, RetrainError
from jobs.spark.atomic import atomic_directory, write_manifest
from jobs.spark.concurrent import run_concurrently
from jobs.spark.messages import first_line
from jobs.spark.remote import server_gone
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.dbtcontext import Column
from jobs.sqlproject.graph import downstream_edges, levels, reachable
from jobs.sqlproject.incremental import build_incremental, manifest_schema, table_manifest
from jobs.sqlproject.project import SqlProject
from jobs.sqlproject.render import RenderedModel
from jobs.sqlproject.seeds import register_seeds
from jobs.sqlproject.sources import SourceReader, empty_reader, register_sources
from jobs.sqlproject.sparkerrors import model_error

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from jobs.run_context import RunContext

log = logging.getLogger(__name__)

ROWS_METRIC = "__rows"  # the observed row count of a table's write


#: what happened to a model: built, failed, or not run because a model it reads failed (dbt's words)
SUCCESS, ERROR, SKIPPED = "success", "error", "skipped"


@dataclass(frozen=True)
class ModelRun:
    """What happened to one model; small enough for XCom and the run report."""

    name: str
    materialized: str
    path: str | None
    rows: int | None
    seconds: float
    status: str = SUCCESS
    #: why it failed or was skipped
    message: str | None = None
    #: an incremental model's rows written this run (the others came from its previous output)
    new_rows: int | None = None
    #: the ds of the earlier output an incremental model was built on; None for a full refresh
    built_on: str | None = None

    def incremental_build(self) -> str:
        """How an incremental model was built, for its log and console line: on which earlier output, and how many
        rows this run wrote. Not "new rows": ``insert_overwrite`` without ``partition_by`` writes its whole table,
        and a merge that compares writes its new and changed rows. Empty for other models."""
        if self.new_rows is None:
            return ""
        if self.built_on is None:
            return " (full refresh)"
        return f" ({self.new_rows:,} written, on the output of {self.built_on})"


@dataclass(frozen=True)
class ModelRuns:
    """The models one run built, failed or skipped, in run order."""

    ds: str
    models: tuple[ModelRun, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ds": self.ds, "models": [asdict(m) for m in self.models]}

    def rows(self, name: str) -> int | None:
        return next((m.rows for m in self.models if m.name == name), None)

    def with_status(self, status: str) -> list[ModelRun]:
        return [m for m in self.models if m.status == status]


class _Failed:
    """A model's failure, kept to report once the run has gone as far as it can."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class SqlRunner:
    """Runs the models of one compiled project on one Spark session; the constructor only stores."""

    def __init__(self, spark: SparkSession, compiled: CompiledProject, features_dir: Path | None = None) -> None:
        self.spark = spark
        self.compiled = compiled
        self.features_dir = features_dir
        self.observe: Mapping[str, Mapping[str, str]] = {}
        self.observed: dict[str, dict[str, Any]] = {}
        #: the models (selected or read by one) that failed in the last run or check, in run order, with why
        self.failures: dict[str, Exception] = {}
        #: the models not run because one they read failed: model -> that one
        self._skipped: dict[str, str] = {}

    @property
    def project(self) -> SqlProject:
        return self.compiled.project

    @property
    def ctx(self) -> RunContext:
        return self.compiled.ctx

    @property
    def rendered(self) -> Mapping[str, RenderedModel]:
        return self.compiled.rendered

    @property
    def graph(self) -> Mapping[str, tuple[str, ...]]:
        return self.compiled.graph

    @property
    def order(self) -> tuple[str, ...]:
        return self.compiled.order

    # -- what to run --------------------------------------------------------------------------------------------

    def table_path(self, name: str) -> Path:
        if self.features_dir is None:
            raise ConfigError("This runner has no features directory; it can check models but not build tables.")
        return self.features_dir / name

    def _with_ancestors(
        self, selectors: Sequence[str] | None, exclude: Sequence[str] | None = None
    ) -> tuple[set[str], set[str]]:
        """The selected models, and those plus every model they read (directly or not)."""
        chosen = self.compiled.selected_names(selectors, exclude)
        return chosen, self.compiled.with_ancestors(chosen)

    def _register_inputs(self, reader: SourceReader) -> None:
        register_sources(self.spark, self.project.sources.values(), reader)
        register_seeds(self.spark, self.project)
        for previous in self.compiled.incremental.values():  # {{ this }} of the incremental models
            previous.read(self.spark).createOrReplaceTempView(previous.view)

    # -- running ------------------------------------------------------------------------------------------------

    def dataframe(self, rendered: RenderedModel, doing: str = "could not analyse") -> DataFrame:
        """``spark.sql`` on the rendered model: analysis happens here, so errors point at the model's lines."""
        from pyspark.errors import PySparkException

        try:
            return self.spark.sql(rendered.sql)
        except PySparkException as e:
            raise model_error(self.project, rendered, e, doing) from None

    def for_run(self, rendered: RenderedModel) -> RenderedModel:
        """``rendered`` as it runs: a model whose SQL depends on ``execute`` or on its inputs' columns
        (``dbt_utils.star``) is rendered again, now that its inputs are views Spark can describe."""
        if not rendered.executes:
            return rendered
        again = self.compiled.renderer.render(rendered.model, columns=self.columns_of)
        new = sorted({*again.refs, *again.sources, *again.seeds} - {*rendered.refs, *rendered.sources, *rendered.seeds})
        if new:
            raise CompilationError(
                f"{rendered.name} ({self.project.relative(rendered.model.path)}) reads {', '.join(new)} only when it "
                "runs (inside {% if execute %}): the run order cannot know it. Call ref()/source() outside that block."
            )
        return again

    def columns_of(self, view: str) -> list[Column]:
        """What ``adapter.get_columns_in_relation`` gives a model as it runs: the view's columns, from Spark."""
        from pyspark.errors import PySparkException

        try:
            fields = self.spark.table(view).schema.fields
        except PySparkException as e:
            raise CompilationError(
                f"adapter.get_columns_in_relation({view!r}): Spark knows no view {view!r}: {first_line(e)}"
            ) from None
        return [Column(f.name, f.dataType.simpleString()) for f in fields]

    def check(
        self,
        selectors: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        raise_failures: bool = True,
    ) -> list[tuple[RenderedModel, DataFrame]]:
        """Analyse the selected models (and what they ref) against empty sources: no data read or written.

        Columns with a ``data_type`` in the model's properties must come out with that type. A model that fails is
        kept in :attr:`failures` and what reads it is not analysed; the others are. With ``raise_failures``, the
        first failure is raised at the end.
        """
        chosen, needed = self._with_ancestors(selectors, exclude)
        self._register_inputs(empty_reader)
        self.failures, self._skipped = {}, {}
        checked = []
        for name in self.order:
            if name not in needed:
                continue
            if self._skips(name):
                continue
            try:
                rendered = self.for_run(self.rendered[name])
                df = self.dataframe(rendered)
                self._check_partition_columns(rendered, df)
                self._check_data_types(rendered, df)
            except RetrainError as e:
                self.failures[name] = e
                continue
            df.createOrReplaceTempView(name)
            if name in chosen:
                checked.append((rendered, df))
        if raise_failures:
            self.raise_first_failure()
        return checked

    def _skips(self, name: str) -> bool:
        """True when ``name`` cannot run: it failed to render, or a model it reads failed (then it is skipped)."""
        blocker = self._blocked(name)
        if blocker is not None and blocker != name:
            self._skipped[name] = blocker
        return blocker is not None

    def _blocked(self, name: str) -> str | None:
        """The model ``name`` reads that failed or could not run (itself, when it could not be rendered)."""
        if name in self.compiled.problems:
            self.failures.setdefault(name, self.compiled.problems[name])
            return name
        return next((d for d in self.graph.get(name, ()) if d in self.failures or d in self._skipped), None)

    def raise_first_failure(self) -> None:
        """Raise the first failure in run order, if any (the error a run that stopped there would have raised)."""
        for name in self.order:
            if name in self.failures:
                raise self.failures[name]

    def run(
        self,
        reader: SourceReader,
        selectors: Sequence[str] | None = None,
        keep_cache: bool = False,
        exclude: Sequence[str] | None = None,
        threads: int = 1,
        observe: Mapping[str, Mapping[str, str]] | None = None,
        raise_failures: bool = True,
    ) -> ModelRuns:
        """Run the selected models; unselected ancestors are views again, or tables read from earlier output.

        Tables that do not depend on each other are built at the same time, up to ``threads`` at once (dbt's
        ``--threads``): each Spark job leaves cores idle while it plans, starts tasks and commits files, and the
        others fill them. As in dbt, a model that fails does not stop the run: what reads it is skipped, the rest is
        built (each table's output is atomic), and the result says which is which. With ``raise_failures``, the
        first failure in run order is raised at the end; else it is in :attr:`failures`.
        ``keep_cache`` keeps cached models until :meth:`release_cache`, for data tests that read them next.
        ``observe``: per model, named SQL aggregates over its rows, computed while a table is written; their values
        land in :attr:`observed` (models that are not written as tables here get none).
        """
        self.observe, self.observed, self.failures, self._skipped = observe or {}, {}, {}, {}
        chosen, needed = self._with_ancestors(selectors, exclude)
        self._register_inputs(reader)
        release_after = {} if keep_cache else self._cache_release_points(chosen)
        runs: dict[str, ModelRun] = {}
        for level in levels(self.graph, self.order, needed):
            tables = []
            for name in level:
                blocker = self._blocked(name)
                if blocker == name:
                    if name in chosen:
                        runs[name] = self._failed_run(name, self.failures[name], 0.0)
                    continue
                if blocker is not None:
                    self._skipped[name] = blocker
                    if name in chosen:
                        runs[name] = self._skipped_run(name, blocker)
                    continue
                try:
                    rendered = self.for_run(self.rendered[name])
                    if name in chosen and rendered.config.is_table:
                        tables.append(rendered)
                    elif name in chosen:
                        runs[name] = self._materialize(rendered)
                    elif rendered.config.is_table:
                        self._register_existing_table(rendered)
                    else:
                        self.dataframe(rendered).createOrReplaceTempView(name)
                except RetrainError as e:
                    self.failures[name] = e
                    if name in chosen:
                        runs[name] = self._failed_run(name, e, 0.0)
            built = run_concurrently(self._materialize_or_fail, tables, threads, key=lambda r: r.name)
            for name, outcome in built.items():
                if isinstance(outcome, _Failed):
                    self.failures[name] = outcome.error
                    runs[name] = self._failed_run(name, outcome.error, 0.0)
                else:
                    runs[name] = outcome
            for name in level:
                for cached in release_after.pop(name, ()):
                    self._uncache(cached)
        result = ModelRuns(ds=self.ctx.ds_str, models=tuple(runs[n] for n in self.order if n in runs))
        for run in result.with_status(ERROR):
            log.error("%s failed: %s", run.name, run.message)
        if raise_failures:
            self.raise_first_failure()
        return result

    def _materialize_or_fail(self, rendered: RenderedModel) -> ModelRun | _Failed:
        try:
            return self._materialize(rendered)
        except RetrainError as e:
            return _Failed(e)

    def _kind(self, name: str) -> str:
        rendered = self.rendered.get(name)
        if rendered is not None:
            return rendered.config.materialized
        return str(self.compiled.renderer.merged_config(self.project.models[name], {}).get("materialized") or "view")

    def _failed_run(self, name: str, error: Exception, seconds: float) -> ModelRun:
        return ModelRun(name, self._kind(name), None, None, seconds, ERROR, str(error))

    def _skipped_run(self, name: str, blocker: str) -> ModelRun:
        why = "failed" if blocker in self.failures else "was skipped"
        return ModelRun(name, self._kind(name), None, None, 0.0, SKIPPED, f"reads {blocker}, which {why}")

    def release_cache(self) -> None:
        """Uncache every cached model still held."""
        for name, rendered in self.rendered.items():
            if rendered.config.cache and self.spark.catalog.tableExists(name) and self.spark.catalog.isCached(name):
                self._uncache(name)

    def _uncache(self, name: str) -> None:
        self.spark.catalog.uncacheTable(name)
        log.info("Released the cache of %s", name)

    def register_outputs(self, reader: SourceReader, raise_failures: bool = True) -> None:
        """Make every model queryable again from this run's output, without recomputing a table (for data tests).

        A model that cannot be (a table not built, a view that fails) is kept in :attr:`failures`, and what reads
        it is not registered; with ``raise_failures`` the first one is raised at the end.
        """
        self._register_inputs(reader)
        self.failures, self._skipped = {}, {}
        for name in self.order:
            if self._skips(name):
                continue
            try:
                rendered = self.for_run(self.rendered[name])
                if rendered.config.is_table:
                    self._register_existing_table(rendered)
                else:
                    self.dataframe(rendered).createOrReplaceTempView(name)
            except RetrainError as e:
                self.failures[name] = e
        if raise_failures:
            self.raise_first_failure()

    @property
    def skipped(self) -> dict[str, str]:
        """The models the last run or check did not reach, each with the model it reads that failed."""
        return dict(self._skipped)

    @property
    def unavailable(self) -> set[str]:
        """The models the last run, check or registration could not make available (failed or skipped)."""
        return set(self.failures) | set(self._skipped)

    def _materialize(self, rendered: RenderedModel) -> ModelRun:
        started = time.monotonic()
        name, config = rendered.name, rendered.config
        df = self.dataframe(rendered)
        if not config.is_table:
            df.createOrReplaceTempView(name)
            if config.cache:
                self.spark.catalog.cacheTable(name)
            log.info("View %s ready%s", name, " (cached)" if config.cache else "")
            return ModelRun(name, config.materialized, None, None, round(time.monotonic() - started, 3))
        self._check_partition_columns(rendered, df)
        if config.contract_enforced:  # dbt enforces a contract as it builds
            self._check_data_types(rendered, df)
        target = self.table_path(name)
        previous = self.compiled.incremental.get(name)
        with atomic_directory(target) as staging:
            if config.is_incremental:
                where = f"{name} ({self.project.relative(rendered.model.path)})"
                write = functools.partial(self._write_observed, rendered)
                built = build_incremental(self.spark, rendered, where, df, previous, staging, write)
                rows, new_rows, schema = built.rows, built.new_rows, built.schema
            else:
                rows, new_rows, schema = self._write_observed(rendered, df, staging), None, df.schema
            extra = {"new_rows": new_rows, "previous_ds": previous.ds if previous else None}
            write_manifest(
                staging,
                {
                    "model": name,
                    "rows": rows,
                    "ds": self.ctx.ds_str,
                    "sql_file": self.project.relative(rendered.model.path),
                    "partition_by": list(config.partition_by),
                    **table_manifest(rendered, schema, extra if config.is_incremental else {}),
                },
            )
        self._register_table(name, target, config.cache)
        seconds = round(time.monotonic() - started, 3)
        run = ModelRun(
            name, config.materialized, str(target), rows, seconds, new_rows=new_rows, built_on=previous and previous.ds
        )
        log.info("Table %s: %d rows%s in %.1fs -> %s", name, rows, run.incremental_build(), seconds, target)
        return run

    def _write_observed(self, rendered: RenderedModel, df: DataFrame, path: Path) -> int:
        """Write the table with its row count and the caller's aggregates observed; the row count is returned.

        An aggregate Spark will not observe (a subquery in a test's ``where:``, say) is left out here and counted by
        the data tests' query instead. If the write fails with the aggregates attached, the table is written again
        without them: either one of them or the model broke it, and the second write tells which (the data tests'
        query then names a broken test).
        """
        from pyspark.errors import PySparkException

        name = rendered.name
        if rendered.config.repartition:
            df = df.repartition(rendered.config.repartition, *rendered.config.partition_by)
        # An incremental model writes part of its table here: the data tests count the whole table themselves.
        wanted = {} if rendered.config.is_incremental else self._observable(df, name, self.observe.get(name, {}))
        if wanted:
            try:
                metrics = self._write_once(rendered, df, path, wanted)
                self.observed[name] = {key: metrics[key] for key in wanted}
                return int(metrics[ROWS_METRIC])
            except PySparkException as e:
                if server_gone(e):  # no write can succeed: say so now rather than after a second try
                    raise model_error(self.project, rendered, e, "failed while running") from None
                log.warning(
                    "Writing %s failed (%s). A data test counted during the write or the model itself broke "
                    "it; writing %s again without the tests' counts to tell which.",
                    name,
                    first_line(e),
                    name,
                )
                shutil.rmtree(path, ignore_errors=True)
        try:
            return int(self._write_once(rendered, df, path, {})[ROWS_METRIC])
        except PySparkException as e:
            upstream = [self.rendered[n] for n in reachable(name, self.graph)]
            raise model_error(self.project, rendered, e, "failed while running", upstream) from None

    def _observable(self, df: DataFrame, name: str, aggregates: Mapping[str, str]) -> dict[str, str]:
        """The aggregates Spark accepts as observed metrics of ``df`` (checking one runs no job, only analysis)."""
        from pyspark.errors import PySparkException
        from pyspark.sql import Observation
        from pyspark.sql import functions as F  # noqa: N812

        accepted = {}
        for key, sql in aggregates.items():
            try:
                df.observe(Observation(f"check-{uuid.uuid4().hex}"), F.expr(sql).alias(key))
                accepted[key] = sql
            except PySparkException as e:
                log.info("%s: a data test's count (%s) is left to the tests' query: %s", name, sql, first_line(e))
        return accepted

    def _write_once(
        self, rendered: RenderedModel, df: DataFrame, path: Path, aggregates: Mapping[str, str]
    ) -> dict[str, Any]:
        """Write ``df`` with its row count and ``aggregates`` observed, and return their values.

        Observed last, after any shuffle, so in the stage that writes: Spark counts a result task's metrics once,
        even when a lost executor makes it re-run earlier stages (a shuffle's map tasks would count twice). Each
        observation has a name of its own: names must not repeat within a query, and one Spark session serves many
        runs (the tests). ``Observation.get`` waits for the metrics, which Spark delivers when the write ends, failed
        or not; with an empty result they are zero.
        """
        from pyspark.sql import Observation
        from pyspark.sql import functions as F  # noqa: N812

        observation = Observation(f"{rendered.name}-{uuid.uuid4().hex[:8]}")
        columns = [F.expr("COUNT(*)").alias(ROWS_METRIC)]
        columns += [F.expr(sql).alias(key) for key, sql in aggregates.items()]
        writer = df.observe(observation, *columns).write.mode("error")
        if rendered.config.partition_by:
            writer = writer.partitionBy(*rendered.config.partition_by)
        writer.parquet(str(path))
        return dict(observation.get)

    def _register_table(self, name: str, path: Path, cache: bool) -> None:
        reader = self.spark.read
        ddl = manifest_schema(path)
        if ddl is not None:
            reader = reader.schema(ddl)
        reader.parquet(str(path)).createOrReplaceTempView(name)
        if cache:
            self.spark.catalog.cacheTable(name)

    def _register_existing_table(self, rendered: RenderedModel) -> None:
        path = self.table_path(rendered.name)
        if not path.is_dir():
            raise ConfigError(
                f"The table {rendered.name} has not been built for this run yet ({path}). Run "
                f"`retrain transform --ds {self.ctx.ds_str} --select {rendered.name}` first, or select it too "
                "(--select +<model>)."
            )
        self._register_table(rendered.name, path, rendered.config.cache)

    def _cache_release_points(self, chosen: set[str]) -> dict[str, list[str]]:
        """For each cached model, the last model in run order after which nothing selected still needs it."""
        children = downstream_edges(self.graph)
        release: dict[str, list[str]] = {}
        for name in self.order:
            if name not in self.rendered or not self.rendered[name].config.cache:
                continue
            # A view is only computed when a table reads it, so the cache lives until the last dependent table.
            readers = [
                n
                for n in reachable(name, children)
                if n in chosen and n in self.rendered and self.rendered[n].config.is_table
            ]
            if readers:
                last = max(readers, key=self.order.index)
                release.setdefault(last, []).append(name)
        return release

    def _check_data_types(self, rendered: RenderedModel, df: DataFrame) -> None:
        """Described columns against the output: a ``data_type`` must match; a described column the model does not
        output is an error when a test or the contract uses it, else a warning (as in dbt); with an enforced
        contract, the model outputs exactly the described columns, each with its type."""
        props = self.project.properties.models.get(rendered.name)
        types = {f.name: f.dataType.simpleString() for f in df.schema.fields}
        enforced = rendered.config.contract_enforced
        if enforced:
            self._check_contract(rendered, props, types)
        tested = {spec.column for spec in props.tests if spec.column} if props else set()
        for column in props.columns if props else ():
            if column.name not in types:
                message = (
                    f"{props.file}: column {column.name!r} of {rendered.name} is described but the model does not "
                    f"output it. Its columns: {', '.join(types)}."
                )
                if column.name in tested or enforced:
                    uses = "its contract" if enforced else "a data test"
                    raise ModelExecutionError(f"{message} It cannot be left out: {uses} uses it.")
                self.compiled.renderer.warn(f"{message} Remove it from the properties, or output it.")
                continue
            if column.data_type and column.data_type.lower() != types[column.name]:
                raise ModelExecutionError(
                    f"{props.file}: column {column.name!r} of {rendered.name} is declared data_type "
                    f"{column.data_type!r} but the model outputs {types[column.name]!r}."
                )

    def _check_contract(self, rendered: RenderedModel, props: Any, types: Mapping[str, str]) -> None:
        where = f"{rendered.name} ({self.project.relative(rendered.model.path)})"
        described = {c.name: c.data_type for c in props.columns} if props else {}
        untyped = [name for name, data_type in described.items() if not data_type]
        extra = [name for name in types if name not in described]
        if not described or untyped or extra:
            raise ModelExecutionError(
                f"{where} has an enforced contract: every column it outputs must be described with a data_type. "
                + (f"Not described: {', '.join(extra)}. " if extra else "")
                + (f"Without a data_type: {', '.join(untyped)}. " if untyped else "")
                + f"Its columns: {', '.join(f'{n} {t}' for n, t in types.items())}."
            )

    def _check_partition_columns(self, rendered: RenderedModel, df: DataFrame) -> None:
        missing = [c for c in rendered.config.partition_by if c not in df.columns]
        if missing:
            raise ModelExecutionError(
                f"Model {rendered.name} ({self.project.relative(rendered.model.path)}) is partitioned by "
                f"{', '.join(missing)}, which it does not output. Its columns: {', '.join(df.columns)}."
            )
