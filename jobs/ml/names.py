"""The one validator of model names and version names, wherever a name may come from.

Names become paths in the model store (``<store>/<model>/<version>/``), keys of the backend's registry and the
``model_version`` logged with every prediction. A name arrives from a command line, ``decision.json``,
``production.json`` or a recipe's file name, so each of those readers checks it here, before any path is built:
``../heart/<version>`` or ``/tmp/x`` must never reach :class:`pathlib.Path`. The patterns are strict on purpose:
a model is a lower-case identifier (it is also an SQL model's prefix and a Python file's stem) and a version is
exactly what :meth:`jobs.ml.store.ModelStore.write` makes, ``<ds>-<8 hex>``.
"""

from __future__ import annotations

import re
from typing import Any

from jobs.errors import InvalidNameError

MODEL_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
VERSION_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9a-f]{8}")
MODEL_RULE = "a lower-case letter, then up to 63 lower-case letters, digits or '_' (like a recipe's file name)"
VERSION_RULE = "<ds>-<8 hex digits>, as `retrain train` names versions (e.g. 2026-11-22-5e6b8d88)"


def is_model_name(name: Any) -> bool:
    return isinstance(name, str) and MODEL_PATTERN.fullmatch(name) is not None


def is_version_name(name: Any) -> bool:
    return isinstance(name, str) and VERSION_PATTERN.fullmatch(name) is not None


def check_model_name(name: Any, *, where: str = "") -> str:
    """``name`` if it is a valid model name; otherwise :class:`InvalidNameError` saying where it came from."""
    if not is_model_name(name):
        raise InvalidNameError(f"{_where(where)}{_shown(name)} is not a model name: expected {MODEL_RULE}.")
    return name


def check_version_name(version: Any, *, model: str | None = None, where: str = "") -> str:
    """``version`` if it is a valid version name; otherwise :class:`InvalidNameError` (``retrain models list``)."""
    if not is_version_name(version):
        of = f" of model {model!r}" if model else ""
        raise InvalidNameError(
            f"{_where(where)}{_shown(version)} is not a version name{of}: expected {VERSION_RULE}. "
            "`retrain models list` shows every model and version."
        )
    return version


def _where(where: str) -> str:
    return f"{where}: " if where else ""


def _shown(value: Any) -> str:
    """The rejected value, quoted and cut short: it may be anything a file or a command line held."""
    if not isinstance(value, str):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
