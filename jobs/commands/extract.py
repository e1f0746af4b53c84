"""``retrain extract``: snapshot the sources from PostgreSQL."""

from __future__ import annotations

import argparse
import json

from jobs.commands.common import add_project_arguments, add_run_arguments, project_dir, run_context, vars_overrides
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract", help="snapshot the run's window of every source from PostgreSQL (PySpark JDBC)"
    )
    add_run_arguments(parser)
    add_project_arguments(parser)
    parser.add_argument("--source", action="append", dest="sources", help="only this source (repeatable)")
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="read every source's whole window, even one declared incremental (which otherwise reads only the rows "
        "its previous snapshot lacks)",
    )
    parser.add_argument("--json", action="store_true", help="also print the result as JSON")
    parser.set_defaults(handler=run, uses_database=True)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.extract import Extraction
    from jobs.spark.session import spark_session

    ctx = run_context(args)
    extraction = Extraction.start(
        settings,
        ctx,
        project_dir=project_dir(args),
        vars_overrides=vars_overrides(args),
        sources=args.sources,
        full_refresh=args.full_refresh,
    )
    log_file = settings.run_folder(ctx.ds_str).logs / "spark-extract.log"
    result = extraction.run(spark_session(settings, app_name=f"retrain-extract-{ctx.ds_str}", log_file=log_file))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    for snapshot in result.snapshots:
        print(
            f"{snapshot.source:<16} {snapshot.rows:>10,} rows  ids {snapshot.id_min}..{snapshot.id_max}  "
            f"{snapshot.duration_seconds:>6.1f}s  {snapshot.path}"
        )
        if snapshot.mode == "incremental":
            print(
                f"{'':<16} incremental on ds={snapshot.previous}: {snapshot.new_rows:,} new rows, "
                f"{snapshot.dropped_rows:,} dropped"
            )
    if result.nothing_new:
        print("Nothing new: every source window is empty.")
    return 0
