"""Spark's error text made readable: py4j's wrapping removed, so messages start with what went wrong."""

from __future__ import annotations

import re

_PY4J_PREFIX = re.compile(r"^An error occurred while calling [\w.$]+\.\s*:?\s*", re.IGNORECASE)


def strip_py4j(text: str) -> str:
    """Drop py4j's "An error occurred while calling o74.parquet." wording: it names a JVM object, not a problem."""
    return _PY4J_PREFIX.sub("", text.strip())


def first_line(error: BaseException) -> str:
    """The first line of Spark's message (the rest is the plan or a stack), or the error's type when it has none."""
    text = strip_py4j(str(error))
    return text.splitlines()[0] if text else type(error).__name__
