"""Register a project's sources as temp views: from the run's raw snapshots, from PostgreSQL, or empty.

``empty`` views carry the schema declared in ``sources.yml`` and no rows, which is what ``retrain check`` analyses
models against without reading any data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.errors import ConfigError
from jobs.run_context import ds_of
from jobs.spark.atomic import read_manifest
from jobs.spark.batches import CHANGED_DIR
from jobs.sqlproject.config import Source
from jobs.sqlproject.render import source_view

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

SourceReader = Callable[["SparkSession", Source], "DataFrame"]


def empty_reader(spark: SparkSession, source: Source) -> DataFrame:
    return spark.createDataFrame([], source.spark_schema_ddl)


def snapshot_reader(raw_dir: Path) -> SourceReader:
    """Read ``<raw_dir>/<source>/``, the Parquet snapshot that ``retrain extract`` wrote for this run.

    An incremental snapshot's batches were read in different weeks: their rows older than the window are skipped
    (a batch is carried forward whole while only old rows leave it), and the columns that changed since a row was
    read are patched from ``_changed/`` (few rows, broadcast: the wide rows are not shuffled). The view is then what
    a full read would have given, the same rows with their current values.
    """

    def read(spark: SparkSession, source: Source) -> DataFrame:
        require_snapshots(raw_dir, [source])
        path = raw_dir / source.name
        frame = spark.read.schema(source.spark_schema_ddl).parquet(str(path))
        changed = path / CHANGED_DIR
        return _patched(spark, source, frame, path) if changed.is_dir() else frame

    return read


def require_snapshots(raw_dir: Path, sources: Iterable[Source]) -> None:
    """Refuse a run that has no snapshot of one of ``sources``: checked before a Spark driver is started for it."""
    for source in sources:
        path = raw_dir / source.name
        if not path.is_dir():
            raise ConfigError(
                f"No snapshot of source {source.name!r} at {path}. Run `retrain extract --ds {ds_of(path)}` "
                "first, or read the database directly with `retrain transform --from-database`."
            )


def _patched(spark: SparkSession, source: Source, frame: DataFrame, path: Path) -> DataFrame:
    """The batches' rows in the snapshot's window, with the refresh columns of ``_changed/`` where it has the row."""
    from pyspark.sql import functions as F  # noqa: N812

    key, window = source.partition_column, source.window_column
    start = read_manifest(path)["window_start"]
    changed_path = path / CHANGED_DIR
    columns = [c for c in spark.read.parquet(str(changed_path)).columns if c != key and c in source.columns]
    schema = ", ".join(f"`{name}` {source.columns[name]}" for name in (key, *columns))
    changed = spark.read.schema(schema).parquet(str(changed_path))
    changed = changed.select(key, *(F.col(c).alias(f"__changed_{c}") for c in columns), F.lit(True).alias("__changed"))
    rows = frame.where(F.col(window) >= F.lit(start).cast("timestamp")).join(F.broadcast(changed), key, "left")
    picked = {c: F.when(F.col("__changed"), F.col(f"__changed_{c}")).otherwise(F.col(c)).alias(c) for c in columns}
    return rows.select(*(picked.get(name, F.col(f"`{name}`")) for name in source.columns))


def register_sources(spark: SparkSession, sources: Iterable[Source], reader: SourceReader) -> None:
    for source in sources:
        reader(spark, source).createOrReplaceTempView(source_view(source.name))
        log.debug("Registered source %s as %s", source.name, source_view(source.name))
