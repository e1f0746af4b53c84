"""``retrain train``: train one model per recipe in models/ on the run's feature tables."""

from __future__ import annotations

import argparse
import json

from jobs.commands.common import add_project_arguments, add_run_arguments, project_dir, run_context, vars_overrides
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train one model per recipe in models/ on the run's feature tables")
    add_run_arguments(parser)
    add_project_arguments(parser)
    parser.add_argument("-m", "--model", action="append", dest="models", help="only this model (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (also in the run's train.json)")
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.train import train

    result = train(
        settings,
        run_context(args),
        models=args.models,
        project_dir=project_dir(args),
        vars_overrides=vars_overrides(args),
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return 0
    for m in result.models:
        if m.version:
            auc = (m.metrics or {}).get("roc_auc")
            window = (m.training_window or {}).get("weeks") or "all"
            print(
                f"{m.model:<12} {m.version:<22} train {m.train_rows:>9,} ({window} weeks)  "
                f"evaluation {m.evaluation_rows:>7,}  ROC AUC {'-' if auc is None else f'{auc:.4f}'}  "
                f"threshold {m.operating_threshold:.4f}  label coverage {m.label_coverage:.1%}"
            )
        else:
            print(f"{m.model:<12} skipped: {m.reason}")
    return 0
