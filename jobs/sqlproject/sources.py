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
from jobs.spark.batches import REFRESH_DIR
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

    An incremental snapshot's batches were read in different weeks, so the columns that change after a row is
    written are taken from its ``_refresh/`` (read over the whole window by this run): the view is then what a
    full read would have given, the same rows with their current values.
    """

    def read(spark: SparkSession, source: Source) -> DataFrame:
        path = raw_dir / source.name
        if not path.is_dir():
            raise ConfigError(
                f"No snapshot of source {source.name!r} at {path}. Run `retrain extract --ds <ds>` for this date "
                "first, or read the database directly with `retrain transform --from-database`."
            )
        frame = spark.read.schema(source.spark_schema_ddl).parquet(str(path))
        refresh = path / REFRESH_DIR
        return _refreshed(spark, source, frame, refresh) if refresh.is_dir() else frame

    return read


def _refreshed(spark: SparkSession, source: Source, frame: DataFrame, refresh: Path) -> DataFrame:
    """``frame`` with the columns that ``refresh`` holds taken from it, joined on the partition column, in the
    declared order and types."""
    key = source.partition_column
    columns = [c for c in spark.read.parquet(str(refresh)).columns if c != key and c in source.columns]
    schema = ", ".join(f"`{name}` {source.columns[name]}" for name in (key, *columns))
    current = spark.read.schema(schema).parquet(str(refresh))
    return frame.drop(*columns).join(current, key, "inner").select(*(f"`{name}`" for name in source.columns))


def register_sources(spark: SparkSession, sources: Iterable[Source], reader: SourceReader) -> None:
    for source in sources:
        reader(spark, source).createOrReplaceTempView(source_view(source.name))
        log.debug("Registered source %s as %s", source.name, source_view(source.name))
