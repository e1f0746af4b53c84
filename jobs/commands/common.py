"""Arguments, and what they select, shared by several commands."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.run_context import RunContext
from jobs.settings import Settings

if TYPE_CHECKING:
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.project import SqlProject
    from jobs.sqlproject.render import RenderedModel


def add_run_arguments(parser: argparse.ArgumentParser, required: bool = True, ds_help: str | None = None) -> None:
    """``--ds`` and the data interval, as Airflow passes them; optional (default: today, UTC) for previews."""
    parser.add_argument(
        "--ds",
        required=required,
        help=ds_help or "the run's logical date, YYYY-MM-DD" + ("" if required else " (default: today)"),
    )
    parser.add_argument(
        "--data-interval-end",
        help="end of the data interval (ISO timestamp; default: --ds at 00:00 UTC)",
    )
    parser.add_argument("--data-interval-start", help="start of the data interval (default: 7 days before its end)")


def add_project_arguments(parser: argparse.ArgumentParser, selectable: bool = False, tests: bool = False) -> None:
    """``--project-dir``, ``--vars`` and ``--target`` (and ``--select``) for every command that reads the SQL
    project; ``tests``: the selectors also pick tests (``test_type:unit``)."""
    parser.add_argument("--project-dir", help="the SQL project (default: SQL_PROJECT_DIR or ./sql)")
    parser.add_argument("--vars", help="""override var() values, e.g. '{"lookback_days": 30}'""")
    parser.add_argument("--target", help="dbt's target.name in the SQL (default: SQL_TARGET, else prod)")
    if selectable:
        what = "tests of the models (or the tests) to run" if tests else "models to use"
        extra = "; test_type:unit|data, or a unit or singular test's name" if tests else ""
        # dbt's spelling: several selectors after one option (--select a b), the option repeated, or one quoted
        # argument with spaces all mean the union.
        parser.add_argument(
            "-s",
            "--select",
            action="extend",
            nargs="+",
            metavar="SELECTOR",
            help=f"{what}: a name, path:FOLDER, tag:TAG, config.materialized:table{extra}; +X (with what it reads), "
            "X+ (with what reads it); several (--select a b) are a union, 'a,b' an intersection; repeatable",
        )
        parser.add_argument(
            "--exclude",
            action="extend",
            nargs="+",
            metavar="SELECTOR",
            help="what to leave out (same selectors as --select)",
        )


def add_preview_arguments(parser: argparse.ArgumentParser) -> None:
    """What a command that reads the SQL project but no data takes: an optional run date and a selection."""
    add_run_arguments(parser, required=False)
    add_project_arguments(parser, selectable=True)


def project_dir(args: argparse.Namespace) -> Path | None:
    return Path(args.project_dir) if args.project_dir else None


def vars_overrides(args: argparse.Namespace) -> dict:
    from jobs.sqlproject.config import parse_vars_option

    return parse_vars_option(args.vars)


def run_context(args: argparse.Namespace) -> RunContext:
    from datetime import datetime

    from jobs.errors import ConfigError

    def ts(value: str | None) -> datetime | None:
        try:
            return datetime.fromisoformat(value) if value else None
        except ValueError:
            raise ConfigError(f"Expected an ISO timestamp such as 2026-11-22T02:00:00+00:00. Got {value!r}.") from None

    if args.ds is None:  # previews only (compile, ls, check): a real run always names its date
        from datetime import UTC

        args.ds = datetime.now(UTC).date().isoformat()
    return RunContext.for_ds(args.ds, ts(args.data_interval_end), ts(args.data_interval_start))


def compiled_project(
    settings: Settings, args: argparse.Namespace, keep_going: bool = True, load_errors: list | None = None
) -> CompiledProject:
    """The project built once (rendered models, graph, run order, data tests): no Spark needed. With
    ``keep_going``, a model that does not render is set aside (``CompiledProject.problems``) and the rest is built;
    with ``load_errors``, so is a property file with an error (added there)."""
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.dbtcontext import Target
    from jobs.sqlproject.project import load_project

    target = Target(name=getattr(args, "target", None) or settings.sql_target, threads=settings.sql_threads)
    project = load_project(
        project_dir(args) or settings.sql_project_dir, vars_overrides(args), target=target, errors=load_errors
    )
    return CompiledProject.build(project, run_context(args), keep_going=keep_going)


@contextmanager
def selected_models(settings: Settings, args: argparse.Namespace) -> Iterator[tuple[SqlProject, list[RenderedModel]]]:
    """The project and its selected models, rendered, in run order, for the caller to print; then the selected
    models that did not render are raised (:func:`raise_broken`), after what did."""
    compiled = compiled_project(settings, args)  # a model that does not render is set aside, not in the way
    yield compiled.project, compiled.selected(args.select, args.exclude)
    raise_broken(compiled, compiled.selected_names(args.select, args.exclude))


def raise_broken(compiled: CompiledProject, names: set[str]) -> None:
    """After printing what rendered: the models of ``names`` that did not, each with its error (all of them),
    as one error of the first one's kind; the unselected ones are only warned about."""
    import logging

    broken = compiled.broken(names)
    others = [name for name, _ in compiled.broken() if name not in names]
    if others:
        logging.getLogger("retrain").warning(
            "%d model(s) not selected could not be rendered: %s (retrain check says why).",
            len(others),
            ", ".join(others),
        )
    if broken:
        first = broken[0][1]
        more = "".join(f"\n\n{error}" for _, error in broken[1:])
        raise type(first)(f"{first}{more}") from first


def print_models(models) -> None:  # noqa: ANN001 - ModelRun, imported with Spark's modules
    """One line per model: what was built, or ERROR (why) or SKIP (which model it reads failed), as dbt says."""
    labels = {"error": "ERROR", "skipped": "SKIP"}
    for run in models:
        if run.status in labels:
            reason = (run.message or "").splitlines()[0] if run.message else ""
            print(f"{run.name:<24} {run.materialized:<6} {labels[run.status]:<5} {reason}")
            continue
        rows = f"{run.rows:>10,} rows" if run.rows is not None else f"{'':>15}"
        print(
            f"{run.name:<24} {run.materialized:<6} {rows}{run.incremental_build()} {run.seconds:>7.1f}s  "
            f"{run.path or ''}"
        )


def print_data_tests(tests) -> None:  # noqa: ANN001 - DataTestResult, imported with Spark's modules
    """The data tests' counts, then each one that did not pass."""
    counts = {status: sum(1 for t in tests if t.status == status) for status in ("pass", "warn", "error", "skipped")}
    print(
        f"Data tests: {counts['pass']} passed, {counts['warn']} warning(s), {counts['error']} error(s), "
        f"{counts['skipped']} skipped."
    )
    for test in tests:
        if test.status != "pass":
            label = {"skipped": "SKIP"}.get(test.status, test.status.upper())
            print(f"  {label} {test.model}: {test.name}: {test.message.splitlines()[0]}")
