"""``retrain compile``: print the selected models' SQL as Spark will run it."""

from __future__ import annotations

import argparse

from jobs.commands.common import add_preview_arguments, compiled_project, raise_broken
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compile", help="print the selected models' SQL as Spark will run it")
    add_preview_arguments(parser)
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    compiled = compiled_project(settings, args)  # a model that does not render is set aside, not in the way
    project, models = compiled.project, compiled.selected(args.select, args.exclude)
    for model in models:
        print(f"-- {model.name} ({project.relative(model.model.path)}, {model.config.materialized})")
        print(model.sql)
    raise_broken(compiled, compiled.selected_names(args.select, args.exclude))
    return 0
