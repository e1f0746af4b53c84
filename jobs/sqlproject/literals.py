"""Values from ``var()`` rendered as Spark SQL literals, so a var can never inject SQL into a model; ``| sql``
renders one as written, within limits for values from the command line."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
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


#: what a ``--vars`` value may be to be rendered raw (``| sql``): a number, a name, a date or time, or one quoted
#: literal with no quote, backslash or semicolon inside; no spaces, so nothing can be appended to the SQL
_SAFE_RAW = re.compile(r"""^(?:[A-Za-z0-9_.:+-]+|'[^'\\;]*'|"[^"\\;]*")$""")
_QUOTED = re.compile(r"""^\s*(['"]).*\1\s*$""", re.S)


class VarValue:
    """What ``var('name')`` gives a template: it renders as an SQL literal (``{{ var('x') }}``), and otherwise
    behaves as the value itself: ``{% if var('flag') %}``, ``var('env') == 'prod'``, ``{% for t in var('types') %}``.

    ``{{ var('x') | sql }}`` renders the value as it is written, for a value that is SQL (``"'1998-12-01'"``,
    ``"INTERVAL 7 DAYS"``). A value from the project's files or a template is the analyst's own SQL; one from
    ``--vars`` must be a number, a name, a date or one quoted literal, so the command line cannot inject SQL.
    """

    def __init__(self, name: str, value: Any, from_command_line: bool, warn: Callable[[str], None] | None) -> None:
        self.name = name
        self.value = value
        self.from_command_line = from_command_line
        self._warn = warn

    def __str__(self) -> str:
        if self._warn and isinstance(self.value, str) and _QUOTED.match(self.value):
            self._warn(
                f"var({self.name!r}) is {self.value!r}, which already looks like quoted SQL: rendered as a literal "
                f"it is quoted again ({sql_literal(self.value)}). Give the bare value, or render it as written "
                f"with {{{{ var({self.name!r}) | sql }}}}."
            )
        return sql_literal(self.value, self.name)

    def raw_sql(self) -> str:
        """The value as SQL text, as written (``| sql``)."""
        items = self.value if isinstance(self.value, list | tuple) else [self.value]
        if not items:
            raise CompilationError(f"The var {self.name!r} is an empty list, which is not valid SQL.")
        parts = []
        for item in items:
            if item is None or isinstance(item, bool | int | float):
                parts.append(sql_literal(item, self.name))
                continue
            text = str(item)
            if self.from_command_line and not _SAFE_RAW.match(text):
                raise CompilationError(
                    f"var({self.name!r}) | sql: {text!r} comes from --vars and is not a number, a name, a date or "
                    "one quoted literal, so it is not rendered as SQL (it could change the query). Set it in the "
                    "project file's vars:, or drop | sql to render it as a literal."
                )
            parts.append(text)
        return ", ".join(parts)

    def __repr__(self) -> str:
        return f"<var {self.name}={self.value!r}>"

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") or attribute == "jinja_pass_arg":
            raise AttributeError(attribute)
        return getattr(self.value, attribute)

    def __eq__(self, other: object) -> bool:
        return self.value == (other.value if isinstance(other, VarValue) else other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.value) if isinstance(self.value, Hashable) else id(self)

    def __bool__(self) -> bool:
        return bool(self.value)

    def __len__(self) -> int:
        return len(self.value)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.value)

    def __getitem__(self, key: Any) -> Any:
        return self.value[key]

    def __contains__(self, item: Any) -> bool:
        return item in self.value

    def __lt__(self, other: Any) -> bool:
        return self.value < _plain(other)

    def __le__(self, other: Any) -> bool:
        return self.value <= _plain(other)

    def __gt__(self, other: Any) -> bool:
        return self.value > _plain(other)

    def __ge__(self, other: Any) -> bool:
        return self.value >= _plain(other)

    def __int__(self) -> int:
        return int(self.value)

    def __float__(self) -> float:
        return float(self.value)

    def __add__(self, other: Any) -> Any:
        return self.value + _plain(other)

    def __radd__(self, other: Any) -> Any:
        return _plain(other) + self.value

    def __sub__(self, other: Any) -> Any:
        return self.value - _plain(other)

    def __mul__(self, other: Any) -> Any:
        return self.value * _plain(other)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, VarValue) else value


def sql_filter(value: Any) -> str:
    """The ``| sql`` filter: a var rendered as written (see :class:`VarValue`)."""
    if isinstance(value, VarValue):
        return value.raw_sql()
    raise CompilationError(
        f"| sql renders a var() as the SQL it holds, like {{{{ var('start') | sql }}}}. Got {value!r}, which is "
        "not a var: write it in the SQL directly."
    )
