"""The project-level files of an SQL project: ``project.yml`` (vars) and sources (raw inputs), declared in
``sources.yml`` or under ``sources:`` of any property file, as in dbt.

Both the extract step (which reads sources from PostgreSQL) and the model runner (which registers them as temp
views) read sources from here, so a source is declared once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from jobs.errors import ConfigError, RetrainError, SqlProjectError, check_scalar
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


#: the PostgreSQL type a NULL stands in as for a missing optional column, by the column's declared Spark type
_POSTGRES_TYPES = {
    "bigint": "bigint",
    "int": "integer",
    "integer": "integer",
    "double": "double precision",
    "float": "real",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamptz",
    "string": "text",
}


@dataclass(frozen=True)
class OptionalColumn:
    """A column of a source that an older backend's database may not have yet (``optional_columns:``).

    Extract looks it up before reading; when ``table`` lacks it, the source reads NULL in its place and one warning
    says what that costs (``cost``), instead of failing the run.
    """

    name: str
    #: the table the column belongs to, named as the source's query names it (unqualified)
    table: str
    #: the PostgreSQL type of the NULL that stands in for it
    postgres_type: str
    #: what reading NULL costs, for the warning: "<source>: <table> has no column <name> ...; <cost>"
    cost: str


#: Spark types a high-water mark can be kept on: an incremental source's partition column is one of them
_INTEGER_TYPES = ("bigint", "long", "int", "integer", "smallint", "tinyint", "short", "byte")


@dataclass(frozen=True)
class Incremental:
    """How a source is read incrementally (``incremental:``): each week only the rows whose ``partition_column``
    (the unique key) the previous snapshot lacks are read in full; the rest of the window is re-read narrowly, for
    its keys (which rows remain) and ``refresh_columns`` (the values that change after a row is written).

    With ``updated_at`` (dbt snapshots' name: the refresh column the database sets to the current time whenever it
    changes a row's refresh columns), the window is not re-read: only the rows updated since the previous snapshot
    are, and a count and checksum computed inside PostgreSQL confirm that no other row changed."""

    refresh_columns: tuple[str, ...] = ()
    updated_at: str | None = None


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
    #: columns a database may lack, by name (see :class:`OptionalColumn`)
    optional_columns: Mapping[str, OptionalColumn] = field(default_factory=dict)
    #: data tests of the table and its columns (``TestSpec``), run on the run's snapshot like a model's
    tests: tuple[Any, ...] = ()
    #: how to read the source incrementally; None: every extract reads the whole window
    incremental: Incremental | None = None

    @property
    def call(self) -> str:
        """How a model names it: ``source('predictions')`` or ``source('ecom', 'raw_customers')``."""
        return f"source({self.group!r}, {self.table_name!r})" if self.group else f"source({self.name!r})"

    @property
    def relation_sql(self) -> str:
        """The SQL relation PostgreSQL reads from: the table name or the parenthesised query."""
        return self.relation()

    def relation(self, absent: Collection[str] = ()) -> str:
        """The SQL relation PostgreSQL reads from, with NULL in place of the optional columns ``absent`` from the
        database.

        A query source gets a ``WITH <table> AS (SELECT *, NULL::<type> AS <column> FROM <table>)`` in front: the
        query's own unqualified ``<table>`` then names the CTE (a CTE hides a table of the same name, and is not
        visible inside its own definition), so the query is written once, with the column, and runs either way.
        PostgreSQL inlines a CTE read once, so the window's bounds still reach the table's index.
        """
        missing = [self.optional_columns[name] for name in absent]
        if self.table:
            if not missing:
                return self.table
            nulls = ", ".join(f"NULL::{c.postgres_type} AS {c.name}" for c in missing)
            return f"(SELECT *, {nulls} FROM {self.table}) AS {self.name}_table"
        query = self.query.strip().rstrip(";")  # type: ignore[union-attr]
        if missing:
            tables: dict[str, list[OptionalColumn]] = {}
            for column in missing:
                tables.setdefault(column.table, []).append(column)
            shadows = ", ".join(
                f"{table} AS (SELECT *, {', '.join(f'NULL::{c.postgres_type} AS {c.name}' for c in columns)} "
                f"FROM {table})"
                for table, columns in tables.items()
            )
            query = f"WITH {shadows} {query}"
        return f"({query}) AS {self.name}_query"

    @property
    def spark_schema_ddl(self) -> str:
        """The declared columns as a Spark DDL string (``id BIGINT, data STRING, ...``)."""
        return ", ".join(f"`{name}` {type_}" for name, type_ in self.columns.items())


SOURCE_KEYS = (
    "name",
    "description",
    "table",
    "query",
    "partition_column",
    "window_column",
    "jdbc_options",
    "columns",
    "optional_columns",
    "incremental",
)
#: dbt's keys that describe a source and change nothing about how it is read
DBT_SOURCE_KEYS = ("database", "loader", "loaded_at_field", "freshness", "meta", "tags", "config", "quoting")
GROUP_KEYS = (
    "name",
    "description",
    "schema",
    "tables",
    "partition_column",
    "window_column",
    "jdbc_options",
    *DBT_SOURCE_KEYS,
)
TABLE_KEYS = (
    "name",
    "description",
    "identifier",
    "query",
    "partition_column",
    "window_column",
    "jdbc_options",
    "columns",
    "optional_columns",
    "incremental",
    "tests",
    "data_tests",
    "external",
    *(k for k in DBT_SOURCE_KEYS if k not in ("database", "loader")),
)
COLUMN_KEYS = ("name", "data_type", "description", "tests", "data_tests", "meta", "tags", "quote")
OPTIONAL_COLUMN_KEYS = ("table", "type", "cost")
INCREMENTAL_KEYS = ("refresh_columns", "updated_at")


def source_key(group: str | None, table: str) -> str:
    """The name a source is known by (and its snapshot folder): ``table``, or ``group__table`` for dbt's groups."""
    return f"{group}__{table}" if group else table


