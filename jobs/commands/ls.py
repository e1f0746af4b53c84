"""``retrain ls``: list the models in run order, with their materialization and what each reads."""

from __future__ import annotations

import argparse

from jobs.commands.common import add_preview_arguments, selected_models
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ls", help="list the models in run order, with materialization and dependencies")
    add_preview_arguments(parser)
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    with selected_models(settings, args) as (project, models):
        for model in models:
            config = model.config
            details = [config.materialized]
            if config.partition_by:
                details.append("partition_by=" + ",".join(config.partition_by))
            if config.repartition:
                details.append(f"repartition={config.repartition}")
            if config.cache:
                details.append("cache")
            if config.tags:
                details.append("tags=" + ",".join(config.tags))
            sources = [project.sources[s] for s in model.sources]
            names = [f"source:{s.group}.{s.table_name}" if s.group else f"source:{s.name}" for s in sources]
            reads = names + [f"seed:{s}" for s in model.seeds] + list(model.refs)
            print(f"{model.name:<24} {' '.join(details):<52} <- {', '.join(reads) or '-'}")
    return 0
