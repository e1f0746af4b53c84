"""Partitioned, bounded, streaming reads of a source from PostgreSQL with Spark's JDBC data source.

The facts that shape this module (Spark docs, SPARK-11881): ``fetchsize`` must be > 0 for the PostgreSQL driver to
stream (otherwise it loads the whole result into memory); ``lowerBound``/``upperBound`` only set the stride, so they
come from the real ``min``/``max`` of the window; ``numPartitions`` also caps concurrent connections.
"""

from __future__ import annotations

import logging
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobs.errors import MissingRelationError
from jobs.postgres.classify import classify
from jobs.postgres.url import DatabaseUrl
from jobs.spark.remote import default_parallelism
from jobs.sqlproject.config import Source

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10
# The PostgreSQL driver asks for a query's rows as text unless the query is prepared on the server; -1 prepares it
# at once, so numbers and timestamps travel in binary: the server skips formatting them and the driver skips
# parsing them; the snapshot is the same either way. A source's jdbc_options can set it back (prepareThreshold:
# "5", the driver's default).
BINARY_TRANSFER = {"prepareThreshold": "-1"}


@dataclass(frozen=True)
class Bounds:
    """What one ``min/max/count`` query says about a source's rows inside a window, and which of the source's
    optional columns the database lacks (read as NULL)."""

    rows: int
    id_min: int | None
    id_max: int | None
    absent_columns: tuple[str, ...] = ()


def timestamp_sql(value: datetime) -> str:
    """A PostgreSQL literal of an aware ``datetime``."""
    return f"TIMESTAMPTZ '{value.isoformat()}'"


def windowed_relation(
    source: Source, window: tuple[datetime, datetime], absent: tuple[str, ...] = (), where: str | None = None
) -> str:
    """The source restricted to ``[start, end)`` on its window column (and to ``where``, when given), as a
    PostgreSQL subquery; NULL in place of the optional columns ``absent``."""
    start, end = window
    column = source.window_column
    extra = f" AND ({where})" if where else ""
    return (
        f"(SELECT * FROM {source.relation(absent)} "
        f"WHERE {column} >= {timestamp_sql(start)} AND {column} < {timestamp_sql(end)}{extra}) "
        f"AS {source.name}"
    )


def conform(df: DataFrame, source: Source) -> DataFrame:
    """Select the declared columns with their declared types, so every snapshot has the schema `check` assumes."""
    missing = [name for name in source.columns if name not in df.columns]
    if missing:
        raise MissingRelationError(
            f"Source {source.name!r} declares column(s) {', '.join(missing)} in sql/sources.yml, but its relation "
            f"has only: {', '.join(df.columns)}. Fix the column list or the source's table/query."
        )
    return df.selectExpr(*(f"CAST(`{name}` AS {type_}) AS `{name}`" for name, type_ in source.columns.items()))


# Whether a table exists and has a column, resolved on the search_path as the source's query resolves it (an
# information_schema lookup would have to guess the schema).
_HAS_COLUMN = (
    "SELECT to_regclass(%(table)s) IS NOT NULL, EXISTS (SELECT 1 FROM pg_attribute "
    "WHERE attrelid = to_regclass(%(table)s) AND attname = %(column)s AND attnum > 0 AND NOT attisdropped)"
)


def absent_columns(cursor: Any, source: Source) -> tuple[str, ...]:
    """The source's optional columns that the database lacks, each reported in one warning saying what that costs.

    A missing *table* is not an absent column: the source is read as declared, and the read names the table.
    """
    absent = []
    for column in source.optional_columns.values():
        cursor.execute(_HAS_COLUMN, {"table": column.table, "column": column.name})
        table_exists, has_column = cursor.fetchone()
        if table_exists and not has_column:
            absent.append(column.name)
            log.warning(
                "Source %s: table %s has no column %s, so it is read as NULL: %s.",
                source.name,
                column.table,
                column.name,
                column.cost.rstrip("."),
            )
    return tuple(absent)


def probe_bounds(db: DatabaseUrl, source: Source, window: tuple[datetime, datetime]) -> Bounds:
    """One query for the partition column's range and the row count inside the window, after looking up the
    source's optional columns (:func:`absent_columns`).

    It runs through psycopg2 before Spark starts reading, so an unreachable server, bad credentials or a missing
    table fail fast with a distinct error instead of a JVM stack trace.
    """
    import psycopg2

    column = source.partition_column
    try:
        with closing(psycopg2.connect(**db.psycopg_kwargs(), connect_timeout=CONNECT_TIMEOUT_SECONDS)) as conn:
            with conn.cursor() as cur:
                absent = absent_columns(cur, source)
                relation = windowed_relation(source, window, absent)
                cur.execute(f"SELECT count(*), min({column}), max({column}) FROM {relation}")
                rows, id_min, id_max = cur.fetchone()
            conn.rollback()
    except psycopg2.Error as e:
        raise classify(e, db, f"probing source {source.name!r}") from None
    return Bounds(rows=int(rows), id_min=id_min, id_max=id_max, absent_columns=absent)


