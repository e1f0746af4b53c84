"""``retrain db start|stop|status|url|seed``: the project-local PostgreSQL."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("db", help="manage the embedded PostgreSQL (start, stop, status, url, seed)")
    parser.set_defaults(handler=lambda settings, args: parser.print_help() or 2)
