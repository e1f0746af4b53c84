"""``retrain deploy`` and ``retrain notify``: the last two steps of a run."""

from __future__ import annotations

import argparse
import json

from jobs.commands.common import add_run_arguments, run_context
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    deploy = subparsers.add_parser(
        "deploy",
        help="promote the versions validate approved and make the backend reload them (rolled back on failure)",
        description="Reads runs/ds=D/decision.json, promotes the approved versions in MODEL_STORE, calls "
        "POST {BACKEND_URL}/admin/reload_models with ADMIN_JWT_TOKEN, and checks the versions and hashes the "
        "backend reports. On any failure the production pointers are restored and the command fails.",
    )
    add_run_arguments(deploy)
    deploy.add_argument("--json", action="store_true", help="print the result as JSON")
    deploy.set_defaults(handler=run_deploy)

    notify = subparsers.add_parser(
        "notify",
        help="write runs/ds=D/report.md and report.json from what the steps left; post to NOTIFY_WEBHOOK_URL",
    )
    add_run_arguments(notify)
    notify.add_argument(
        "--failure", action="append", default=[], metavar="STEP=MESSAGE", help="a failed step to report (repeatable)"
    )
    notify.add_argument("--json", action="store_true", help="print the result as JSON")
    notify.set_defaults(handler=run_notify)


def run_deploy(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.deploy import deploy

    result = deploy(settings, run_context(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    elif result.status == "nothing_approved":
        print("Nothing approved: the production models and the backend are unchanged.")
    else:
        for model, version in sorted(result.deployed.items()):
            sha = result.backend[model]["artifact_sha256"]
            print(f"{model:<12} {version}  sha256 {sha[:12]}  (was {result.previous[model] or 'none'})")
    return 0


def run_notify(settings: Settings, args: argparse.Namespace) -> int:
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
