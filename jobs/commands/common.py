"""Arguments, and what they select, shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.run_context import RunContext
from jobs.settings import Settings

if TYPE_CHECKING:
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.project import SqlProject
    from jobs.sqlproject.render import RenderedModel


def add_run_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """``--ds`` and the data interval, as Airflow passes them; optional (default: today, UTC) for previews."""
    parser.add_argument(
        "--ds", required=required, help="the run's logical date, YYYY-MM-DD" + ("" if required else " (default: today)")
    )
    parser.add_argument(
        "--data-interval-end",
        help="end of the data interval (ISO timestamp; default: --ds at 00:00 UTC)",
    )
    parser.add_argument("--data-interval-start", help="start of the data interval (default: 7 days before its end)")


def add_project_arguments(parser: argparse.ArgumentParser, selectable: bool = False) -> None:
    """``--project-dir`` and ``--vars`` (and ``--select``) for every command that reads the SQL project."""
    parser.add_argument("--project-dir", help="the SQL project (default: SQL_PROJECT_DIR or ./sql)")
    parser.add_argument("--vars", help="""override var() values, e.g. '{"lookback_days": 30}'""")
    if selectable:
        # dbt's spelling: several selectors after one option (--select a b), the option repeated, or one quoted
        # argument with spaces all mean the union.
        parser.add_argument(
            "-s",
            "--select",
            action="extend",
            nargs="+",
            metavar="SELECTOR",
            help="models to use: a name, path:FOLDER, tag:TAG, config.materialized:table; +X (with what it reads), "
            "X+ (with what reads it); several (--select a b) are a union, 'a,b' an intersection; repeatable",
        )
        parser.add_argument(
            "--exclude",
            action="extend",
            nargs="+",
            metavar="SELECTOR",
            help="models to leave out (same selectors as --select)",
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


def compiled_project(settings: Settings, args: argparse.Namespace) -> CompiledProject:
    """The project built once (rendered models, graph, run order, data tests): no Spark needed."""
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.project import load_project

    project = load_project(project_dir(args) or settings.sql_project_dir, vars_overrides(args))
    return CompiledProject.build(project, run_context(args))


def selected_models(settings: Settings, args: argparse.Namespace) -> tuple[SqlProject, list[RenderedModel]]:
    """The project and its selected models, rendered, in run order (no Spark needed)."""
    compiled = compiled_project(settings, args)
    return compiled.project, compiled.selected(args.select, args.exclude)
