"""``retrain backtest``: replay the weekly runs over history under three policies (never retrain, always deploy,
the gate) and report each one's production metric on the following week's outcomes."""

from __future__ import annotations

import argparse
import json
from datetime import date

from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="replay the weekly runs between two Sundays: never retrain vs always deploy vs the gate",
        description="Reads the feature tables of one run (--ds, default --to) and, for every Sunday from --from to "
        "--to, trains each model as that Sunday's run would have (records created and outcomes verified before "
        "it), updates production under each policy, and scores production on the next week's outcomes. Writes "
        "backtest.json, backtest.txt and backtest.png in runs/ds=<ds>/backtest/.",
    )
    parser.add_argument("--from", dest="start", required=True, help="the first Sunday to replay, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, help="the last Sunday to replay, YYYY-MM-DD")
    parser.add_argument("--ds", help="the run whose feature tables hold the history (default: --to)")
    parser.add_argument("-m", "--model", action="append", dest="models", help="only this model (repeatable)")
    parser.add_argument("--json", action="store_true", help="print backtest.json instead of the table")
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.ml.backtest import run_backtest, write

    start, end = _day(args.start, "--from"), _day(args.end, "--to")
    ds = args.ds or end.isoformat()
    result = run_backtest(settings, ds, start, end, models=args.models)
    paths = write(result, settings.run_folder(ds).path / "backtest")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(paths["table"].read_text(encoding="utf-8"), end="")
    for name, model in result["models"].items():
        means = model["mean"]
        if means["gate"] is not None:
            print(
                f"{name}: mean {model['metric']} gate {means['gate']:.4f}, never retrain {means['never']:.4f}, "
                f"always deploy {means['always']:.4f}"
            )
    print(f"Written: {paths['json']}, {paths['table']}, {paths['plot']}")
    return 0


def _day(text: str, option: str) -> date:
    from jobs.errors import ConfigError

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} must be a date like 2026-11-22. Got {text!r}.") from None