def _columns(value: Any, path: Path, name: str, at: str) -> dict[str, str]:
    """``{id: bigint}`` or dbt's list ``[{name: id, data_type: bigint}]``, each a type Spark can read."""
    places: dict[str, str] = {}
    if isinstance(value, list):
        columns = {}
        for column in value:
            check_keys(column, COLUMN_KEYS, str(path), f"a column of source {name!r}")
            if not column.get("name") or not column.get("data_type"):
                raise ConfigError(f"{at}: each column of source {name!r} needs 'name' and 'data_type'.")
            columns[str(column["name"])] = str(column["data_type"])
            places[str(column["name"])] = where(str(path), column, "data_type")
        value = columns
    if not isinstance(value, dict) or not value:
        raise ConfigError(
            f"{at}: source {name!r} needs 'columns:', a mapping of column name to Spark type "
            "(e.g. id: bigint) or a list of {name, data_type}, so models can be checked without reading data."
        )
    for column, type_ in value.items():
        if not is_spark_type(str(type_)):
            place = places.get(str(column)) or where(str(path), value, column)
            raise ConfigError(
                f"{place}: column {column!r} of source {name!r} has type {type_!r}, which is not a Spark SQL type. "
                f"Use one of {', '.join(SPARK_TYPE_NAMES)}, decimal(p,s), or array<...>, map<...,...>, "
                "struct<name: ..., ...> of them (for char(n) and varchar(n), string)."
            )
    return {str(k): str(v) for k, v in value.items()}


#: the simple types of Spark SQL's DDL (``retrain`` declares a source's columns in it)
SPARK_TYPE_NAMES = (
    "bigint", "int", "smallint", "tinyint", "double", "float", "boolean", "string", "date", "timestamp",
    "timestamp_ntz", "binary", "integer", "long", "short", "byte", "real", "timestamp_ltz", "variant",
)  # fmt: skip
_DECIMAL_TYPE = re.compile(r"(decimal|dec|numeric)(\(\s*\d+\s*(,\s*\d+\s*)?\))?")


