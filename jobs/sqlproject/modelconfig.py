"""``config(...)`` of a model: how it is materialised, partitioned, repartitioned and cached."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobs.errors import CompilationError, check_scalar

MATERIALIZATIONS = ("view", "table")
_KEYS = ("materialized", "partition_by", "cache", "repartition", "tags", "severity")
SEVERITIES = ("error", "warn")


@dataclass(frozen=True)
class ModelConfig:
    """A ``view`` is a temp view (computed where it is read); a ``table`` is written as Parquet under the run."""

    materialized: str = "view"
    partition_by: tuple[str, ...] = ()
    cache: bool = False
    repartition: int | None = None
    tags: tuple[str, ...] = ()
    #: for singular data tests: whether a failure stops the pipeline (error) or is only reported (warn)
    severity: str = "error"

    @property
    def is_table(self) -> bool:
        return self.materialized == "table"


def _string_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(item, str) and item for item in items):
        raise CompilationError(f"{where}: config({key}=...) must be a list of names. Got {value!r} instead.")
    return tuple(items)


def parse_config(raw: Mapping[str, Any], where: str) -> ModelConfig:
    """Validate ``config()`` arguments; unknown keys and wrong types are errors naming the valid choices."""
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise CompilationError(f"{where}: unknown config key(s) {', '.join(unknown)}. Valid keys: {', '.join(_KEYS)}.")
    materialized = raw.get("materialized", "view")
    if materialized not in MATERIALIZATIONS:
        raise CompilationError(
            f"{where}: config(materialized={materialized!r}) must be one of {', '.join(MATERIALIZATIONS)}."
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
    )
