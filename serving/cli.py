"""``retrain-serve`` (or ``python -m serving``): run the reference serving backend with uvicorn.

It reads the pipeline's settings (``MODEL_STORE``, ``MODELS_DIR``, ``DATABASE_URL`` or the embedded PostgreSQL,
``SECRET_KEY``) and needs only the ``serving`` extra: nothing it imports needs Spark.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from jobs.errors import RetrainError
from jobs.settings import Settings, redact_logs

log = logging.getLogger("retrain-serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retrain-serve",
        description="Runs the reference serving backend (FastAPI + uvicorn): /predict/{model}, "
        "/admin/reload_models, /models, /healthz, /readyz. Serves the production version of every model in MODEL_STORE "
        "(recipes from MODELS_DIR) and logs each prediction into health_records (DATABASE_URL or the embedded "
        "PostgreSQL). Needs SECRET_KEY. One process: the models live in it, so a reload reaches every request.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = Settings.from_env()
        redact_logs(settings)  # uvicorn's and the backend's log lines, tracebacks included
        if settings.uses_embedded_database:
            log.info(
                "DATABASE_URL is unset: using the embedded PostgreSQL at %s (start it with `retrain db start`).",
                settings.embedded_database_url,
            )
        from serving.app import create_app

        app = create_app(settings)
    except RetrainError as e:
        log.error("%s", e)
        return e.exit_code
    import uvicorn

    from serving.protocol import head_limited

    # uvicorn's httptools protocol, refusing a request line and headers over SERVING_MAX_HEADER_BYTES (431) or
    # slower than SERVING_CLIENT_TIMEOUT_SECONDS (408)
    protocol = head_limited(settings.serving_max_header_bytes, settings.serving_client_timeout_seconds)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False, http=protocol)
    return 0
