"""``config(...)`` of a model: how it is materialised, partitioned, repartitioned and cached."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jobs.errors import CompilationError, check_scalar

MATERIALIZATIONS = ("view", "table", "ephemeral", "incremental")
#: how an incremental model's new rows meet its previous output (dbt-spark's names; see docs/sql.md)
INCREMENTAL_STRATEGIES = ("append", "merge", "insert_overwrite")
#: what an incremental run does when the model's columns differ from its previous output's
ON_SCHEMA_CHANGE = ("fail", "append_new_columns")
#: dbt-databricks' options of a ``merge`` (see docs/sql.md), each a SQL text or a name
MERGE_OPTIONS = (
    "matched_condition",
    "not_matched_by_source_action",
    "not_matched_by_source_condition",
    "source_alias",
    "target_alias",
)
#: the names a merge's conditions give the model's new rows and its previous output, unless renamed
DEFAULT_SOURCE_ALIAS, DEFAULT_TARGET_ALIAS = "DBT_INTERNAL_SOURCE", "DBT_INTERNAL_DEST"
#: dbt's other choices, refused with the reason
REFUSED_SCHEMA_CHANGE = {
    "ignore": "rows of a week would silently lose the new columns, and a full refresh would not",
    "sync_all_columns": "it drops columns of the earlier rows; rebuild the model with --full-refresh instead",
}
#: dbt's config keys that change nothing here, and why: read, and named in a notice
NO_EFFECT = {
    "transient": "a Snowflake table option",
    "schema": "a model is a temp view or a Parquet table of the run, in no schema",
    "alias": "a model's view is named after its file",
    "database": "a model is a temp view or a Parquet table of the run, in no database",
    "grants": "nothing is granted: a run's output is files",
    "persist_docs": "descriptions are not written anywhere but the docs",
    "pre-hook": "hooks are not run",
    "post-hook": "hooks are not run",
    "pre_hook": "hooks are not run",
    "post_hook": "hooks are not run",
}
#: read without a notice: they describe the model
DESCRIPTIVE = ("docs", "meta", "contract")
MODEL_CONFIG_KEYS = (
    "materialized",
    "partition_by",
    "cache",
    "repartition",
    "tags",
    "severity",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    *MERGE_OPTIONS,
    "file_format",
    *DESCRIPTIVE,
    *NO_EFFECT,
)
_KEYS = MODEL_CONFIG_KEYS
SEVERITIES = ("error", "warn")
#: the only format train and validate read (with pyarrow); dbt-spark's other formats, and why each is refused
FILE_FORMATS = {
    "parquet": "",
    "delta": "Delta Lake needs its Spark extension and a catalog, which the pipeline does not set up, and train "
    "reads each table's Parquet files directly",
    "iceberg": "Iceberg needs its Spark extension and a catalog, which the pipeline does not set up, and train "
    "reads each table's Parquet files directly",
    "hudi": "Hudi needs its Spark extension, which the pipeline does not set up",
}


@dataclass(frozen=True)
class ModelConfig:
    """A ``view`` is a temp view (computed where it is read), as is an ``ephemeral`` model; a ``table`` is written as
    Parquet under the run."""

    materialized: str = "view"
    partition_by: tuple[str, ...] = ()
    cache: bool = False
    repartition: int | None = None
    tags: tuple[str, ...] = ()
    #: for singular data tests: whether a failure stops the pipeline (error) or is only reported (warn)
    severity: str = "error"
    #: dbt's ``contract: {enforced: true}``: the model outputs exactly its described columns, with their types
    contract_enforced: bool = False
    #: an incremental model's key: a new row replaces the previous output's row with the same key (``merge``)
    unique_key: tuple[str, ...] = ()
    incremental_strategy: str | None = None
    on_schema_change: str = "fail"
    #: ``merge`` only: a matched previous row is replaced only where this holds (None: always)
    matched_condition: str | None = None
    #: ``merge`` only: previous rows whose key the model no longer selects are deleted
    delete_not_matched_by_source: bool = False
    #: ``merge`` only: ... of those, only the rows where this holds (None: all)
    not_matched_by_source_condition: str | None = None
    #: the names the conditions give the model's new rows and its previous output (dbt-databricks' defaults)
    source_alias: str = DEFAULT_SOURCE_ALIAS
    target_alias: str = DEFAULT_TARGET_ALIAS

    @property
    def compares_rows(self) -> bool:
        """A ``merge`` that compares the new rows with the previous ones (a condition, or deletes), rather than
        replacing every previous row whose key comes again."""
        return self.matched_condition is not None or self.delete_not_matched_by_source

    @property
    def is_table(self) -> bool:
        """Written as Parquet under the run: a ``table``, or an ``incremental`` model (a table built from its
        previous output and the week's new rows)."""
        return self.materialized in ("table", "incremental")

    @property
    def is_incremental(self) -> bool:
        return self.materialized == "incremental"

    @property
    def kind(self) -> str:
        """How the model is built here: an ``ephemeral`` model is a temp view, inlined where it is read, as a view."""
        return "table" if self.is_table else "view"


def _string_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) and item for item in items):
        raise CompilationError(f"{where}: config({key}=...) must be a list of names. Got {value!r} instead.")
    return tuple(items)


