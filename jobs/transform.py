"""transform_data: run the SQL project over the run's raw snapshots, then its data tests.

A data test of error severity that fails stops here, before any training, with every failure listed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.run_context import RunContext
from jobs.settings import Settings
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.datatests import (
    DataTestResult,
    observed_metrics,
    raise_on_errors,
    results_to_dicts,
    run_tests,
)
from jobs.sqlproject.project import SqlProject, load_project
from jobs.sqlproject.runner import ModelRuns, SqlRunner
from jobs.sqlproject.sources import SourceReader, snapshot_reader

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from jobs.sqlproject.config import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransformResult(ModelRuns):
    """The models built and the data tests run; ``to_dict()`` is what XCom and ``transform.json`` carry.

    ``duration_seconds`` is the step's wall-clock time: models run side by side (``SQL_THREADS``), so the sum of
    their times overstates it.
    """

    tests: tuple[DataTestResult, ...]
    data_tests_ran: bool
    duration_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "data_tests": results_to_dicts(self.tests) if self.data_tests_ran else None,
            "duration_seconds": self.duration_seconds,
        }


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
) -> list[DataTestResult]:
    """Run every data test against the models currently registered in ``spark`` (at most one query per model);
    ``observed``: the counts the runner took while writing tables (see :func:`observed_metrics`)."""
    return run_tests(spark, compiled.tests, threads, start_order=compiled.order, observed=observed)


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
) -> TransformResult:
    """Build the selected models for ``ctx``'s run and test the result; raises DataTestError on failure.

    A partial build (``select`` or ``exclude``) skips the data tests, which read every model, and leaves
    ``transform.json`` alone.
    """
    started = time.monotonic()
    project = load_project(project_dir or settings.sql_project_dir, vars_overrides)
    compiled = CompiledProject.build(project, ctx)
    folder = settings.run_folder(ctx.ds_str)
    reader = database_reader(settings, ctx, project) if from_database else snapshot_reader(folder.raw)
    runner = SqlRunner(spark, compiled, folder.features)
    partial = bool(select or exclude)
    testing = run_data_tests and not partial
    try:
        partitions = {name: r.config.partition_by for name, r in compiled.rendered.items()}
        observe = observed_metrics(compiled.tests, partitions) if testing else None
        runs = runner.run(
            reader, select, keep_cache=testing, exclude=exclude, threads=settings.sql_threads, observe=observe
        )
        tests = data_tests(spark, compiled, settings.sql_threads, runner.observed) if testing else []
    finally:
        runner.release_cache()
    seconds = round(time.monotonic() - started, 3)
    result = TransformResult(ctx.ds_str, runs.models, tuple(tests), data_tests_ran=testing, duration_seconds=seconds)
    if not partial:
        folder.transform_summary.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    raise_on_errors(tests)
    return result


def rerun_data_tests(
    settings: Settings,
    ctx: RunContext,
    spark: SparkSession,
    *,
    project_dir: Path | None = None,
    vars_overrides: Mapping[str, Any] | None = None,
) -> list[DataTestResult]:
    """``retrain test-data``: the data tests against what ``transform`` wrote for this run."""
    compiled = CompiledProject.build(load_project(project_dir or settings.sql_project_dir, vars_overrides), ctx)
    folder = settings.run_folder(ctx.ds_str)
    SqlRunner(spark, compiled, folder.features).register_outputs(snapshot_reader(folder.raw))
    return data_tests(spark, compiled, settings.sql_threads)