def is_spark_type(text: str) -> bool:
    """Whether Spark's DDL parser reads ``text`` as a type: checked when the project loads, so that a misspelt
    type is an error naming its file and line, not Spark's parse error when the source is first read."""
    type_ = text.strip().lower()
    if type_ in SPARK_TYPE_NAMES or _DECIMAL_TYPE.fullmatch(type_) or type_.startswith("interval "):
        return True
    for kind in ("array", "map", "struct"):
        inner = type_.removeprefix(kind).strip()
        if inner == type_ or not (inner.startswith("<") and inner.endswith(">")):
            continue
        if kind == "struct" and not inner[1:-1].strip():
            return True
        parts = _top_level_split(inner[1:-1])
        if kind == "array":
            return len(parts) == 1 and is_spark_type(parts[0])
        if kind == "map":
            return len(parts) == 2 and all(is_spark_type(part) for part in parts)
        fields = [part.split(":", 1) if ":" in part else part.strip().split(None, 1) for part in parts]
        return all(len(f) == 2 and f[0].strip() and is_spark_type(f[1]) for f in fields)
    return False


def _top_level_split(text: str) -> list[str]:
    """``text`` split at the commas outside ``<...>`` and ``(...)``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "<("
        depth -= char in ">)"
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _optional_columns(
    value: Any, path: Path, name: str, at: str, columns: Mapping[str, str], table: str | None
) -> dict[str, OptionalColumn]:
    """``optional_columns: {verified_at: {table: health_records, cost: ...}}``: each a declared column; a query
    source names the table it belongs to (a table source's is its own table)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"{at}: 'optional_columns' of source {name!r} must be a mapping of column name to "
            "{table, type, cost}, e.g. verified_at: {table: health_records, cost: ...}."
        )
    optional = {}
    for column, spec in value.items():
        column = str(column)
        spec = spec or {}
        check_keys(spec, OPTIONAL_COLUMN_KEYS, str(path), f"optional column {column!r} of source {name!r}")
        if column not in columns:
            raise ConfigError(
                f"{at}: optional column {column!r} of source {name!r} is not one of its columns: "
                f"{', '.join(columns)}. Declare it under 'columns:' too."
            )
        owner = spec.get("table") or table
        if not owner:
            raise ConfigError(
                f"{at}: optional column {column!r} of source {name!r} needs 'table:', the table its query reads "
                "it from (unqualified, as the query names it)."
            )
        if table is None:
            _require_identifier(owner, f"the 'table' of optional column {column!r}", path)
        spark_type = columns[column].strip().lower()
        optional[column] = OptionalColumn(
            name=_require_identifier(column, "an optional column's name", path),
            table=str(owner),
            postgres_type=str(spec.get("type") or _POSTGRES_TYPES.get(spark_type, "text")),
            cost=str(spec.get("cost") or "the source reads NULL for it").strip(),
        )
    return optional


