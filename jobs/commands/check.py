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

    errors: list[Exception] = []  # every error found, each file, model and test on its own
    compiled = compiled_project(settings, args, load_errors=errors)  # every YAML file, model and data test
    project = compiled.project
    spark = spark_session(settings, "retrain-check", require_jdbc=False)
    partial = bool(args.select or args.exclude)
    runner = SqlRunner(spark, compiled)
    checked = runner.check(args.select, args.exclude, raise_failures=False)
    for rendered, df in checked:
        columns = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in df.schema.fields)
        print(f"OK {rendered.name} ({project.relative(rendered.model.path)}): {columns}")
    for name in compiled.order:  # every failure, not only the first: each one is fixed independently
        if name in runner.failures:
            errors.append(runner.failures[name])
            print(f"ERROR {name} ({project.relative(project.models[name].path)}): see below")
        elif name in runner.skipped:
            print(f"SKIP {name}: reads {runner.skipped[name]}, which has an error")
    if not partial:
        errors.extend(compiled.test_errors)
        unavailable = runner.unavailable
        analyse(spark, [t for t in compiled.tests if not set(t.depends_on) & unavailable], errors)
        cases = check_unit_tests(spark, compiled, errors)
        print(
            f"{len(compiled.tests)} data test(s) and {cases} unit test(s) compiled and analysed (not run: "
            "`retrain test` runs them)."
        )
    for warning in compiled.warnings:
        print(f"WARN {warning}")
    print(f"{len(checked)} model(s) analysed against the declared source schemas; no data was read.")
    errors = list({str(e): e for e in errors}.values())  # a broken model also fails its unit tests: said once
    if errors:
        first = errors[0]
        listed = "\n\n".join(str(e) for e in errors)
        raise type(first)(f"{len(errors)} error(s) in the SQL project; each is below.\n\n{listed}") from first
    return 0
