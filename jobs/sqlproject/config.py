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

from jobs.errors import ConfigError, check_scalar
from jobs.sqlproject.yamlfile import check_keys, load_yaml, where

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
    #: dbt's source group (``source('group', 'table')``) and the table's name in it; None for a flat source
    group: str | None = None
    table_name: str = ""

    @property
    def call(self) -> str:
        """How a model names it: ``source('predictions')`` or ``source('ecom', 'raw_customers')``."""
        return f"source({self.group!r}, {self.table_name!r})" if self.group else f"source({self.name!r})"

    @property
    def relation_sql(self) -> str:
        """The SQL relation PostgreSQL reads from: the table name or the parenthesised query."""
        return self.table if self.table else f"({self.query.strip().rstrip(';')}) AS {self.name}_query"  # type: ignore[union-attr]

    @property
    def spark_schema_ddl(self) -> str:
        """The declared columns as a Spark DDL string (``id BIGINT, data STRING, ...``)."""
        return ", ".join(f"`{name}` {type_}" for name, type_ in self.columns.items())


SOURCE_KEYS = ("name", "description", "table", "query", "partition_column", "window_column", "jdbc_options", "columns")
GROUP_KEYS = ("name", "description", "schema", "tables", "partition_column", "window_column", "jdbc_options")
TABLE_KEYS = (
    "name",
    "description",
    "identifier",
    "query",
    "partition_column",
    "window_column",
    "jdbc_options",
    "columns",
)
COLUMN_KEYS = ("name", "data_type", "description")


def source_key(group: str | None, table: str) -> str:
    """The name a source is known by (and its snapshot folder): ``table``, or ``group__table`` for dbt's groups."""
    return f"{group}__{table}" if group else table


def _columns(value: Any, path: Path, name: str, at: str) -> dict[str, str]:
    """``{id: bigint}`` or dbt's list ``[{name: id, data_type: bigint}]``."""
    if isinstance(value, list):
        columns = {}
        for column in value:
            check_keys(column, COLUMN_KEYS, str(path), f"a column of source {name!r}")
            if not column.get("name") or not column.get("data_type"):
                raise ConfigError(f"{at}: each column of source {name!r} needs 'name' and 'data_type'.")
            columns[str(column["name"])] = str(column["data_type"])
        value = columns
    if not isinstance(value, dict) or not value:
        raise ConfigError(
            f"{at}: source {name!r} needs 'columns:', a mapping of column name to Spark type "
            "(e.g. id: bigint) or a list of {name, data_type}, so models can be checked without reading data."
        )
    return {str(k): str(v) for k, v in value.items()}


def _source(entry: Any, path: Path, group: Any = None) -> Source:
    file = str(path)
    group_name = group.get("name") if group is not None else None
    check_keys(
        entry,
        TABLE_KEYS if group is not None else SOURCE_KEYS,
        file,
        f"table of source group {group_name!r}" if group is not None else "a source",
    )
    at = where(file, entry)
    table_name = _require_identifier(entry.get("name"), "a source's 'name'", path)
    name = source_key(group_name, table_name)
    inherited = {k: group.get(k) for k in ("partition_column", "window_column") if group is not None}
    settings = {**{k: v for k, v in inherited.items() if v is not None}, **entry}
    query = entry.get("query")
    if group is not None:
        table = None if query else f"{group.get('schema') or group_name}.{entry.get('identifier') or table_name}"
    else:
        table = entry.get("table")
        if bool(table) == bool(query):
            raise ConfigError(f"{at}: source {name!r} must have exactly one of 'table' or 'query'.")
    columns = _columns(entry.get("columns"), path, name, at)
    for key in ("partition_column", "window_column"):
        if settings.get(key) not in columns:
            raise ConfigError(
                f"{at}: source {name!r} has {key}={settings.get(key)!r}, which is not one of its columns: "
                f"{', '.join(columns)}."
            )
    jdbc = {**((group or {}).get("jdbc_options") or {}), **(entry.get("jdbc_options") or {})}
    return Source(
        name=name,
        path=path,
        table=table,
        query=query,
        partition_column=settings["partition_column"],
        window_column=settings["window_column"],
        columns=columns,
        description=str(entry.get("description", "")),
        jdbc_options={str(k): str(v) for k, v in jdbc.items()},
        group=group_name,
        table_name=table_name,
    )


def load_sources(project_dir: Path) -> dict[str, Source]:
    """Read ``sources.yml``: flat sources (``source('name')``) and dbt's groups of ``tables:``
    (``source('group', 'table')``); every error names the file, the line and the source."""
    path = project_dir / SOURCES_FILE
    document = load_yaml(path, ConfigError)
    check_keys(document, ("version", "sources"), str(path), "sources.yml")
    entries = document.get("sources") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a top-level 'sources:' list.")
    sources: dict[str, Source] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: each source must be a mapping with a 'name'. Got {entry!r} instead.")
        if "tables" in entry:
            check_keys(entry, GROUP_KEYS, str(path), "a source group")
            group_name = _require_identifier(entry.get("name"), "a source group's 'name'", path)
            tables = entry.get("tables")
            if not isinstance(tables, list) or not tables:
                raise ConfigError(
                    f"{where(str(path), entry, 'tables')}: 'tables' of source group "
                    f"{group_name!r} must be a non-empty list."
                )
            found = [_source(table, path, entry) for table in tables]
        else:
            found = [_source(entry, path)]
        for source in found:
            if source.name in sources:
                raise ConfigError(f"{where(str(path), entry)}: the source {source.name!r} is declared twice.")
            sources[source.name] = source
    return sources


def load_project_vars(project_dir: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The project's ``vars`` (defaults from ``project.yml``) with command-line overrides applied."""
    path = project_dir / PROJECT_FILE
    document = _read_yaml(path) if path.is_file() else {}
    defaults = document.get("vars") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: 'vars' must be a mapping of name to value.")
    return {**defaults, **(overrides or {})}


def lookback_days(vars_: Mapping[str, Any]) -> int:
    """The run's window in days (the ``lookback_days`` var of sql/project.yml or --vars): extract reads it, and
    transform and train describe the same window."""
    return check_scalar(vars_.get("lookback_days"), "The 'lookback_days' var (sql/project.yml or --vars)", minimum=1)


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
