"""``retrain notify``: write the run's report from what the steps left, and post it to the webhook."""

from __future__ import annotations

import argparse
import json

from jobs.commands.common import add_run_arguments, run_context
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "notify",
        help="write runs/ds=D/report.md and report.json from what the steps left; post to NOTIFY_WEBHOOK_URL",
    )
    add_run_arguments(parser)
    parser.add_argument(
        "--failure", action="append", default=[], metavar="STEP=MESSAGE", help="a failed step to report (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.errors import ConfigError
    from jobs.notify import notify

    failures = {}
    for item in args.failure:
        step, sep, message = item.partition("=")
        if not sep or not step:
            raise ConfigError(f"--failure must be STEP=MESSAGE. Got {item!r} instead.")
        failures[step] = message
    result = notify(settings, run_context(args), failures=failures)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"{result.status}: {result.report_md} (webhook: {result.webhook})")
    return 0
