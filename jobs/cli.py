"""The ``retrain`` command line: parses arguments, sets up logging, maps errors to exit codes.

Each command lives in ``jobs/commands/<command>.py`` (``retrain class-archive`` in ``class_archive.py``) and exposes
``register(subparsers)``; a handler takes
``(settings, args)`` and returns an exit code. Heavy imports (PySpark, scikit-learn) happen inside handlers so
that ``retrain --help`` and ``retrain db status`` stay instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from jobs import __version__
from jobs.commands import (
    airflow,
    backtest,
    check,
    class_archive,
    compile,
    db,
    demo,
    deploy,
    docs,
    extract,
    ls,
    models,
    notify,
    runs,
    spark_connect,
    test,
    token,
    train,
    transform,
    validate,
)
from jobs.errors import RetrainError, SparkConnectUnavailableError
from jobs.settings import Settings, redact_logs
from jobs.spark.remote import lost_server_reported

log = logging.getLogger("retrain")

#: in the order ``retrain --help`` lists them: the database, the steps of a run, the SQL project, the rest
COMMANDS = (
    db,
    extract,
    transform,
    train,
    validate,
    deploy,
    notify,
    compile,
    ls,
    check,
    docs,
    test,
    models,
    backtest,
    runs,
    token,
    demo,
    airflow,
    spark_connect,
    class_archive,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retrain", description="Weekly model-retraining pipeline (PostgreSQL -> Spark -> scikit-learn)."
    )
    parser.add_argument("--version", action="version", version=f"retrain {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("py4j", "pyspark"):  # py4j at DEBUG would log the JDBC password it passes to the JVM
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        settings = Settings.from_env()
        redact_logs(settings)  # a library's message may quote a secret: no log line shows one
        reads_database = getattr(args, "uses_database", False) or getattr(args, "from_database", False)
        if settings.uses_embedded_database and reads_database:
            log.info(
                "DATABASE_URL is unset: using the embedded PostgreSQL at %s (start it with `retrain db start`).",
                settings.embedded_database_url,
            )
        with lost_server_reported(settings.remote, f"running `retrain {args.command}`"):
            return int(args.handler(settings, args) or 0)
    except RetrainError as e:
        log.error("%s", e)
        if not isinstance(e, SparkConnectUnavailableError):  # a server that is gone cannot name its log
            _name_spark_log()
        return e.exit_code
    except KeyboardInterrupt:
        log.error("Interrupted.")
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """The program reading stdout stopped (``retrain compile | head``): end quietly, as other tools in a pipe do.

    stdout is pointed at /dev/null first, so that Python's own flush at exit does not fail a second time and print
    a traceback; the exit code is a shell's for a process ended by SIGPIPE (128 + 13).
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (a test's capture): nothing will flush it at exit
        pass
    return 141


def _name_spark_log() -> None:
    """After a failure, say where Spark's full log is: the console showed only the pipeline's lines."""
    from jobs.spark.session import spark_log_file

    try:
        path = spark_log_file()
    except Exception:  # noqa: BLE001 - a dead JVM must not hide the error already reported
        return
    if path is not None:
        log.error("Spark's full log (Java stack traces included): %s", path)
