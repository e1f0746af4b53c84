"""``retrain test-data``: run the SQL project's data tests."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Registered by the data-test runner."""