def _incremental(
    value: Any, path: Path, name: str, at: str, columns: Mapping[str, str], partition: str, window: str
) -> Incremental | None:
    """``incremental: {refresh_columns: [verified_outcome, verified_at]}``: declared columns, other than the
    partition column (the unique key the new rows are found by) and the window column (it decides which rows the
    window holds, so a row whose window value changed would be read twice or lost)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(
            f"{at}: 'incremental' of source {name!r} must be a mapping with the key 'refresh_columns', e.g. "
            "incremental: {refresh_columns: [verified_outcome, verified_at]}. Got "
            f"{value!r} instead."
        )
    check_keys(value, INCREMENTAL_KEYS, str(path), f"'incremental' of source {name!r}")
    refresh = value.get("refresh_columns")
    if refresh is None:
        refresh = []
    if not isinstance(refresh, list) or not all(isinstance(c, str) for c in refresh):
        raise ConfigError(
            f"{where(str(path), value, 'refresh_columns')}: 'refresh_columns' of source {name!r} must be a list of "
            f"column names, e.g. [verified_outcome, verified_at]. Got {refresh!r} instead."
        )
    choices = [c for c in columns if c not in (partition, window)]
    for column in refresh:
        if column in (partition, window):
            role = "partition_column" if column == partition else "window_column"
            raise ConfigError(
                f"{where(str(path), value, 'refresh_columns')}: refresh column {column!r} of source {name!r} is its "
                f"{role}, which an incremental read cannot refresh. Choose among: {', '.join(choices)}."
            )
        if column not in columns:
            raise ConfigError(
                f"{where(str(path), value, 'refresh_columns')}: refresh column {column!r} of source {name!r} is "
                f"not one of its columns. Choose among: {', '.join(choices)}."
            )
    duplicates = sorted({c for c in refresh if refresh.count(c) > 1})
    if duplicates:
        raise ConfigError(
            f"{where(str(path), value, 'refresh_columns')}: 'refresh_columns' of source {name!r} names "
            f"{', '.join(duplicates)} more than once."
        )
    updated_at = value.get("updated_at")
    if updated_at is not None and (updated_at not in refresh or columns[updated_at].strip().lower() != "timestamp"):
        timestamps = [c for c in refresh if columns[c].strip().lower() == "timestamp"]
        raise ConfigError(
            f"{where(str(path), value, 'updated_at')}: 'updated_at' of source {name!r} must name one of its "
            "refresh_columns of type timestamp, the one the database sets whenever it changes them. Got "
            f"{updated_at!r}; choose among: {', '.join(timestamps) or '(none: add a timestamp refresh column)'}."
        )
    if columns[partition].strip().lower() not in _INTEGER_TYPES:
        raise ConfigError(
            f"{at}: source {name!r} is incremental, so its partition_column {partition!r} must be a whole-number "
            f"column (one of: {', '.join(_INTEGER_TYPES)}), the unique key the new rows are found by. It is "
            f"{columns[partition]!r}."
        )
    return Incremental(refresh_columns=tuple(refresh), updated_at=updated_at)


def _source(entry: Any, path: Path, group: Any = None) -> Source:
    file = str(path)
    group_name = group.get("name") if group is not None else None
    named = f" {entry.get('name')!r}" if isinstance(entry, dict) and isinstance(entry.get("name"), str) else ""
    check_keys(
        entry,
        TABLE_KEYS if group is not None else SOURCE_KEYS,
        file,
        f"table{named} of source group {group_name!r}" if group is not None else f"the source{named}",
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
    optional = _optional_columns(entry.get("optional_columns"), path, name, at, columns, table)
    incremental = _incremental(
        entry.get("incremental"), path, name, at, columns, settings["partition_column"], settings["window_column"]
    )
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
        optional_columns=optional,
        tests=_source_tests(entry, path),
        incremental=incremental,
    )


def _source_tests(entry: Mapping[str, Any], path: Path) -> tuple[Any, ...]:
    """The ``tests:``/``data_tests:`` of a source table and of its columns, with where each is written."""
    from jobs.sqlproject.properties import TestSpec

    found = []
    for owner, column in [(entry, None)] + [
        (c, str(c.get("name"))) for c in (entry.get("columns") or []) if isinstance(c, dict)
    ]:
        for key in ("tests", "data_tests"):
            items = owner.get(key) or []
            if not isinstance(items, list):
                raise ConfigError(f"{where(str(path), owner, key)}: {key!r} must be a list. Got {items!r}.")
            found.extend(TestSpec(spec, where(str(path), items, i), column) for i, spec in enumerate(items))
    return tuple(found)


def load_sources(project_dir: Path, files: Sequence[Path] | None = None) -> dict[str, Source]:
    """Every source of the project: flat sources (``source('name')``) and dbt's groups of ``tables:``
    (``source('group', 'table')``), from ``sources.yml`` and from the ``sources:`` of any property file (``files``,
    default: the project's); every error names the file, the line and the source."""
    from jobs.sqlproject.projectfile import property_files, read_project_file, skipped_folders

    path = project_dir / SOURCES_FILE
    documents: list[tuple[Path, Any]] = []
    if path.is_file():
        document = load_yaml(path, ConfigError)
        check_keys(document, ("version", "sources"), str(path), "sources.yml")
        if not isinstance(document.get("sources") if isinstance(document, dict) else None, list):
            raise ConfigError(f"{path}: expected a top-level 'sources:' list.")
        documents.append((path, document))
    if files is None:
        project_file = read_project_file(project_dir)
        files = property_files(project_dir, skipped_folders(project_file, _local_packages(project_file)))
    for other in files:
        document = load_yaml(other, ConfigError)
        if isinstance(document, dict) and "sources" in document:
            documents.append((other, document))
    sources: dict[str, Source] = {}
    errors: list[RetrainError] = []  # every source's error, not only the first: each one is fixed on its own
    for file, document in documents:
        entries = document.get("sources")
        if not isinstance(entries, list):
            place = where(str(file), document, "sources")
            errors.append(ConfigError(f"{place}: 'sources:' must be a list of sources."))
            continue
        for source in _sources_of(entries, file, errors):
            if source.name in sources:
                errors.append(
                    ConfigError(
                        f"{file}: the source {source.name!r} is declared twice (also in {sources[source.name].path})."
                    )
                )
            sources[source.name] = source
    if len(errors) == 1:
        raise errors[0]
    if errors:
        listed = "\n\n".join(str(e) for e in errors)
        raise ConfigError(f"{len(errors)} errors in the project's sources; each is below.\n\n{listed}") from errors[0]
    return sources


def _sources_of(entries: list, path: Path, errors: list[RetrainError]) -> list[Source]:
    """The sources of one file's ``sources:`` list; an entry (or a group's table) with an error is added to
    ``errors`` and the others are read still."""
    found: list[Source] = []
    for index, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise ConfigError(
                    f"{where(str(path), entries, index)}: each source must be a mapping with a 'name'. "
                    f"Got {entry!r} instead."
                )
            found.extend(_entry_sources(entry, path, errors))
        except (ConfigError, SqlProjectError) as e:
            errors.append(e)
    return found


def _entry_sources(entry: dict, path: Path, errors: list[RetrainError]) -> list[Source]:
    if "tables" not in entry:
        return [_source(entry, path)]
    check_keys(entry, GROUP_KEYS, str(path), "a source group")
    group_name = _require_identifier(entry.get("name"), "a source group's 'name'", path)
    tables = entry.get("tables")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(
            f"{where(str(path), entry, 'tables')}: 'tables' of source group {group_name!r} must be a non-empty list."
        )
    found = []
    for table in tables:
        try:
            found.append(_source(table, path, entry))
        except (ConfigError, SqlProjectError) as e:
            errors.append(e)
    return found


def _local_packages(project_file: Any) -> list[Path]:
    """The package folders a project file names (their sources are not the project's)."""
    declared = project_file.get("packages") or []
    folders = []
    for item in declared if isinstance(declared, list) else []:
        value = item.get("local") if isinstance(item, dict) else item
        if isinstance(value, str):
            folder = Path(value).expanduser()
            folders.append((folder if folder.is_absolute() else project_file.root / folder).resolve())
    return folders


def load_project_vars(project_dir: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The project's ``vars`` (defaults from ``project.yml``, or ``dbt_project.yml`` when there is no
    ``project.yml``) with command-line overrides applied."""
    from jobs.sqlproject.projectfile import project_file_path

    path = project_file_path(project_dir) or project_dir / PROJECT_FILE
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
