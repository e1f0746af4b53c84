"""The project-level files of an SQL project: ``project.yml`` (vars) and ``sources.yml`` (raw inputs).

Both the extract step (which reads sources from PostgreSQL) and the model runner (which registers them as temp
views) read sources from here, so a source is declared once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jobs.errors import ConfigError

PROJECT_FILE = "project.yml"
SOURCES_FILE = "sources.yml"
_IDENTIFIER_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist. Is --project-dir pointing at the SQL project?") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {getattr(e, 'problem', e)}") from e


def _require_identifier(value: Any, what: str, path: Path) -> str:
    if not isinstance(value, str) or not value or not set(value) <= _IDENTIFIER_CHARS or value[0].isdigit():
        raise ConfigError(
            f"{path}: {what} must be a lower-case identifier (letters, digits, '_'). Got {value!r} instead."
        )
    return value


@dataclass(frozen=True)
class Source:
    """A raw input read from PostgreSQL: a table or a query, with how to partition and bound the read."""

    name: str
    path: Path
    partition_column: str
    window_column: str
    columns: Mapping[str, str]
    table: str | None = None
    query: str | None = None
    description: str = ""
    jdbc_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def relation_sql(self) -> str:
        """The SQL relation PostgreSQL reads from: the table name or the parenthesised query."""
        return self.table if self.table else f"({self.query.strip().rstrip(';')}) AS {self.name}_query"  # type: ignore[union-attr]

    @property
    def spark_schema_ddl(self) -> str:
        """The declared columns as a Spark DDL string (``id BIGINT, data STRING, ...``)."""
        return ", ".join(f"`{name}` {type_}" for name, type_ in self.columns.items())


def load_sources(project_dir: Path) -> dict[str, Source]:
    """Read ``sources.yml``; every error names the file and the source."""
    path = project_dir / SOURCES_FILE
    document = _read_yaml(path)
    entries = document.get("sources") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a top-level 'sources:' list.")
    sources: dict[str, Source] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: each source must be a mapping with a 'name'. Got {entry!r} instead.")
        name = _require_identifier(entry.get("name"), "a source's 'name'", path)
        if name in sources:
            raise ConfigError(f"{path}: the source {name!r} is declared twice.")
        table, query = entry.get("table"), entry.get("query")
        if bool(table) == bool(query):
            raise ConfigError(f"{path}: source {name!r} must have exactly one of 'table' or 'query'.")
        columns = entry.get("columns")
        if not isinstance(columns, dict) or not columns:
            raise ConfigError(
                f"{path}: source {name!r} needs 'columns:', a mapping of column name to Spark type "
                "(e.g. id: bigint), so models can be checked without reading data."
            )
        for key in ("partition_column", "window_column"):
            if entry.get(key) not in columns:
                raise ConfigError(
                    f"{path}: source {name!r} has {key}={entry.get(key)!r}, which is not one of its columns: "
                    f"{', '.join(columns)}."
                )
        sources[name] = Source(
            name=name,
            path=path,
            table=table,
            query=query,
            partition_column=entry["partition_column"],
            window_column=entry["window_column"],
            columns={str(k): str(v) for k, v in columns.items()},
            description=str(entry.get("description", "")),
            jdbc_options={str(k): str(v) for k, v in (entry.get("jdbc_options") or {}).items()},
        )
    return sources


def load_project_vars(project_dir: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The project's ``vars`` (defaults from ``project.yml``) with command-line overrides applied."""
    path = project_dir / PROJECT_FILE
    document = _read_yaml(path) if path.is_file() else {}
    defaults = document.get("vars") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: 'vars' must be a mapping of name to value.")
    return {**defaults, **(overrides or {})}


def parse_vars_option(raw: str | None) -> dict[str, Any]:
    """Parse ``--vars '{"lookback_days": 30}'`` (JSON or YAML mapping)."""
    if not raw:
        return {}
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--vars must be a JSON or YAML mapping, like '{{\"lookback_days\": 30}}': {e}") from e
    if not isinstance(value, dict):
        raise ConfigError(f"--vars must be a mapping, like '{{\"lookback_days\": 30}}'. Got {json.dumps(raw)}.")
    return value
