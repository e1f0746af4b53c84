"""``retrain spark-connect start|stop|status``: one long-lived Spark driver for the steps (``SPARK_REMOTE``)."""

from __future__ import annotations

import argparse

from jobs.settings import Settings

STOPPED_EXIT_CODE = 3  # as `retrain db status`


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "spark-connect",
        help="start, stop or check the Spark Connect server that SPARK_REMOTE points the steps at",
        description="A Spark Connect server is one Spark driver kept running between runs: with SPARK_REMOTE set "
        "to its URL, extract and transform run as its clients instead of starting a driver each, and skip the "
        "JVM's start and cold JIT (docs/operations.md, 'One long-lived Spark driver'). The server listens on "
        "SPARK_REMOTE's host and port (default sc://127.0.0.1:15002), with the project's spark-defaults.conf.",
    )
    parser.set_defaults(handler=lambda settings, args: parser.print_help() or 2)
    commands = parser.add_subparsers(dest="spark_connect_command", metavar="SUBCOMMAND")
    commands.add_parser("start", help="start the server and wait until it answers").set_defaults(handler=run_start)
    commands.add_parser("stop", help="stop the server this command started").set_defaults(handler=run_stop)
    commands.add_parser(
        "status", help=f"print whether it runs, its URL and log (exit code {STOPPED_EXIT_CODE} when stopped)"
    ).set_defaults(handler=run_status)


def _server(settings: Settings):
    from jobs.spark.connect_server import ConnectServer

    return ConnectServer(settings)


def run_start(settings: Settings, args: argparse.Namespace) -> int:
    server = _server(settings)
    status, seconds = server.start()
    state = f"up in {seconds:.1f} s" if seconds else "already running"
    print(f"Spark Connect server {state} at {status.remote.redacted} (pid {status.pid}); its log: {status.log_file}")
    if settings.remote is None:
        print(f"Point the steps at it: export SPARK_REMOTE={status.remote.redacted}")
    return 0


def run_stop(settings: Settings, args: argparse.Namespace) -> int:
    print("stopped" if _server(settings).stop() else "not running (nothing to stop)")
    return 0


def run_status(settings: Settings, args: argparse.Namespace) -> int:
    status = _server(settings).status()
    if status.running:
        state = f"running (pid {status.pid})"
    elif status.answering:
        state = "a process this command did not start answers on its port"
    else:
        state = "stopped"
    print(f"{state}\nurl: {status.remote.redacted}\nlog: {status.log_file}")
    return 0 if status.running else STOPPED_EXIT_CODE
