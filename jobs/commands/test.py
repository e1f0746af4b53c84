"""``retrain test``: run the SQL project's unit tests and, for a run (``--ds``), its data tests: dbt's ``dbt test``."""

from __future__ import annotations

import argparse
import re
import sys

from jobs.commands.common import (
    add_project_arguments,
    add_run_arguments,
    print_data_tests,
    project_dir,
    run_context,
    vars_overrides,
)
from jobs.settings import Settings

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "test",
        help="run the unit tests (given rows in, expected rows out) and, with --ds, the data tests on that run's "
        "output; --select test_type:unit|data",
    )
    add_run_arguments(
        parser, required=False, ds_help="the run whose output the data tests read, YYYY-MM-DD (without it: unit tests)"
    )
    add_project_arguments(parser, selectable=True, tests=True)
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.errors import DataTestError, UnitTestError
    from jobs.run_context import RunContext
    from jobs.spark.session import spark_session
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.dbtcontext import Target
    from jobs.sqlproject.project import load_project
    from jobs.sqlproject.testselect import select_tests
    from jobs.sqlproject.unittests import DEFAULT_DS, run_unit_tests
    from jobs.transform import require_built, rerun_data_tests, summary_counts, summary_line

    has_run = args.ds is not None
    target = Target(name=args.target or settings.sql_target, threads=settings.sql_threads)
    project = load_project(project_dir(args) or settings.sql_project_dir, vars_overrides(args), target=target)
    if not has_run:
        args.ds = DEFAULT_DS  # unit tests render for the date the harness uses, unless a case gives its own ds:
    compiled = CompiledProject.build(project, run_context(args), keep_going=True)
    chosen = select_tests(compiled, args.select, args.exclude)
    if not has_run and chosen.data and not chosen.unit:
        raise DataTestError(
            f"{len(chosen.data)} data test(s) selected, but data tests read what `retrain transform` wrote for a "
            "run: give its date, --ds YYYY-MM-DD."
        )
    if chosen.data and has_run:
        require_built(settings.run_folder(compiled.ctx.ds_str))
    spark = spark_session(settings, "retrain-test", require_jdbc=False)
    statuses: list[str] = []
    unit_failures: list[str] = []
    if chosen.unit:
        # Rendered for the harness's date whatever --ds is (a case may give its own ds:), so a unit test gives the
        # same result here, in tests/test_sql_models.py and without --ds.
        unit = compiled if not has_run else CompiledProject.build(project, RunContext.for_ds(DEFAULT_DS), True)
        results = run_unit_tests(spark, unit, list(chosen.unit))
        print_unit_tests(results)
        from jobs.sqlproject.coverage import format_table, of_cases

        print(format_table(of_cases(spark, unit, list(chosen.unit))))
        statuses += ["error" if r.status == "fail" else r.status for r in results]
        unit_failures = [f"  {r.id} ({r.where}): {r.status}" for r in results if r.status != "pass"]
    data_failures: list[str] = []
    if chosen.data and has_run:
        data = rerun_data_tests(settings, compiled.ctx, spark, compiled=compiled, tests=list(chosen.data))
        print_data_tests(data)
        statuses += [t.status for t in data]
        data_failures = [
            f"  {t.model}: {t.name}: {t.message.splitlines()[0]} ({t.where})" for t in data if t.status == "error"
        ]
    elif chosen.data:
        print(f"Data tests: {len(chosen.data)} not run (they read a run's output: give --ds YYYY-MM-DD).")
    print(summary_line(summary_counts(statuses)))
    failures = unit_failures + data_failures
    if failures:
        kind = UnitTestError if unit_failures else DataTestError
        raise kind(f"{len(failures)} test(s) failed or could not run:\n" + "\n".join(failures))
    return 0


def print_unit_tests(results) -> None:  # noqa: ANN001 - UnitTestResult, imported with Spark's modules
    """One line per case; a failure with the model's lines that compute the differing columns and chispa's diff."""
    colour = sys.stdout.isatty()
    labels = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}
    for result in results:
        print(f"{labels[result.status]:<5} unit test {result.id} ({result.where})")
        if result.status == "pass":
            continue
        if result.status == "fail":
            for column, line in result.differing:
                at = f"{result.model_file}, line {line}" if line else result.model_file
                print(f"      {column} differs: computed at {at}")
            if not result.differing:
                print(f"      model: {result.model_file}")
        text = result.message if colour else _ANSI.sub("", result.message)
        print("\n".join(f"      {line}" for line in text.strip().splitlines()))
    counts = {status: sum(1 for r in results if r.status == status) for status in labels}
    print(f"Unit tests: {counts['pass']} passed, {counts['fail']} failed, {counts['error']} could not run.")
