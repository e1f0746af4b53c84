"""``retrain compile``: print the selected models' SQL as Spark will run it."""

from __future__ import annotations

import argparse

from jobs.commands.common import add_preview_arguments, selected_models
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compile", help="print the selected models' SQL as Spark will run it")
    add_preview_arguments(parser)
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    with selected_models(settings, args) as (project, models):
        for model in models:
            print(f"-- {model.name} ({project.relative(model.model.path)}, {model.config.materialized})")
            print(model.sql)
    return 0
