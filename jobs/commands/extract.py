"""``retrain extract``: snapshot the sources from PostgreSQL."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Registered by the extract step."""
