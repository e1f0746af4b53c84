"""``<model>.yml`` beside a model: its description, column docs, data tests and unit tests (dbt's properties)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jobs.errors import SqlProjectError
from jobs.sqlproject.project import Model

_TOP_KEYS = ("description", "columns", "tests", "unit_tests")


@dataclass(frozen=True)
class ModelProperties:
    model: Model
    path: Path
    description: str
    columns: tuple[dict[str, Any], ...]
    tests: tuple[Any, ...]
    unit_tests: tuple[dict[str, Any], ...]


def load_properties(model: Model) -> ModelProperties:
    """Read ``<model>.yml``; a model without one has no tests (``retrain check`` lists such models)."""
    path = model.properties_path
    if not path.is_file():
        return ModelProperties(model, path, "", (), (), ())
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise SqlProjectError(f"{path}{where}: invalid YAML: {getattr(e, 'problem', e)}") from e
    if not isinstance(document, dict):
        raise SqlProjectError(f"{path}: expected a mapping with keys {', '.join(_TOP_KEYS)}.")
    unknown = sorted(set(document) - set(_TOP_KEYS))
    if unknown:
        raise SqlProjectError(f"{path}: unknown key(s) {', '.join(unknown)}. Valid keys: {', '.join(_TOP_KEYS)}.")
    columns = document.get("columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, dict) and c.get("name") for c in columns):
        raise SqlProjectError(f"{path}: 'columns' must be a list of mappings, each with a 'name'.")
    unit_tests = document.get("unit_tests") or []
    if not isinstance(unit_tests, list) or not all(isinstance(t, dict) and t.get("name") for t in unit_tests):
        raise SqlProjectError(f"{path}: 'unit_tests' must be a list of mappings, each with a 'name'.")
    return ModelProperties(
        model=model,
        path=path,
        description=str(document.get("description", "")),
        columns=tuple(columns),
        tests=tuple(document.get("tests") or ()),
        unit_tests=tuple(unit_tests),
    )
