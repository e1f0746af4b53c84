"""``retrain serve`` (the reference serving backend) and ``retrain token`` (mint an admin JWT)."""

from __future__ import annotations

import argparse

from jobs.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve",
        help="run the reference serving backend (FastAPI + uvicorn): /predict/{model}, /admin/reload_models",
        description="Serves the production version of every model in MODEL_STORE (recipes from MODELS_DIR) and "
        "logs each prediction into health_records (DATABASE_URL or the embedded PostgreSQL). Needs SECRET_KEY. "
        "One process: the models live in it, so a reload reaches every request.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.set_defaults(handler=run_serve, uses_database=True)

    token = subparsers.add_parser(
        "token",
        help="print an HS256 JWT signed with SECRET_KEY (for ADMIN_JWT_TOKEN)",
        description="Mints a token for the serving backend's POST /admin/reload_models. The token is printed on "
        "standard output only; store it as ADMIN_JWT_TOKEN (e.g. an Airflow variable or secret).",
    )
    token.add_argument("--role", default="admin", help="the 'role' claim (default admin; the backend needs admin)")
    token.add_argument("--ttl", default="1h", help="lifetime: 3600, 30m, 1h, 7d (default 1h)")
    token.add_argument("--subject", default="retrain", help="the 'sub' claim, shown in the backend's log")
    token.set_defaults(handler=run_token)


def run_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from serving.app import create_app

    app = create_app(settings)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


def run_token(settings: Settings, args: argparse.Namespace) -> int:
    from serving.tokens import mint, parse_ttl

    print(mint(settings.secret_key, role=args.role, ttl=parse_ttl(args.ttl), subject=args.subject))
    return 0
