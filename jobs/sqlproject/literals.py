"""Values from ``var()`` rendered as Spark SQL literals, so a var can never inject SQL into a model."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from jobs.errors import CompilationError


def sql_literal(value: Any, name: str = "value") -> str:
    """``'text'`` with quotes and backslashes escaped, numbers as numbers, lists as ``a, b`` for ``IN (...)``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CompilationError(f"The var {name!r} must be a finite number. Got {value!r} instead.")
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, Sequence):
        if not value:
            raise CompilationError(f"The var {name!r} is an empty list, which is not valid SQL in IN (...).")
        return ", ".join(sql_literal(item, name) for item in value)
    if isinstance(value, Mapping):
        raise CompilationError(f"The var {name!r} is a mapping; vars must be strings, numbers, booleans or lists.")
    return sql_literal(str(value), name)