def parse_config(raw: Mapping[str, Any], where: str, notice: Callable[[str], None] | None = None) -> ModelConfig:
    """Validate ``config()`` arguments; unknown keys and wrong types are errors naming the valid choices, and a
    dbt key that changes nothing here is named to ``notice``."""
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise CompilationError(f"{where}: unknown config key(s) {', '.join(unknown)}. Valid keys: {', '.join(_KEYS)}.")
    for key in raw:
        if key in NO_EFFECT and notice is not None:
            notice(f"{where}: config {key!r} has no effect here: {NO_EFFECT[key]}.")
    materialized = raw.get("materialized", "view")
    if materialized not in MATERIALIZATIONS:
        raise CompilationError(
            f"{where}: config(materialized={materialized!r}) must be one of {', '.join(MATERIALIZATIONS)}."
        )
    file_format = str(raw.get("file_format") or "parquet").lower()
    if file_format not in ("parquet",):
        why = FILE_FORMATS.get(file_format, "train and validate read Parquet with pyarrow")
        raise CompilationError(
            f"{where}: config(file_format={raw.get('file_format')!r}) is not supported: a table is written as "
            f"Parquet ({why}). Remove it, or set file_format='parquet'."
        )
    contract = raw.get("contract") or {}
    if not isinstance(contract, Mapping) or set(contract) - {"enforced", "alias_types"}:
        raise CompilationError(f"{where}: config(contract=...) must be like {{'enforced': true}}. Got {contract!r}.")
    enforced = check_scalar(
        contract.get("enforced", False), f"{where}: contract's enforced", bool, error=CompilationError
    )
    repartition = raw.get("repartition")
    if repartition is not None:
        check_scalar(repartition, f"{where}: config(repartition=...)", minimum=1, error=CompilationError)
    cache = check_scalar(raw.get("cache", False), f"{where}: config(cache=...)", bool, error=CompilationError)
    partition_by = _string_list(raw.get("partition_by", []), "partition_by", where)
    if partition_by and materialized not in ("table", "incremental"):
        raise CompilationError(f"{where}: partition_by applies to materialized='table' or 'incremental' models only.")
    incremental = _incremental(raw, where, materialized)
    severity = raw.get("severity", "error")
    if severity not in SEVERITIES:
        raise CompilationError(
            f"{where}: config(severity=...) must be one of {', '.join(SEVERITIES)}. Got {severity!r}."
        )
    return ModelConfig(
        materialized=materialized,
        partition_by=partition_by,
        cache=cache,
        repartition=repartition,
        tags=_string_list(raw.get("tags", []), "tags", where),
        severity=severity,
        contract_enforced=enforced,
        **incremental,
    )


