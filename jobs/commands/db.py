"""``retrain db start|stop|status|url|seed``: the project-local PostgreSQL and its demo data."""

from __future__ import annotations

import argparse
import json
import logging
from datetime import date

from jobs.errors import ConfigError, RetrainError, check_scalar
from jobs.settings import Settings

DEFAULT_ROWS = 200_000
DEFAULT_SEED = 42
STOPPED_EXIT_CODE = 3  # as `pg_ctl status`: scripts can test whether the cluster runs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="manage the embedded PostgreSQL (start, stop, status, url, seed)")
    parser.set_defaults(handler=lambda settings, args: parser.print_help() or 2)
    commands = parser.add_subparsers(dest="db_command", metavar="SUBCOMMAND")

    start = commands.add_parser(
        "start", help="create (first time) and start the embedded PostgreSQL on RETRAIN_PG_PORT (default 54329)"
    )
    start.set_defaults(handler=run_start)
    commands.add_parser("stop", help="stop the embedded PostgreSQL").set_defaults(handler=run_stop)
    commands.add_parser(
        "status", help=f"print whether it runs, its port and data dir (exit code {STOPPED_EXIT_CODE} when stopped)"
    ).set_defaults(handler=run_status)
    url = commands.add_parser(
        "url",
        help="print the embedded PostgreSQL's connection URL (without its password)",
        description="Prints the embedded PostgreSQL's URL without the password. With --with-password, prints the "
        'whole URL, for tools that need it: psql "$(retrain db url --with-password)".',
    )
    url.add_argument("--with-password", action="store_true", help="include the password (from the 0600 password file)")
    url.set_defaults(handler=run_url)

    seed = commands.add_parser(
        "seed",
        help="replace the tables' contents with deterministic demo data (DATABASE_URL or the embedded PostgreSQL)",
        description="Generates demo users and health records and loads them with COPY. Seeding always replaces "
        "what users and health_records held (TRUNCATE in the same transaction), so seeding twice with the same "
        "seed gives the same tables.",
    )
    seed.add_argument(
        "--rows", type=_positive_int, default=DEFAULT_ROWS, help=f"health records (default {DEFAULT_ROWS})"
    )
    seed.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    seed.add_argument("--end-date", type=_date, default=None, help="the day the data ends (default 2026-11-22)")
    seed.add_argument(
        "--force",
        action="store_true",
        help="replace existing records even when DATABASE_URL points at a database other than the embedded one",
    )
    seed.set_defaults(handler=run_seed, uses_database=True)


def _positive_int(value: str) -> int:
    try:
        return check_scalar(value, "The number of rows", minimum=1, from_text=True)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date such as 2026-11-22, got {value!r}") from None


def _cluster(settings: Settings):
    from jobs.postgres.embedded import EmbeddedPostgres

    return EmbeddedPostgres.from_settings(settings)


def run_start(settings: Settings, args: argparse.Namespace) -> int:
    cluster = _cluster(settings)
    cluster.start()
    print(f"running on 127.0.0.1:{cluster.port} (data dir {cluster.data_dir})")
    print(cluster.database_url().redacted())
    if not settings.uses_embedded_database:
        print("Note: DATABASE_URL is set, so the pipeline uses that database, not this one.")
    return 0


def run_stop(settings: Settings, args: argparse.Namespace) -> int:
    _cluster(settings).stop()
    print("stopped")
    return 0


def run_status(settings: Settings, args: argparse.Namespace) -> int:
    status = _cluster(settings).status()
    state = f"running (pid {status.pid})" if status.running else "stopped"
    print(f"{state}\nport: {status.port or settings.embedded_pg_port}\ndata dir: {status.data_dir}")
    return 0 if status.running else STOPPED_EXIT_CODE


def run_url(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.uses_embedded_database:
        logging.getLogger("retrain").warning(
            "DATABASE_URL is set, so the pipeline reads that database, not this embedded one (%s).",
            settings.database().redacted(),
        )
    if not args.with_password:
        print(settings.embedded_database_url)
        return 0
    db = settings.embedded_database()
    if not db.password:
        raise RetrainError(
            f"The embedded PostgreSQL has no password file yet ({settings.embedded_pg_secret_file}): create the "
            "cluster with `retrain db start` first."
        )
    print(db.full_url())
    return 0


def run_seed(settings: Settings, args: argparse.Namespace) -> int:
    from jobs.demo.loader import existing_records
    from jobs.demo.seed import DEFAULT_END_DATE, seed_database
    from jobs.postgres.embedded import loading_database

    db = loading_database(settings)  # the embedded cluster's superuser: the pipeline's role cannot replace rows
    if settings.uses_embedded_database and not _cluster(settings).status().running:
        raise RetrainError(
            f"The embedded PostgreSQL ({settings.embedded_pg_dir}) is not running. Start it with `retrain db start`, "
            "or set DATABASE_URL to seed another database."
        )
    if not settings.uses_embedded_database and not args.force:
        existing = existing_records(db)
        if existing:
            raise ConfigError(
                f"{db.redacted()} already holds {existing} health records and seeding replaces them all. It is not "
                "the embedded database (DATABASE_URL is set): pass --force if you really mean to replace them."
            )
    report, loaded = seed_database(db, args.rows, args.seed, args.end_date or DEFAULT_END_DATE)
    summary = {
        "database": db.redacted(),
        "load_seconds": round(loaded.seconds, 2),
        "rows_per_second": round(loaded.rows_per_second),
        "report": report.to_dict(),
    }
    print(json.dumps(summary, indent=2))
    return 0
