"""``retrain compile|ls|check|transform|test-data``: the SQL project."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Registered by the SQL runner."""