@dataclass(frozen=True)
class CarriedCheck:
    """What PostgreSQL holds of the window's rows with a key at or below an earlier snapshot's highest: their
    count, the sum of their keys, and how many have ``updated_at`` before the window's end (what an incremental
    read compares with the snapshot's rows); and the range of those updated since a time (what it reads again)."""

    rows: int
    key_sum: int
    dated: int
    updated: Bounds


def probe_carried(
    db: DatabaseUrl,
    source: Source,
    window: tuple[datetime, datetime],
    absent: tuple[str, ...],
    through: int,
    updated_at: str,
    since: datetime,
) -> CarriedCheck:
    """One scan inside PostgreSQL, through psycopg2 like :func:`probe_bounds`: only six numbers leave the server.

    Dates at or after the window's end are not counted: an outcome the backend writes while the run reads is
    dated then, so the count does not move under the read (a cleared or back-dated one does, as it should).
    """
    import psycopg2

    key = source.partition_column
    relation = windowed_relation(source, window, absent, where=f"{key} <= {int(through)}")
    since_sql, end_sql = timestamp_sql(since), timestamp_sql(window[1])
    updated = f"{updated_at} >= {since_sql}"
    query = (
        f"SELECT count(*), COALESCE(sum({key}), 0), count(*) FILTER (WHERE {updated_at} < {end_sql}), "
        f"count(*) FILTER (WHERE {updated}), min({key}) FILTER (WHERE {updated}), "
        f"max({key}) FILTER (WHERE {updated}) FROM {relation}"
    )
    try:
        with closing(psycopg2.connect(**db.psycopg_kwargs(), connect_timeout=CONNECT_TIMEOUT_SECONDS)) as conn:
            with conn.cursor() as cur:
                cur.execute(query)
                rows, key_sum, dated, updated_rows, low, high = cur.fetchone()
            conn.rollback()
    except psycopg2.Error as e:
        raise classify(e, db, f"checking source {source.name!r}'s earlier rows") from None
    return CarriedCheck(
        rows=int(rows),
        key_sum=int(key_sum),
        dated=int(dated),
        updated=Bounds(rows=int(updated_rows), id_min=low, id_max=high, absent_columns=absent),
    )


def default_num_partitions(spark: SparkSession) -> int:
    """Twice the cores Spark has: enough to keep every core busy while one partition waits on the database."""
    return max(1, default_parallelism(spark) * 2)


def jdbc_partitions(bounds: Bounds, num_partitions: int) -> int:
    """How many ranges of the partition column a read of ``bounds`` is split into: ``num_partitions``, but never
    more than the keys or the rows it spans (the ranges beyond would be empty); 1 for an empty window."""
    if bounds.rows <= 0 or bounds.id_min is None or bounds.id_max is None:
        return 1
    return max(1, min(num_partitions, bounds.id_max - bounds.id_min + 1, bounds.rows))


def read_source(
    spark: SparkSession,
    db: DatabaseUrl,
    source: Source,
    window: tuple[datetime, datetime],
    bounds: Bounds,
    num_partitions: int,
    fetchsize: int,
    *,
    relation: str | None = None,
    what: str = "",
) -> DataFrame:
    """A lazy DataFrame over the source's window, split into ``num_partitions`` ranges of the partition column;
    NULL in place of the optional columns that ``bounds`` found absent.

    ``relation``: another subquery of the window to read instead (an incremental read's new rows, or its narrow
    read of keys and refresh columns), with its own ``bounds``; ``what`` names it in the log line.

    Credentials travel as JDBC properties, never in the URL; Spark redacts the ``password`` option in plans and in
    the UI (``spark.redaction.regex``).
    """
    options = {
        "fetchsize": str(fetchsize),
        **BINARY_TRANSFER,
        **dict(source.jdbc_options),
        "url": db.jdbc_url,
        "dbtable": relation or windowed_relation(source, window, bounds.absent_columns),
        "sessionInitStatement": "SET TIME ZONE 'UTC'",
        **db.jdbc_properties(),
    }
    if bounds.rows > 0 and bounds.id_min is not None and bounds.id_max is not None:
        partitions = jdbc_partitions(bounds, num_partitions)
        options.update(
            partitionColumn=source.partition_column,
            lowerBound=str(bounds.id_min),
            upperBound=str(bounds.id_max + 1),
            numPartitions=str(partitions),
        )
    log.info(
        "Reading source %s%s from %s (window %s to %s, %s rows, %s partitions, fetchsize %s)",
        source.name,
        f" ({what})" if what else "",
        db.redacted(),
        window[0].isoformat(),
        window[1].isoformat(),
        bounds.rows,
        options.get("numPartitions", 1),
        options["fetchsize"],
    )
    return spark.read.format("jdbc").options(**options).load()
