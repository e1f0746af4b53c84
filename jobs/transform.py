"""transform_data: run the SQL project over the run's raw snapshots, then its data tests.

A model that fails, or a data test of error severity that fails, stops the pipeline here, before any training,
once every model and test that could run has run: ``transform.json`` says what was built, failed or skipped.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import ConfigError
from jobs.run_context import RunContext, RunFolder
from jobs.settings import Settings
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.datatests import (
    DataTest,
    DataTestResult,
    observed_metrics,
    raise_broken,
    raise_on_errors,
    results_to_dicts,
    run_tests,
)
from jobs.sqlproject.dbtcontext import Target
from jobs.sqlproject.incremental import find_previous
from jobs.sqlproject.project import SqlProject, load_project
from jobs.sqlproject.runner import SUCCESS, ModelRuns, SqlRunner
from jobs.sqlproject.sources import SourceReader, require_snapshots, snapshot_reader

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from jobs.sqlproject.config import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransformResult(ModelRuns):
    """The models built, failed or skipped and the data tests run; ``to_dict()`` is what XCom and
    ``transform.json`` carry.

    ``duration_seconds`` is the step's wall-clock time: models run side by side (``SQL_THREADS``), so the sum of
    their times overstates it.
    """

    tests: tuple[DataTestResult, ...]
    data_tests_ran: bool
    duration_seconds: float | None = None
    #: the errors behind the failed models, first in run order, raised once everything that could run has run
    errors: tuple[Exception, ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "data_tests": results_to_dicts(self.tests) if self.data_tests_ran else None,
            "duration_seconds": self.duration_seconds,
            "summary": self.summary(),
        }

    def summary(self) -> dict[str, int]:
        """dbt's closing line, as counts: models and data tests that passed, warned, errored or were skipped."""
        return summary_counts(
            [m.status for m in self.models] + ([t.status for t in self.tests] if self.data_tests_ran else [])
        )

    @property
    def failed(self) -> bool:
        return bool(self.errors) or any(t.status == "error" for t in self.tests)

    def raise_for_failures(self) -> None:
        """Raise what went wrong, if anything: the first model that failed (its own error, with the run's summary),
        else the first data test that could not run, else the data tests that failed with severity error."""
        if self.errors:
            first = self.errors[0]
            failed = [m for m in self.models if m.status != SUCCESS]
            # One line each: the first error is in full above, the others in the run's log as they happened.
            lines = "\n".join(f"  {m.status.upper()} {m.name}: {(m.message or '').splitlines()[0]}" for m in failed)
            raise type(first)(f"{first}\n{summary_line(self.summary())}\n{lines}") from first
        raise_broken(self.tests)
        raise_on_errors(self.tests)


def summary_counts(statuses: Sequence[str]) -> dict[str, int]:
    """PASS / WARN / ERROR / SKIP counts of results' statuses (a model's success is a PASS)."""
    labels = {"success": "PASS", "pass": "PASS", "warn": "WARN", "error": "ERROR", "skipped": "SKIP"}
    counts = dict.fromkeys(("PASS", "WARN", "ERROR", "SKIP"), 0)
    for status in statuses:
        counts[labels.get(status, "ERROR")] += 1
    return {**counts, "TOTAL": len(statuses)}


def summary_line(counts: Mapping[str, int]) -> str:
    """``Done. PASS=5 WARN=1 ERROR=1 SKIP=2 TOTAL=9``, as dbt ends a run."""
    return "Done. " + " ".join(f"{key}={value}" for key, value in counts.items())


def database_reader(settings: Settings, ctx: RunContext, project: SqlProject) -> SourceReader:
    """Read sources straight from PostgreSQL (same window and partitioning as extract), instead of snapshots."""
    from jobs.postgres.jdbc import default_num_partitions, probe_bounds, read_source

    db = settings.database()
    window = project.window(ctx)

    def read(spark: SparkSession, source: Source) -> DataFrame:
        bounds = probe_bounds(db, source, window)
        partitions = settings.jdbc_num_partitions or default_num_partitions(spark)
        return read_source(spark, db, source, window, bounds, partitions, settings.jdbc_fetchsize)

    return read


def data_tests(
    spark: SparkSession,
    compiled: CompiledProject,
    threads: int = 1,
    observed: Mapping[str, Mapping[str, Any]] | None = None,
    unavailable: Mapping[str, str] | None = None,
    tests: Sequence[DataTest] | None = None,
) -> list[DataTestResult]:
    """Run the data tests (default: every one) against the models currently registered in ``spark`` (at most one
    query per model); ``observed``: the counts the runner took while writing tables (see
    :func:`observed_metrics`); ``unavailable``: the models that failed or were skipped, whose tests are skipped."""
    return run_tests(
        spark,
        compiled.tests if tests is None else tests,
        threads,
        start_order=compiled.order,
        observed=observed,
        unavailable=unavailable,
        keep_going=True,
    )


def unavailable_models(runner: SqlRunner) -> dict[str, str]:
    """The models the runner could not make available, with why: ``failed`` or ``was skipped``."""
    return {name: ("failed" if name in runner.failures else "was skipped") for name in runner.unavailable}


