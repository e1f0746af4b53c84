"""Incremental models: a table built from its previous output and the rows its SQL selects this run.

dbt's spelling and meaning: ``config(materialized='incremental', incremental_strategy=..., unique_key=...,
partition_by=..., on_schema_change=...)``, ``is_incremental()`` and ``{{ this }}``. A run's output is a folder of
its own (``runs/ds=<ds>/features/<model>/``), so "the table" of an incremental model is the newest earlier run's
output of it: read, never changed. The new output is written beside this run's other tables, atomically, and reuses
the previous output's unchanged files by hard links, so a week that adds a few rows writes a few rows. A failed
run leaves both outputs as they were.

Strategies (as dbt-spark, on Parquet):

- ``append``: the previous rows, then the new ones;
- ``merge`` (needs ``unique_key``): a new row replaces the previous row with the same key. dbt-spark needs Delta,
  Iceberg or Hudi for it, because it changes a table in place; here the output is a new folder, so plain Parquet
  does: previous rows without a new key, then the new rows. dbt-databricks' options make it compare: with
  ``matched_condition`` a previous row is replaced only where the condition holds, and with
  ``not_matched_by_source_action='delete'`` a previous row whose key the model no longer selects is deleted. Both
  are decided on the columns the conditions name and the keys alone, so a model that selects its whole table
  (``{{ this }}`` included) rewrites only the files that hold a changed or deleted row;
- ``insert_overwrite``: the partitions (``partition_by``) the new rows fall in replace the previous ones; without
  ``partition_by`` the new rows replace the whole table (dbt-spark's meaning), for a model that selects everything
  it keeps, ``{{ this }}`` included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import ModelExecutionError
from jobs.run_context import RunFolder
from jobs.spark.atomic import MANIFEST, link_files, read_manifest
from jobs.spark.messages import first_line

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from jobs.sqlproject.modelconfig import ModelConfig
    from jobs.sqlproject.render import RenderedModel

log = logging.getLogger(__name__)

#: the view ``{{ this }}`` renders as in an incremental run: the model's previous output
PREVIOUS_VIEW_SUFFIX = "__previous"
#: the version of a table manifest's fields that an incremental run relies on
TABLE_MANIFEST_FORMAT = 2


@dataclass(frozen=True)
class PreviousOutput:
    """An earlier run's output of an incremental model, checked to be one this run can build on."""

    model: str
    path: Path
    ds: str
    #: (name, Spark type) in the output's order, from its manifest
    columns: tuple[tuple[str, str], ...]

    @property
    def view(self) -> str:
        return f"{self.model}{PREVIOUS_VIEW_SUFFIX}"

    def read(self, spark: SparkSession) -> DataFrame:
        """The output's rows, with the schema its manifest records: an empty output (no data file) reads too."""
        ddl = ", ".join(f"`{name}` {type_}" for name, type_ in self.columns)
        return spark.read.schema(ddl).parquet(str(self.path))


@dataclass(frozen=True)
class IncrementalWrite:
    """What one incremental build wrote: every row of the new output, how many of them the model's SQL selected
    this run, and how many data files came unchanged from the previous output."""

    rows: int
    new_rows: int
    linked_files: int
    #: the output's columns (after ``on_schema_change``), a Spark ``StructType``
    schema: Any = None


