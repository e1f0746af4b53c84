"""Incremental models: a table built from its previous output and the rows its SQL selects this run.

dbt's spelling and meaning: ``config(materialized='incremental', incremental_strategy=..., unique_key=...,
partition_by=..., on_schema_change=...)``, ``is_incremental()`` and ``{{ this }}``. A run's output is a folder of
its own (``runs/ds=<ds>/features/<model>/``), so "the table" of an incremental model is the newest earlier run's
output of it: read, never changed. The new output is written beside this run's other tables, atomically, and reuses
the previous output's unchanged files by hard links, so a week that adds a few rows writes a few rows. A failed
run leaves both outputs as they were.

Strategies (as dbt-spark, on Parquet):

- ``append``: the previous rows, then the new ones;
- ``merge`` (needs ``unique_key``): a new row replaces the previous row with the same key. dbt-spark needs Delta,
  Iceberg or Hudi for it, because it changes a table in place; here the output is a new folder, so plain Parquet
  does: previous rows without a new key, then the new rows;
- ``insert_overwrite``: the partitions (``partition_by``) the new rows fall in replace the previous ones; without
  ``partition_by`` the new rows replace the whole table (dbt-spark's meaning), for a model that selects everything
  it keeps, ``{{ this }}`` included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import ModelExecutionError
from jobs.run_context import RunFolder
from jobs.spark.atomic import MANIFEST, link_files, read_manifest

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from jobs.sqlproject.modelconfig import ModelConfig
    from jobs.sqlproject.render import RenderedModel

log = logging.getLogger(__name__)

#: the view ``{{ this }}`` renders as in an incremental run: the model's previous output
PREVIOUS_VIEW_SUFFIX = "__previous"
#: the version of a table manifest's fields that an incremental run relies on
TABLE_MANIFEST_FORMAT = 2


@dataclass(frozen=True)
class PreviousOutput:
    """An earlier run's output of an incremental model, checked to be one this run can build on."""

    model: str
    path: Path
    ds: str
    #: (name, Spark type) in the output's order, from its manifest
    columns: tuple[tuple[str, str], ...]

    @property
    def view(self) -> str:
        return f"{self.model}{PREVIOUS_VIEW_SUFFIX}"

    def read(self, spark: SparkSession) -> DataFrame:
        """The output's rows, with the schema its manifest records: an empty output (no data file) reads too."""
        ddl = ", ".join(f"`{name}` {type_}" for name, type_ in self.columns)
        return spark.read.schema(ddl).parquet(str(self.path))


@dataclass(frozen=True)
class IncrementalWrite:
    """What one incremental build wrote: every row of the new output, how many of them the model's SQL selected
    this run, and how many data files came unchanged from the previous output."""

    rows: int
    new_rows: int
    linked_files: int
    #: the output's columns (after ``on_schema_change``), a Spark ``StructType``
    schema: Any = None


