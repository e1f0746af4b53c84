"""``retrain deploy``: promote the versions the gate approved and make the serving backend reload them."""

from __future__ import annotations

import argparse
import json

from jobs.commands.common import add_run_arguments, run_context
from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "deploy",
        help="promote the versions validate approved and make the backend reload them (rolled back on failure)",
        description="Reads runs/ds=D/decision.json, promotes the approved versions in MODEL_STORE, calls "
        "POST {BACKEND_URL}/admin/reload_models with ADMIN_JWT_TOKEN, and checks the versions and hashes the "
        "backend reports. On any failure the production pointers are restored and the command fails.",
    )
    add_run_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
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