def find_previous(folder: RunFolder, rendered: RenderedModel) -> PreviousOutput | None:
    """The newest earlier output of ``rendered`` that an incremental run can build on, or None (a full refresh),
    with the reason logged: no earlier output, an unreadable or older manifest, or one built differently."""
    name, config = rendered.name, rendered.config
    for earlier in folder.earlier():
        path = earlier.feature_table(name)
        if (path / MANIFEST).is_file():
            break
    else:
        # Debug: the model's own line says "(full refresh)" when it is built, and it may not be selected at all.
        log.debug("%s: full refresh: no earlier run has built it.", name)
        return None
    try:
        manifest = read_manifest(path)
        columns = tuple((str(c), str(t)) for c, t in manifest["columns"])
        built = (manifest["materialized"], tuple(manifest["partition_by"]), tuple(manifest.get("unique_key") or ()))
        fmt = manifest["format"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("%s: full refresh: the manifest of its output of %s cannot be read (%s).", name, earlier.ds, e)
        return None
    why = None
    if fmt != TABLE_MANIFEST_FORMAT:
        why = f"it was written by another version of the pipeline (manifest format {fmt!r})"
    elif built[0] != "incremental":
        why = f"it was built as a {built[0]}, not incrementally"
    elif built[1] != config.partition_by:
        why = f"its partition_by changed from {list(built[1])} to {list(config.partition_by)}"
    elif built[2] != config.unique_key:
        why = f"its unique_key changed from {list(built[2])} to {list(config.unique_key)}"
    if why:
        log.warning("%s: full refresh: its output of %s cannot be built on: %s.", name, earlier.ds, why)
        return None
    log.debug("%s: incremental, on its output of %s (%s).", name, earlier.ds, path)
    return PreviousOutput(name, path, earlier.ds, columns)


def build_incremental(
    spark: SparkSession,
    rendered: RenderedModel,
    where: str,
    new: DataFrame,
    previous: PreviousOutput | None,
    staging: Path,
    write: Callable[[DataFrame, Path], int],
) -> IncrementalWrite:
    """Write the model's new output into ``staging``: ``new`` (what its SQL selected) with ``previous`` by the
    model's strategy. ``write`` writes a DataFrame as the model's table (partitioning, errors) and returns its
    row count."""
    if previous is None:
        rows = write(new, staging)
        return IncrementalWrite(rows, rows, 0, new.schema)
    config = rendered.config
    old = previous.read(spark)
    old, new, changed = _reconcile(old, new, previous, config.on_schema_change, where)
    strategy = config.incremental_strategy
    if strategy == "insert_overwrite" and not config.partition_by:
        rows = write(new, staging)
        return IncrementalWrite(rows, rows, 0, new.schema)
    if changed:  # the previous files lack a column: rewritten, not linked
        return _rewrite(old, new, config, where, staging, write)
    if strategy == "merge":
        # Rows of the previous output replaced or deleted: only their files are rewritten, the rest linked.
        return _merge(spark, old, new, previous, config, where, staging, write)
    new_rows = write(new, staging)
    written = _data_dirs(staging) if strategy == "insert_overwrite" else set()
    linked = link_files(previous.path, staging, keep=lambda relative: str(relative.parent) not in written)
    return IncrementalWrite(_count(spark, staging, new), new_rows, linked, new.schema)


def _reconcile(
    old: DataFrame, new: DataFrame, previous: PreviousOutput, on_change: str, where: str
) -> tuple[DataFrame, DataFrame, bool]:
    """The previous and new rows with the same columns, per ``on_schema_change``; True when the columns changed."""
    from pyspark.sql import functions as F  # noqa: N812

    before = {f.name: f.dataType for f in old.schema.fields}
    after = {f.name: f.dataType for f in new.schema.fields}
    retyped = [
        f"{c} ({before[c].simpleString()} -> {after[c].simpleString()})"
        for c in after
        if c in before and before[c] != after[c]
    ]
    added = [c for c in after if c not in before]
    dropped = [c for c in before if c not in after]
    if retyped:
        raise ModelExecutionError(
            f"{where}: column type(s) changed since its output of {previous.ds}: {', '.join(retyped)}. An "
            "incremental model cannot mix types: rebuild it with `retrain transform --full-refresh`."
        )
    if not added and not dropped:
        return old, new.select(*old.columns), False
    if on_change == "fail":
        change = "; ".join(
            part
            for part in (
                f"new column(s) {', '.join(added)}" if added else "",
                f"no longer output: {', '.join(dropped)}" if dropped else "",
            )
            if part
        )
        raise ModelExecutionError(
            f"{where}: its columns changed since its output of {previous.ds} ({change}), and "
            "on_schema_change='fail' (the default) stops here. Set config(on_schema_change='append_new_columns') "
            "to keep every column (rows without one get NULL), or rebuild it with `retrain transform --full-refresh`."
        )
    log.warning("%s: columns changed (added: %s; no longer output: %s): rewriting it whole.", where, added, dropped)
    order = [*before, *added]
    old = old.select(*old.columns, *(F.lit(None).cast(after[c]).alias(c) for c in added))
    new = new.select(*new.columns, *(F.lit(None).cast(before[c]).alias(c) for c in dropped))
    return old.select(*order), new.select(*order), True


def _merge(
    spark: SparkSession,
    old: DataFrame,
    new: DataFrame,
    previous: PreviousOutput,
    config: ModelConfig,
    where: str,
    staging: Path,
    write: Callable[[DataFrame, Path], int],
) -> IncrementalWrite:
    """Write the new rows the merge keeps; link the previous files that lose no row; rewrite the others without the
    rows replaced or deleted."""
    from pyspark.sql import functions as F  # noqa: N812

    keys = list(config.unique_key)
    plan = _merge_plan(old, new, config, where)
    try:
        new_rows = write(plan.written, staging)
        tagged = old.withColumn("__file", F.input_file_name())
        touched = {row[0] for row in _semi(tagged, plan.replaced, keys).select("__file").distinct().collect()}
        touched_paths = {Path(_local_path(uri)).resolve() for uri in touched}
        linked = link_files(
            previous.path, staging, keep=lambda relative: (previous.path / relative).resolve() not in touched_paths
        )
        if touched:
            kept = _semi(tagged.where(F.col("__file").isin(list(touched))), plan.replaced, keys, "left_anti")
            kept.drop("__file").write.mode("append").partitionBy(*config.partition_by).parquet(str(staging))
        if config.compares_rows:
            log.info(
                "%s: merge: %d row(s) inserted, %d updated, %d deleted; %d of the previous output's data files "
                "linked, %d rewritten.",
                where,
                *plan.counts(),
                linked,
                len(touched),
            )
    finally:
        plan.release()
    return IncrementalWrite(_count(spark, staging, new), new_rows, linked, new.schema)


@dataclass
class _MergePlan:
    """What a merge does, by key: ``written``, the new rows it keeps (inserted or replacing a previous row), and
    ``replaced``, the keys of the previous rows it drops (replaced or deleted)."""

    written: DataFrame
    replaced: DataFrame
    #: the keys with their action, computed once (cached) when the merge compares rows; None otherwise
    changes: DataFrame | None = None

    def counts(self) -> tuple[int, int, int]:
        """(inserted, updated, deleted)."""
        if self.changes is None:
            return (0, 0, 0)
        row = self.changes.groupBy().agg(*(_count_if(action) for action in ("insert", "update", "delete"))).first()
        return (int(row[0] or 0), int(row[1] or 0), int(row[2] or 0))

    def release(self) -> None:
        if self.changes is not None:
            self.changes.unpersist()


def _count_if(action: str) -> Any:
    from pyspark.sql import functions as F  # noqa: N812

    return F.sum(F.when(F.col("__action") == action, 1).otherwise(0))


def _merge_plan(old: DataFrame, new: DataFrame, config: ModelConfig, where: str) -> _MergePlan:
    """Compare ``new`` (what the model's SQL selected) with ``old`` (its previous output) by key, as a MERGE with
    dbt-databricks' conditions would. Only the keys and the columns the conditions name are joined, so no wide row
    is shuffled; the model's rows are still computed twice (here, narrow, and again for ``written``), which is
    what a comparing merge costs (docs/sql.md)."""
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F  # noqa: N812

    keys = list(config.unique_key)
    if not config.compares_rows:
        return _MergePlan(new, new.select(*keys).distinct())
    source, target = config.source_alias, config.target_alias
    joined = (
        new.withColumn("__in_source", F.lit(True))
        .alias(source)
        .join(
            old.withColumn("__in_target", F.lit(True)).alias(target),
            _keys_equal(keys, source, target),
            "full_outer",
        )
    )
    in_source = F.col(f"{source}.__in_source").isNotNull()
    in_target = F.col(f"{target}.__in_target").isNotNull()
    try:
        replace = _condition(config.matched_condition)
        delete = (
            _condition(config.not_matched_by_source_condition) if config.delete_not_matched_by_source else F.lit(False)
        )
        action = (
            F.when(in_source & ~in_target, "insert")
            .when(in_source & in_target & replace, "update")
            .when(~in_source & in_target & delete, "delete")
        )
        changes = joined.select(
            *(F.coalesce(F.col(f"{source}.{k}"), F.col(f"{target}.{k}")).alias(k) for k in keys),
            action.alias("__action"),
        ).where(F.col("__action").isNotNull())
        changes.schema  # noqa: B018 - analysed here, so that a bad condition is reported as one
    except PySparkException as e:
        raise ModelExecutionError(
            f"{where}: the merge's conditions cannot be evaluated: {first_line(e)} A condition names the model's "
            f"new rows as {source} and its previous output as {target} (config source_alias / target_alias), "
            f"e.g. matched_condition='NOT ({target}.status <=> {source}.status)'."
        ) from None
    changes = changes.cache()
    written = _semi(new, changes.where(F.col("__action") != "delete"), keys)
    replaced = changes.where(F.col("__action") != "insert").select(*keys)
    return _MergePlan(written, replaced, changes)


def _condition(text: str | None) -> Any:
    """A merge condition as a Column that is false where SQL would give NULL; no condition holds everywhere."""
    from pyspark.sql import functions as F  # noqa: N812

    return F.lit(True) if text is None else F.coalesce(F.expr(text), F.lit(False))


def _keys_equal(keys: Sequence[str], left: str, right: str) -> Any:
    """dbt's key match, NULL-safe: ``left.k <=> right.k`` for every key."""
    from pyspark.sql import functions as F  # noqa: N812

    condition = None
    for key in keys:
        equal = F.col(f"{left}.{key}").eqNullSafe(F.col(f"{right}.{key}"))
        condition = equal if condition is None else condition & equal
    return condition


def _semi(frame: DataFrame, keyed: DataFrame, keys: Sequence[str], how: str = "left_semi") -> DataFrame:
    """``frame``'s rows whose key is (``left_semi``) or is not (``left_anti``) among ``keyed``'s, NULL-safe."""
    return frame.alias("__rows").join(keyed.select(*keys).alias("__keys"), _keys_equal(keys, "__rows", "__keys"), how)


def _rewrite(
    old: DataFrame,
    new: DataFrame,
    config: ModelConfig,
    where: str,
    staging: Path,
    write: Callable[[DataFrame, Path], int],
) -> IncrementalWrite:
    """The whole output written again (after a schema change): the previous rows the strategy keeps, then the new."""
    strategy, partition_by = config.incremental_strategy, config.partition_by
    plan = None
    if strategy == "merge":
        plan = _merge_plan(old, new, config, where)
        old, new = _semi(old, plan.replaced, config.unique_key, "left_anti"), plan.written
    elif strategy == "insert_overwrite":  # the previous rows of the partitions the new rows fall in are replaced
        old = _semi(old, new.select(*partition_by).distinct(), partition_by, "left_anti")
    try:
        rows = write(old.unionByName(new), staging)
        return IncrementalWrite(rows, new.count(), 0, new.schema)
    finally:
        if plan is not None:
            plan.release()


def _data_dirs(root: Path) -> set[str]:
    """The folders (relative to ``root``, ``.`` for the root) that hold data files: a partitioned table's
    partitions."""
    return {
        str(p.parent.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)
    }


def _local_path(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)


def manifest_schema(path: Path) -> str | None:
    """The DDL of a table's columns from its manifest, or None for a manifest without them: a table with no data
    file (an empty partitioned one) reads with it, where Spark could infer nothing."""
    try:
        columns = read_manifest(path).get("columns")
    except (OSError, ValueError):
        return None
    return ", ".join(f"`{name}` {type_}" for name, type_ in columns) if columns else None


def _count(spark: SparkSession, path: Path, like: DataFrame) -> int:
    """Rows of the written output, from the Parquet footers (the schema given, so an empty output is 0)."""
    return spark.read.schema(like.schema).parquet(str(path)).count()


def table_manifest(rendered: RenderedModel, schema: StructType, extra: dict[str, Any]) -> dict[str, Any]:
    """The fields of a table's manifest an incremental run checks, for every table model; ``schema``: the output's."""
    config = rendered.config
    return {
        "format": TABLE_MANIFEST_FORMAT,
        "materialized": config.materialized,
        "columns": [[f.name, f.dataType.simpleString()] for f in schema.fields],
        "unique_key": list(config.unique_key),
        "incremental_strategy": config.incremental_strategy,
        **extra,
    }
