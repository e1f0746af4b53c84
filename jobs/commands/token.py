"""``retrain token``: mint an admin JWT for the serving backend (which runs as ``retrain-serve``, its own command)."""

from __future__ import annotations

import argparse

from jobs.settings import Settings

DEFAULT_TTL = "5h"  # what the DAG's preflight advises (jobs.deploy.ttl_that_passes); tests/test_airflow_tasks.py


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "token",
        help="print an HS256 JWT signed with SECRET_KEY (for ADMIN_JWT_TOKEN)",
        description="Mints a token for the serving backend's POST /admin/reload_models. The token is printed on "
        "standard output only; store it where the DAG reads it: `retrain token ... | retrain airflow set-token` (the "
        "Airflow Variable ADMIN_JWT_TOKEN), a secrets backend, or the ADMIN_JWT_TOKEN environment variable.",
    )
    parser.add_argument("--role", default="admin", help="the 'role' claim (default admin; the backend needs admin)")
    parser.add_argument(
        "--ttl",
        default=DEFAULT_TTL,
        help=f"lifetime: 3600, 30m, 1h, 7d (default {DEFAULT_TTL}: one run of the DAG, whose preflight wants 3 h 45 "
        "min left; 8d for a token rotated every week)",
    )
    parser.add_argument("--subject", default="retrain", help="the 'sub' claim, shown in the backend's log")
    parser.set_defaults(handler=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.ml.tokens import mint, parse_ttl

    print(mint(settings.secret_key, role=args.role, ttl=parse_ttl(args.ttl), subject=args.subject))
    return 0