def find_previous(folder: RunFolder, rendered: RenderedModel) -> PreviousOutput | None:
    """The newest earlier output of ``rendered`` that an incremental run can build on, or None (a full refresh),
    with the reason logged: no earlier output, an unreadable or older manifest, or one built differently."""
    name, config = rendered.name, rendered.config
    for earlier in folder.earlier():
        path = earlier.feature_table(name)
        if (path / MANIFEST).is_file():
            break
    else:
        # Debug: the model's own line says "(full refresh)" when it is built, and it may not be selected at all.
        log.debug("%s: full refresh: no earlier run has built it.", name)
        return None
    try:
        manifest = read_manifest(path)
        columns = tuple((str(c), str(t)) for c, t in manifest["columns"])
        built = (manifest["materialized"], tuple(manifest["partition_by"]), tuple(manifest.get("unique_key") or ()))
        fmt = manifest["format"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("%s: full refresh: the manifest of its output of %s cannot be read (%s).", name, earlier.ds, e)
        return None
    why = None
    if fmt != TABLE_MANIFEST_FORMAT:
        why = f"it was written by another version of the pipeline (manifest format {fmt!r})"
    elif built[0] != "incremental":
        why = f"it was built as a {built[0]}, not incrementally"
    elif built[1] != config.partition_by:
        why = f"its partition_by changed from {list(built[1])} to {list(config.partition_by)}"
    elif built[2] != config.unique_key:
        why = f"its unique_key changed from {list(built[2])} to {list(config.unique_key)}"
    if why:
        log.warning("%s: full refresh: its output of %s cannot be built on: %s.", name, earlier.ds, why)
        return None
    log.debug("%s: incremental, on its output of %s (%s).", name, earlier.ds, path)
    return PreviousOutput(name, path, earlier.ds, columns)


def build_incremental(
    spark: SparkSession,
    rendered: RenderedModel,
    where: str,
    new: DataFrame,
    previous: PreviousOutput | None,
    staging: Path,
    write: Callable[[DataFrame, Path], int],
) -> IncrementalWrite:
    """Write the model's new output into ``staging``: ``new`` (what its SQL selected) with ``previous`` by the
    model's strategy. ``write`` writes a DataFrame as the model's table (partitioning, errors) and returns its
    row count."""
    if previous is None:
        rows = write(new, staging)
        return IncrementalWrite(rows, rows, 0, new.schema)
    config = rendered.config
    old = previous.read(spark)
    old, new, changed = _reconcile(old, new, previous, config.on_schema_change, where)
    strategy = config.incremental_strategy
    if strategy == "insert_overwrite" and not config.partition_by:
        rows = write(new, staging)
        return IncrementalWrite(rows, rows, 0, new.schema)
    if changed:  # the previous files lack a column: rewritten, not linked
        return _rewrite(spark, old, new, config.unique_key, config.partition_by, strategy, staging, write)
    new_rows = write(new, staging)
    if strategy == "merge":
        # Rows of the previous output whose key comes again: only those files are rewritten, the rest linked.
        return _merge(spark, old, new, previous, config, staging, new_rows)
    written = _data_dirs(staging) if strategy == "insert_overwrite" else set()
    linked = link_files(previous.path, staging, keep=lambda relative: str(relative.parent) not in written)
    return IncrementalWrite(_count(spark, staging, new), new_rows, linked, new.schema)


def _reconcile(
    old: DataFrame, new: DataFrame, previous: PreviousOutput, on_change: str, where: str
) -> tuple[DataFrame, DataFrame, bool]:
    """The previous and new rows with the same columns, per ``on_schema_change``; True when the columns changed."""
    from pyspark.sql import functions as F  # noqa: N812

    before = {f.name: f.dataType for f in old.schema.fields}
    after = {f.name: f.dataType for f in new.schema.fields}
    retyped = [
        f"{c} ({before[c].simpleString()} -> {after[c].simpleString()})"
        for c in after
        if c in before and before[c] != after[c]
    ]
    added = [c for c in after if c not in before]
    dropped = [c for c in before if c not in after]
    if retyped:
        raise ModelExecutionError(
            f"{where}: column type(s) changed since its output of {previous.ds}: {', '.join(retyped)}. An "
            "incremental model cannot mix types: rebuild it with `retrain transform --full-refresh`."
        )
    if not added and not dropped:
        return old, new.select(*old.columns), False
    if on_change == "fail":
        change = "; ".join(
            part
            for part in (
                f"new column(s) {', '.join(added)}" if added else "",
                f"no longer output: {', '.join(dropped)}" if dropped else "",
            )
            if part
        )
        raise ModelExecutionError(
            f"{where}: its columns changed since its output of {previous.ds} ({change}), and "
            "on_schema_change='fail' (the default) stops here. Set config(on_schema_change='append_new_columns') "
            "to keep every column (rows without one get NULL), or rebuild it with `retrain transform --full-refresh`."
        )
    log.warning("%s: columns changed (added: %s; no longer output: %s): rewriting it whole.", where, added, dropped)
    order = [*before, *added]
    old = old.select(*old.columns, *(F.lit(None).cast(after[c]).alias(c) for c in added))
    new = new.select(*new.columns, *(F.lit(None).cast(before[c]).alias(c) for c in dropped))
    return old.select(*order), new.select(*order), True


def _merge(
    spark: SparkSession,
    old: DataFrame,
    new: DataFrame,
    previous: PreviousOutput,
    config: ModelConfig,
    staging: Path,
    new_rows: int,
) -> IncrementalWrite:
    """Link the previous files no new key touches; rewrite the others without the rows the new ones replace."""
    from pyspark.sql import functions as F  # noqa: N812

    keys = config.unique_key
    keyed = new.select(*keys).distinct()
    tagged = old.withColumn("__file", F.input_file_name())
    touched = {row[0] for row in tagged.join(keyed, list(keys), "left_semi").select("__file").distinct().collect()}
    touched_paths = {Path(_local_path(uri)).resolve() for uri in touched}
    linked = link_files(
        previous.path, staging, keep=lambda relative: (previous.path / relative).resolve() not in touched_paths
    )
    if touched:
        kept = tagged.where(F.col("__file").isin(list(touched))).join(keyed, list(keys), "left_anti").drop("__file")
        kept.write.mode("append").partitionBy(*config.partition_by).parquet(str(staging))
    return IncrementalWrite(_count(spark, staging, new), new_rows, linked, new.schema)


def _rewrite(
    spark: SparkSession,
    old: DataFrame,
    new: DataFrame,
    keys: Sequence[str],
    partition_by: Sequence[str],
    strategy: str | None,
    staging: Path,
    write: Callable[[DataFrame, Path], int],
) -> IncrementalWrite:
    """The whole output written again (after a schema change): the previous rows the strategy keeps, then the new."""
    if strategy == "merge":
        old = old.join(new.select(*keys), list(keys), "left_anti")
    elif strategy == "insert_overwrite":
        replaced = new.select(*partition_by).distinct()
        condition = None
        for column in partition_by:
            equal = old[column].eqNullSafe(replaced[column])
            condition = equal if condition is None else condition & equal
        old = old.join(replaced, condition, "left_anti")
    rows = write(old.unionByName(new), staging)
    return IncrementalWrite(rows, new.count(), 0, new.schema)


def _data_dirs(root: Path) -> set[str]:
    """The folders (relative to ``root``, ``.`` for the root) that hold data files: a partitioned table's
    partitions."""
    return {
        str(p.parent.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)
    }


def _local_path(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    return unquote(urlparse(uri).path)


def manifest_schema(path: Path) -> str | None:
    """The DDL of a table's columns from its manifest, or None for a manifest without them: a table with no data
    file (an empty partitioned one) reads with it, where Spark could infer nothing."""
    try:
        columns = read_manifest(path).get("columns")
    except (OSError, ValueError):
        return None
    return ", ".join(f"`{name}` {type_}" for name, type_ in columns) if columns else None


def _count(spark: SparkSession, path: Path, like: DataFrame) -> int:
    """Rows of the written output, from the Parquet footers (the schema given, so an empty output is 0)."""
    return spark.read.schema(like.schema).parquet(str(path)).count()


def table_manifest(rendered: RenderedModel, schema: StructType, extra: dict[str, Any]) -> dict[str, Any]:
    """The fields of a table's manifest an incremental run checks, for every table model; ``schema``: the output's."""
    config = rendered.config
    return {
        "format": TABLE_MANIFEST_FORMAT,
        "materialized": config.materialized,
        "columns": [[f.name, f.dataType.simpleString()] for f in schema.fields],
        "unique_key": list(config.unique_key),
        "incremental_strategy": config.incremental_strategy,
        **extra,
    }
