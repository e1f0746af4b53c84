"""``retrain check``: render and analyse every model against the sources' declared schemas, reading no data."""

from __future__ import annotations

import argparse

from jobs.commands.common import add_preview_arguments, compiled_project
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="render and analyse every model against the sources' declared schemas (reads no data)"
    )
    add_preview_arguments(parser)
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.spark.session import spark_session
    from jobs.sqlproject.datatests import analyse
    from jobs.sqlproject.runner import SqlRunner
    from jobs.sqlproject.unittests import check_unit_tests

    compiled = compiled_project(settings, args)  # every YAML file, every model and every data test compiled here
    project = compiled.project
    spark = spark_session(settings, "retrain-check", require_jdbc=False)
    partial = bool(args.select or args.exclude)
    checked = SqlRunner(spark, compiled).check(args.select, args.exclude)
    for rendered, df in checked:
        columns = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in df.schema.fields)
        print(f"OK {rendered.name} ({project.relative(rendered.model.path)}): {columns}")
    if not partial:
        analyse(spark, compiled.tests)
        cases = check_unit_tests(spark, compiled)
        print(f"{len(compiled.tests)} data test(s) and {cases} unit test(s) compiled and analysed.")
    print(f"{len(checked)} model(s) analysed against the declared source schemas; no data was read.")
    return 0
