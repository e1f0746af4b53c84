"""``config(...)`` of a model: how it is materialised, partitioned, repartitioned and cached."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from jobs.errors import CompilationError, check_scalar

MATERIALIZATIONS = ("view", "table", "ephemeral")
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

    @property
    def is_table(self) -> bool:
        return self.materialized == "table"

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
    if partition_by and materialized != "table":
        raise CompilationError(f"{where}: partition_by applies to materialized='table' models only.")
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
    )
