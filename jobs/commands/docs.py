"""``retrain docs``: write the SQL project's documentation site (static HTML; open its index.html from disk)."""

from __future__ import annotations

import argparse
from pathlib import Path

from jobs.commands.common import add_project_arguments, add_run_arguments, compiled_project
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "docs",
        help="write a static site of the SQL project: graph, models, tests, CASE coverage; with --ds, the run's "
        "rows, quarantine and JSON-path health",
    )
    add_run_arguments(parser, required=False)
    add_project_arguments(parser)
    parser.add_argument(
        "-o",
        "--output",
        help="the folder to write (default: the run folder's docs/ with --ds, else DATA_DIR/docs)",
    )
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.errors import ConfigError
    from jobs.run_context import RunFolder
    from jobs.spark.session import spark_session
    from jobs.sqlproject.docsite.catalog import gather, measured, read_run
    from jobs.sqlproject.docsite.pages import write_site

    given_run = args.ds is not None
    # Every model must render, as for dbt's `docs generate`: a page needs the model's SQL and columns.
    compiled = compiled_project(settings, args, keep_going=False)  # sets args.ds to today when it was not given
    folder = RunFolder.under(settings.data_dir, compiled.ctx.ds_str) if given_run else None
    if folder is not None and not folder.path.is_dir():
        raise ConfigError(
            f"There is no run folder for ds={compiled.ctx.ds_str} at {folder.path}. Run the pipeline for that date "
            "first (`retrain extract` and `retrain transform`), point DATA_DIR at the data it wrote, or leave --ds "
            "out to document the project alone."
        )
    output = Path(args.output) if args.output else (folder.docs if folder else settings.data_dir / "docs")
    catalog = gather(settings, compiled, read_run(folder, compiled.ctx.ds_str) if folder else None)
    spark = spark_session(settings, "retrain-docs", require_jdbc=False)
    measured(spark, catalog, folder)
    index = write_site(catalog, output)
    models = len(compiled.order)
    print(f"Wrote the documentation of {models} model(s) to {output}. Open {index} in a browser.")
    for problem in catalog.problems:
        print(f"Note: {problem}")
    if catalog.json_health is not None:
        for column, key in catalog.json_health.never_present():
            print(
                f"JSON key {key.key!r} ({', '.join(key.models)}) is missing from every row of "
                f"{column.source}.{column.column}: misspelt in the SQL, or no longer sent."
            )
    return 0
