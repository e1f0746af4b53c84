"""transform_data: run the SQL project over the run's raw snapshots, then its data tests.

A data test of error severity that fails stops here, before any training, with every failure listed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.run_context import RunContext
from jobs.settings import Settings
from jobs.sqlproject.datatests import (
    DataTestResult,
    generic_tests,
    raise_on_errors,
    results_to_dicts,
    run_tests,
    singular_tests,
)
from jobs.sqlproject.project import SqlProject, load_project
from jobs.sqlproject.render import Renderer
from jobs.sqlproject.runner import SqlRunner, TransformResult
from jobs.sqlproject.sources import SourceReader, snapshot_reader

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from jobs.sqlproject.config import Source

log = logging.getLogger(__name__)

SUMMARY_FILE = "transform.json"


@dataclass(frozen=True)
class TransformOutcome:
    result: TransformResult
    tests: tuple[DataTestResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "data_tests": results_to_dicts(self.tests)}


def open_project(settings: Settings, project_dir: Path | None, vars_overrides: Mapping[str, Any] | None) -> SqlProject:
    return load_project(project_dir or settings.sql_project_dir, vars_overrides)


def database_reader(settings: Settings, ctx: RunContext, project: SqlProject) -> SourceReader:
    """Read sources straight from PostgreSQL (same window and partitioning as extract), instead of snapshots."""
    from jobs.extract import lookback_days
    from jobs.jdbc import default_num_partitions, probe_bounds, read_source

    db = settings.database()
    window = ctx.window(lookback_days(dict(project.vars)))

    def read(spark: SparkSession, source: Source) -> DataFrame:
        bounds = probe_bounds(db, source, window)
        partitions = settings.jdbc_num_partitions or default_num_partitions(spark)
        return read_source(spark, db, source, window, bounds, partitions, settings.jdbc_fetchsize)

    return read


def data_tests(spark: SparkSession, project: SqlProject, ctx: RunContext) -> list[DataTestResult]:
    """Run every data test against the models currently registered in ``spark``."""
    tests = generic_tests(project.models, project.relative) + singular_tests(Renderer(project, ctx), project.relative)
    return run_tests(spark, tests)


def transform(
    settings: Settings,
    ctx: RunContext,
    spark: SparkSession,
    project_dir: Path | None = None,
    vars_overrides: Mapping[str, Any] | None = None,
    select: Sequence[str] | None = None,
    from_database: bool = False,
    run_data_tests: bool = True,
) -> TransformOutcome:
    """Build the selected models for ``ctx``'s run and test the result; raises DataTestError on failure."""
    project = open_project(settings, project_dir, vars_overrides)
    run_dir = settings.run_dir(ctx.ds_str)
    reader = database_reader(settings, ctx, project) if from_database else snapshot_reader(run_dir / "raw")
    runner = SqlRunner(spark, project, ctx, run_dir)
    testing = run_data_tests and not select
    try:
        result = runner.run(reader, select, keep_cache=testing)
        tests = data_tests(spark, project, ctx) if testing else []
    finally:
        runner.release_cache()
    outcome = TransformOutcome(result, tuple(tests))
    if not select:
        (run_dir / SUMMARY_FILE).write_text(json.dumps(outcome.to_dict(), indent=2) + "\n", encoding="utf-8")
    raise_on_errors(tests)
    return outcome


def rerun_data_tests(
    settings: Settings,
    ctx: RunContext,
    spark: SparkSession,
    project_dir: Path | None = None,
    vars_overrides: Mapping[str, Any] | None = None,
) -> list[DataTestResult]:
    """``retrain test-data``: the data tests against what ``transform`` wrote for this run."""
    project = open_project(settings, project_dir, vars_overrides)
    run_dir = settings.run_dir(ctx.ds_str)
    SqlRunner(spark, project, ctx, run_dir).register_outputs(snapshot_reader(run_dir / "raw"))
    return data_tests(spark, project, ctx)