def sql_target(settings: Settings, name: str | None = None) -> Target:
    """dbt's ``target`` for a run: ``name`` (``--target``), else the ``SQL_TARGET`` setting, with its threads."""
    return Target(name=name or settings.sql_target, threads=settings.sql_threads)


def load_run_project(
    settings: Settings,
    ctx: RunContext,
    *,
    project_dir: Path | None = None,
    vars_overrides: Mapping[str, Any] | None = None,
    target: str | None = None,
    from_database: bool = False,
) -> SqlProject:
    """The project a transform of ``ctx``'s run builds, once its sources' snapshots are known to be there: a run
    that has none fails in a second, before a Spark driver is started (and its log folder made) for nothing."""
    project = load_project(project_dir or settings.sql_project_dir, vars_overrides, target=sql_target(settings, target))
    if not from_database:
        require_snapshots(settings.run_folder(ctx.ds_str).raw, project.sources.values())
    return project


def transform(
    settings: Settings,
    ctx: RunContext,
    spark: SparkSession,
    *,
    project_dir: Path | None = None,
    vars_overrides: Mapping[str, Any] | None = None,
    select: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    from_database: bool = False,
    run_data_tests: bool = True,
    target: str | None = None,
    raise_failures: bool = True,
    full_refresh: bool = False,
    project: SqlProject | None = None,
) -> TransformResult:
    """Build the selected models for ``ctx``'s run and test the result.

    As in dbt, a model that fails does not stop the run: what reads it (and its tests) is skipped, the rest is
    built and tested, and ``transform.json`` says which models were built, failed or skipped. Then, with
    ``raise_failures``, the failure is raised (:meth:`TransformResult.raise_for_failures`): the first failed model,
    else a data test that could not run, else ``DataTestError`` for the tests of severity error that failed.
    A partial build (``select`` or ``exclude``) skips the data tests, which read every model, and leaves
    ``transform.json`` alone. ``target``: dbt's ``target.name`` (default: the ``SQL_TARGET`` setting).
    An incremental model builds on its newest earlier output (:mod:`jobs.sqlproject.incremental`);
    ``full_refresh`` (dbt's ``--full-refresh``) builds every one from its sources instead. ``project``: the
    project already loaded (:func:`load_run_project`), in place of ``project_dir``, ``vars_overrides`` and ``target``.
    """
    started = time.monotonic()
    project = project or load_run_project(
        settings,
        ctx,
        project_dir=project_dir,
        vars_overrides=vars_overrides,
        target=target,
        from_database=from_database,
    )
    folder = settings.run_folder(ctx.ds_str)
    previous = None if full_refresh else functools.partial(find_previous, folder)
    compiled = CompiledProject.build(project, ctx, keep_going=True, previous=previous)
    reader = database_reader(settings, ctx, project) if from_database else snapshot_reader(folder.raw)
    runner = SqlRunner(spark, compiled, folder.features)
    partial = bool(select or exclude)
    testing = run_data_tests and not partial
    try:
        partitions = {name: r.config.partition_by for name, r in compiled.rendered.items()}
        observe = observed_metrics(compiled.tests, partitions) if testing else None
        runs = runner.run(
            reader,
            select,
            keep_cache=testing,
            exclude=exclude,
            threads=settings.sql_threads,
            observe=observe,
            raise_failures=False,
        )
        unavailable = unavailable_models(runner)
        tests = data_tests(spark, compiled, settings.sql_threads, runner.observed, unavailable) if testing else []
    finally:
        runner.release_cache()
    seconds = round(time.monotonic() - started, 3)
    errors = tuple(runner.failures[name] for name in compiled.order if name in runner.failures)
    result = TransformResult(
        ctx.ds_str, runs.models, tuple(tests), data_tests_ran=testing, duration_seconds=seconds, errors=errors
    )
    if not partial:
        folder.transform_summary.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    if raise_failures:
        result.raise_for_failures()
    return result


def require_built(folder: RunFolder) -> None:
    """Refuse the data tests of a run that ``transform`` has not built, before a Spark driver starts (and the unit
    tests run) for nothing."""
    if not folder.features.is_dir():
        raise ConfigError(
            f"No tables of the run of {folder.ds} at {folder.features}: its data tests read what `retrain transform` "
            f"wrote. Run `retrain extract --ds {folder.ds}` and `retrain transform --ds {folder.ds}` first, or leave "
            "out --ds to run the unit tests alone."
        )


def rerun_data_tests(
    settings: Settings,
    ctx: RunContext,
    spark: SparkSession,
    *,
    project_dir: Path | None = None,
    vars_overrides: Mapping[str, Any] | None = None,
    tests: Sequence[DataTest] | None = None,
    compiled: CompiledProject | None = None,
) -> list[DataTestResult]:
    """``retrain test``'s data tests: against what ``transform`` wrote for this run (the models it could not
    build are unavailable, and their tests skipped)."""
    if compiled is None:
        project = load_project(project_dir or settings.sql_project_dir, vars_overrides, target=sql_target(settings))
        compiled = CompiledProject.build(project, ctx, keep_going=True)
    folder = settings.run_folder(ctx.ds_str)
    runner = SqlRunner(spark, compiled, folder.features)
    runner.register_outputs(snapshot_reader(folder.raw), raise_failures=False)
    return data_tests(spark, compiled, settings.sql_threads, unavailable=unavailable_models(runner), tests=tests)