def _incremental(raw: Mapping[str, Any], where: str, materialized: str) -> dict[str, Any]:
    """``unique_key``, ``incremental_strategy`` and ``on_schema_change``, checked together as dbt-spark does:
    ``merge`` needs a key, the other strategies use none, and the default is ``merge`` with a key, else
    ``append``."""
    keys = [k for k in ("unique_key", "incremental_strategy", "on_schema_change") if raw.get(k) is not None]
    if materialized != "incremental":
        if keys:
            raise CompilationError(f"{where}: config({keys[0]}=...) applies to materialized='incremental' models only.")
        return {}
    unique_key = _string_list(raw["unique_key"], "unique_key", where) if raw.get("unique_key") else ()
    strategy = raw.get("incremental_strategy") or ("merge" if unique_key else "append")
    if strategy not in INCREMENTAL_STRATEGIES:
        raise CompilationError(
            f"{where}: config(incremental_strategy={strategy!r}) must be one of {', '.join(INCREMENTAL_STRATEGIES)}."
        )
    if strategy == "merge" and not unique_key:
        raise CompilationError(
            f"{where}: incremental_strategy='merge' needs config(unique_key=...): the column(s) by which a new row "
            "replaces a previous one."
        )
    if strategy != "merge" and unique_key:
        raise CompilationError(
            f"{where}: config(unique_key=...) is used by incremental_strategy='merge' only; with {strategy!r} it "
            "would be ignored. Remove it, or use merge."
        )
    on_change = raw.get("on_schema_change") or "fail"
    if on_change in REFUSED_SCHEMA_CHANGE:
        raise CompilationError(
            f"{where}: config(on_schema_change={on_change!r}) is not supported: {REFUSED_SCHEMA_CHANGE[on_change]}. "
            f"Use one of {', '.join(ON_SCHEMA_CHANGE)}."
        )
    if on_change not in ON_SCHEMA_CHANGE:
        raise CompilationError(
            f"{where}: config(on_schema_change={on_change!r}) must be one of {', '.join(ON_SCHEMA_CHANGE)}."
        )
    return {
        "unique_key": unique_key,
        "incremental_strategy": strategy,
        "on_schema_change": on_change,
        **_merge_options(raw, where, strategy),
    }


def _merge_options(raw: Mapping[str, Any], where: str, strategy: str) -> dict[str, Any]:
    """dbt-databricks' ``merge`` options, checked: a ``merge`` only, ``delete`` the only action for rows the model
    no longer selects, and a condition without its action is refused rather than ignored."""
    given = [k for k in MERGE_OPTIONS if raw.get(k) is not None]
    if not given:
        return {}
    if strategy != "merge":
        raise CompilationError(
            f"{where}: config({given[0]}=...) applies to incremental_strategy='merge' only (it is {strategy!r})."
        )
    options: dict[str, Any] = {}
    for key in ("matched_condition", "not_matched_by_source_condition"):
        if raw.get(key) is not None:
            options[key] = _text(raw[key], key, where)
    for key in ("source_alias", "target_alias"):
        if raw.get(key) is not None:
            alias = _text(raw[key], key, where)
            if not alias.isidentifier():
                raise CompilationError(f"{where}: config({key}={alias!r}) must be a plain name, like 's' or 't'.")
            options[key] = alias
    if options.get("source_alias", DEFAULT_SOURCE_ALIAS) == options.get("target_alias", DEFAULT_TARGET_ALIAS):
        raise CompilationError(f"{where}: config(source_alias=...) and target_alias must differ.")
    action = raw.get("not_matched_by_source_action")
    if action is not None:
        if _text(action, "not_matched_by_source_action", where).strip().lower() != "delete":
            raise CompilationError(
                f"{where}: config(not_matched_by_source_action={action!r}) is not supported: only 'delete' is. "
                "To change a previous row, select it from {{ this }} with its new values: a matched row replaces "
                "the previous one."
            )
        options["delete_not_matched_by_source"] = True
    elif "not_matched_by_source_condition" in options:
        raise CompilationError(
            f"{where}: config(not_matched_by_source_condition=...) needs not_matched_by_source_action='delete': "
            "without it no previous row is deleted and the condition would be ignored."
        )
    return options


def _text(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CompilationError(f"{where}: config({key}=...) must be a non-empty string. Got {value!r} instead.")
    return value
