"""``retrain transform``: build the SQL models over the run's raw snapshots, then run the data tests."""

from __future__ import annotations

import argparse
import json

from jobs.commands.common import (
    add_project_arguments,
    add_run_arguments,
    print_data_tests,
    print_models,
    project_dir,
    run_context,
    vars_overrides,
)
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "transform", help="build the models over the run's raw snapshots, then run the data tests"
    )
    add_run_arguments(parser)
    add_project_arguments(parser, selectable=True)
    parser.add_argument(
        "--from-database", action="store_true", help="read sources over JDBC instead of the extract's snapshots"
    )
    parser.add_argument("--skip-data-tests", action="store_true", help="build only; do not run data tests")
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="build incremental models from their sources, not on their earlier output (dbt's --full-refresh)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON (also in the run's transform.json)"
    )
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.spark.session import spark_session
    from jobs.transform import load_run_project, summary_line, transform

    ctx = run_context(args)
    project = load_run_project(
        settings,
        ctx,
        project_dir=project_dir(args),
        vars_overrides=vars_overrides(args),
        target=args.target,
        from_database=args.from_database,
    )
    spark = spark_session(
        settings,
        "retrain-transform",
        require_jdbc=args.from_database,
        log_file=settings.run_folder(ctx.ds_str).logs / "spark-transform.log",
    )
    outcome = transform(
        settings,
        ctx,
        spark,
        project=project,
        select=args.select,
        exclude=args.exclude,
        from_database=args.from_database,
        run_data_tests=not args.skip_data_tests,
        raise_failures=False,
        full_refresh=args.full_refresh,
    )
    if args.json:
        print(json.dumps(outcome.to_dict(), indent=2))
        outcome.raise_for_failures()
        return 0
    print_models(outcome.models)
    if not outcome.data_tests_ran:
        reason = "--skip-data-tests" if args.skip_data_tests else "a --select build does not run them"
        print(f"Data tests: not run ({reason}).")
    else:
        print_data_tests(outcome.tests)
    print(summary_line(outcome.summary()))
    outcome.raise_for_failures()  # a model or an error-severity test failed: the command fails, saying which
    return 0
