"""``retrain test-data``: run the SQL project's data tests on what a run's transform wrote."""

from __future__ import annotations

import argparse

from jobs.commands.common import add_project_arguments, add_run_arguments, project_dir, run_context, vars_overrides
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "test-data", help="run the data tests (<model>.yml and tests/*.sql) on a run's transformed data"
    )
    add_run_arguments(parser)
    add_project_arguments(parser)
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.spark.session import spark_session
    from jobs.sqlproject.datatests import raise_on_errors
    from jobs.transform import rerun_data_tests

    spark = spark_session(settings, "retrain-test-data", require_jdbc=False)
    results = rerun_data_tests(
        settings, run_context(args), spark, project_dir=project_dir(args), vars_overrides=vars_overrides(args)
    )
    for r in results:
        status = r.status.upper()
        print(f"{status:<5} {r.model:<24} {r.name:<40} {r.message}")
    raise_on_errors(results)
    warned = sum(1 for r in results if r.status == "warn")
    print(f"{len(results) - warned} data test(s) passed, {warned} warning(s).")
    return 0
