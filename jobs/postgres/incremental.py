"""The incremental read of a source: only the rows its previous snapshot lacks are read in full.

A weekly run's window overlaps last week's by all but a week, and the wide columns (a record's JSON) never change
once written. With ``updated_at`` (the column the database dates every change of the refresh columns with), an
ordinary week reads only the rows updated since the previous snapshot, narrowly, and the new rows, in full; a count
and checksum computed inside PostgreSQL confirm that the rest of the window is the previous snapshot's rows
(:func:`_read_updated`). Without it, or when that check differs, the run reads, over JDBC:

- the *refresh* read: the whole window, narrowly: the key (``partition_column``) and the ``refresh_columns``
  (what changes after a row is written, like an outcome). It says which rows the window holds now, and their
  current values; it is kept in ``_refresh/``.
- the *new* rows, in full: keys above the previous snapshot's highest (its high-water mark), and the few keys at
  or below it that the previous snapshot lacks (rows committed late), by an ``IN`` list.

The previous snapshot's batches are carried forward without the rows that left the window (deleted, consent
withdrawn, too old): hard-linked when none left, rewritten filtered when some did, dropped when all did. The
layout and the choice of a previous snapshot are in ``jobs/spark/batches.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.errors import ExtractError
from jobs.postgres.jdbc import (
    Bounds,
    conform,
    jdbc_partitions,
    probe_carried,
    read_source,
    timestamp_sql,
    windowed_relation,
)
from jobs.postgres.url import DatabaseUrl
from jobs.spark.batches import (
    CHANGED_DIR,
    REFRESH_DIR,
    Batch,
    FullRead,
    PreviousSnapshot,
    SnapshotFiles,
    batch_paths,
    link_batch,
    read_batches,
    write_batch,
)
from jobs.sqlproject.config import Source

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: at most this many late rows (keys at or below the high-water mark, new to the previous snapshot) are read by an
#: ``IN`` list; more, and the window is read whole, which is then cheaper than a statement of that length
LATE_ROWS_LIMIT = 1000
#: with ``updated_at``, the rows updated this long before the previous snapshot's window end are read again too: an
#: update committed after that snapshot was read, though dated before its end (a transaction open across the run),
#: is not missed
UPDATED_LOOKBACK = timedelta(days=1)


def source_hash(source: Source) -> str:
    """A digest of what decides a snapshot's rows and columns: a previous snapshot taken of another definition
    cannot be built on."""
    definition = {
        "relation": source.relation_sql,
        "columns": list(source.columns.items()),
        "refresh_columns": list(source.incremental.refresh_columns) if source.incremental else None,
        "updated_at": source.incremental.updated_at if source.incremental else None,
        "window_column": source.window_column,
        "partition_column": source.partition_column,
    }
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode("utf-8")).hexdigest()


def refresh_columns(source: Source) -> tuple[str, ...]:
    return source.incremental.refresh_columns if source.incremental else ()


def read_incrementally(
    spark: SparkSession,
    db: DatabaseUrl,
    source: Source,
    window: tuple[datetime, datetime],
    bounds: Bounds,
    previous: PreviousSnapshot,
    staging: Path,
    batch: str,
    num_partitions: int,
    fetchsize: int,
) -> SnapshotFiles | FullRead:
    """Stage the snapshot of ``source`` in ``staging`` from ``previous`` and the window's changes, as batch
    ``batch`` for the new rows; or say why the window must be read whole instead (``staging`` is then left as
    it was found).

    Raises :class:`ExtractError` when the window changed during the reads (the counts disagree): a re-run reads
    it again.
    """
    updated = _read_updated(spark, db, source, window, bounds, previous, staging, batch, num_partitions, fetchsize)
    if isinstance(updated, SnapshotFiles):
        return updated
    if updated is not None:
        log.info("Source %s: re-reading the window's keys and refresh columns: %s.", source.name, updated)
    key = source.partition_column
    refresh_dir = staging / REFRESH_DIR
    refresh = _read_refresh(spark, db, source, window, bounds, refresh_dir, num_partitions, fetchsize)
    keys = refresh.select(key)
    # One join of the previous keys with the refresh read serves the counts, the late keys and the changed values.
    with _persisted(_compare(spark, source, previous, refresh, window[0])) as compared:
        stats = _file_stats(compared)
        for old in previous.batches:
            counted = sum(stats.get(name, (0, 0, 0))[0] for name in old.files)
            if counted != old.rows:
                shutil.rmtree(refresh_dir)
                return FullRead(
                    f"batch {old.batch} of the snapshot of ds={previous.ds} holds {counted} rows, its manifest says "
                    f"{old.rows}",
                    expected=False,
                )
        mark = previous.high_water_mark
        late = _late_keys(compared, key, mark)
        if len(late) > LATE_ROWS_LIMIT:
            shutil.rmtree(refresh_dir)
            return FullRead(
                f"more than {LATE_ROWS_LIMIT} rows of the window with {key} <= {mark} (the highest of the snapshot of "
                f"ds={previous.ds}) are not in it (committed late, or the window reaches further back)"
            )

        batches: list[Batch] = []
        dropped = carried = 0
        for old in previous.batches:
            total, kept, aged = (sum(stats.get(name, (0, 0, 0))[i] for name in old.files) for i in range(3))
            dropped += total - kept
            carried += kept
            if kept == 0:
                continue
            if kept + aged == total:  # nothing deleted or withdrawn: linked; readers skip the rows that aged out
                batches.append(link_batch(previous.path, staging, old))
                continue
            frame = read_batches(spark, previous.path, [old], source.spark_schema_ddl).join(keys, key, "left_semi")
            rewritten = write_batch(frame.coalesce(max(1, len(old.files))), staging, old.batch, key)
            if rewritten.rows != kept:
                raise ExtractError(
                    f"Source {source.name!r}: batch {old.batch} of {previous.path} kept {rewritten.rows} rows when "
                    f"filtered, {kept} when counted; the earlier snapshot changed during the read. Re-run the extract."
                )
            batches.append(rewritten)

        new_rows = bounds.rows - carried
        partitions = 0
        new = None
        if new_rows > 0:
            frame, partitions = _read_new(
                spark, db, source, window, bounds, mark, late, new_rows, num_partitions, fetchsize
            )
            new = write_batch(conform(frame, source), staging, batch, key)
            batches.append(new)
        _check(spark, source, staging, new, keys, carried, bounds.rows)
        _write_changes(compared, source, staging)
        log.info(
            "Source %s: incremental read on ds=%s: %d new rows (%d committed late), %d dropped, %d batch(es) kept",
            source.name,
            previous.ds,
            new_rows,
            len(late),
            dropped,
            len(batches) - (1 if new_rows > 0 else 0),
        )
        return SnapshotFiles(batches=tuple(batches), new_rows=new_rows, dropped_rows=dropped, num_partitions=partitions)


def _read_updated(
    spark: SparkSession,
    db: DatabaseUrl,
    source: Source,
    window: tuple[datetime, datetime],
    bounds: Bounds,
    previous: PreviousSnapshot,
    staging: Path,
    batch: str,
    num_partitions: int,
    fetchsize: int,
) -> SnapshotFiles | str | None:
    """The weekly read that does not re-read the window, for a source with ``updated_at``: the rows updated since
    the previous snapshot (narrowly) and the new ones (in full); the previous batches are carried forward whole.

    It holds only if PostgreSQL's rows at or below the high-water mark are the previous snapshot's rows still in the
    window, with the same count of ``updated_at`` once patched: one count and checksum computed in PostgreSQL says
    so. A deletion, a withdrawn consent, a row committed late or an outcome cleared changes it; then the reason is
    returned (a str) and the caller re-reads the window's keys. None: the source has no ``updated_at`` to use.
    """
    from pyspark.sql import functions as F

    incremental = source.incremental
    updated_at = incremental.updated_at if incremental else None
    mark = previous.high_water_mark
    if updated_at is None or mark is None:
        return None
    if updated_at in bounds.absent_columns:
        return f"its updated_at column {updated_at} is not in the database"
    key, start, end = source.partition_column, window[0], window[1]
    since = previous.window_end - UPDATED_LOOKBACK
    check = probe_carried(db, source, window, bounds.absent_columns, mark, updated_at, since)
    changed_dir = staging / CHANGED_DIR
    changed = _read_narrow(
        spark,
        db,
        source,
        window,
        check.updated,
        changed_dir,
        num_partitions,
        fetchsize,
        what=f"rows updated since {since.isoformat()}",
        where=f"{key} <= {mark} AND {updated_at} >= {timestamp_sql(since)}",
    )
    now = changed.select(key, F.col(updated_at).alias("_updated_now"), F.lit(True).alias("_changed"))
    in_window = F.col(source.window_column) >= F.lit(start)
    dated = F.when(F.col("_changed").isNotNull(), F.col("_updated_now")).otherwise(F.col(updated_at)) < F.lit(end)
    per_file = (
        read_batches(spark, previous.path, previous.batches, source.spark_schema_ddl)
        .select(key, source.window_column, updated_at, F.col("_metadata.file_name").alias("_file"))
        .join(F.broadcast(now), key, "left")
        .groupBy("_file")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count(F.when(in_window, 1)).alias("kept"),
            F.sum(F.when(in_window, F.col(key).cast("decimal(38,0)"))).alias("key_sum"),
            F.count(F.when(in_window & dated, 1)).alias("dated"),
        )
        .collect()
    )
    stats = {row["_file"]: row for row in per_file}
    held = tuple(sum(int(row[field] or 0) for row in per_file) for field in ("kept", "key_sum", "dated"))
    if held != (check.rows, check.key_sum, check.dated):
        shutil.rmtree(changed_dir)
        return (
            f"PostgreSQL counts {check.rows} rows with {key} <= {mark} in the window ({check.dated} with "
            f"{updated_at}), the snapshot of ds={previous.ds} {held[0]} ({held[2]}), or their {key}s differ: rows "
            "were deleted, withdrawn, committed late, or had their refresh columns cleared"
        )
    batches: list[Batch] = []
    for old in previous.batches:
        rows = [stats[name] for name in old.files if name in stats]
        counted = sum(int(row["rows"]) for row in rows)
        if counted != old.rows:
            raise ExtractError(
                f"Source {source.name!r}: batch {old.batch} of {previous.path} holds {counted} rows, its manifest "
                f"says {old.rows}; the earlier snapshot changed during the read. Re-run the extract."
            )
        if any(int(row["kept"]) for row in rows):  # readers skip the rows that aged out
            batches.append(link_batch(previous.path, staging, old))
    new_rows = bounds.rows - check.rows
    new, partitions = None, 0
    if new_rows > 0:
        frame, partitions = _read_new(spark, db, source, window, bounds, mark, [], new_rows, num_partitions, fetchsize)
        new = write_batch(conform(frame, source), staging, batch, key)
        batches.append(new)
    if (new.rows if new else 0) != new_rows:
        raise ExtractError(
            f"Source {source.name!r}: read {new.rows if new else 0} rows with {key} > {mark}, but the window held "
            f"{new_rows} of them when probed; rows changed inside the window during the read. Re-run the extract."
        )
    dropped = previous.rows - check.rows
    log.info(
        "Source %s: incremental read on ds=%s: %d new rows, %d updated since %s, %d aged out; the other rows "
        "checked in PostgreSQL (count and checksum), not read",
        source.name,
        previous.ds,
        new_rows,
        changed.count(),
        since.isoformat(),
        dropped,
    )
    return SnapshotFiles(batches=tuple(batches), new_rows=new_rows, dropped_rows=dropped, num_partitions=partitions)


def _read_refresh(
    spark: SparkSession,
    db: DatabaseUrl,
    source: Source,
    window: tuple[datetime, datetime],
    bounds: Bounds,
    directory: Path,
    num_partitions: int,
    fetchsize: int,
) -> DataFrame:
    """The window's keys and refresh columns, written to ``directory``; their count must be the probe's."""
    refresh = _read_narrow(
        spark, db, source, window, bounds, directory, num_partitions, fetchsize, what="refresh columns"
    )
    rows = refresh.count()
    if rows != bounds.rows:
        raise ExtractError(
            f"Source {source.name!r}: the refresh read found {rows} rows in the window but it held {bounds.rows} "
            "when probed; rows changed inside the window during the read. Re-run the extract."
        )
    return refresh


def _read_narrow(
    spark: SparkSession,
    db: DatabaseUrl,
    source: Source,
    window: tuple[datetime, datetime],
    bounds: Bounds,
    directory: Path,
    num_partitions: int,
    fetchsize: int,
    *,
    what: str,
    where: str | None = None,
) -> DataFrame:
    """The key and refresh columns of the window's rows (those matching ``where``, when given; ``bounds`` are
    theirs), written with their declared types to ``directory`` and read back from there."""
    columns = (source.partition_column, *refresh_columns(source))
    relation = windowed_relation(source, window, bounds.absent_columns, where=where)
    frame = read_source(
        spark,
        db,
        source,
        window,
        bounds,
        num_partitions,
        fetchsize,
        relation=f"(SELECT {', '.join(columns)} FROM {relation}) AS {source.name}_narrow",
        what=what,
    )
    frame.selectExpr(*(f"CAST(`{name}` AS {source.columns[name]}) AS `{name}`" for name in columns)).write.mode(
        "error"
    ).parquet(str(directory))
    return spark.read.parquet(str(directory))


@contextmanager
def _persisted(frame: DataFrame) -> Iterator[DataFrame]:
    """``frame`` cached while the block reads it several times, released after."""
    frame.persist()
    try:
        yield frame
    finally:
        frame.unpersist()


def _compare(
    spark: SparkSession, source: Source, previous: PreviousSnapshot, refresh: DataFrame, start: datetime
) -> DataFrame:
    """The previous snapshot's rows (key, refresh columns, whether older than ``start``, file) and the refresh
    read's, joined on the key: one shuffle of narrow rows gives the per-file counts, the late keys and the changed
    values."""
    from pyspark.sql import functions as F

    key, columns = source.partition_column, refresh_columns(source)
    held = (
        spark.read.schema(source.spark_schema_ddl)
        .parquet(*batch_paths(previous.path, previous.batches))
        .select(
            key,
            *(F.col(c).alias(f"_held_{c}") for c in columns),
            (F.col(source.window_column) < F.lit(start)).alias("_aged"),
            F.col("_metadata.file_name").alias("_file"),
        )
    )
    now = refresh.select(key, *columns).withColumn("_now", F.lit(True))
    return held.join(now, key, "full_outer")


def _file_stats(compared: DataFrame) -> dict[str, tuple[int, int, int]]:
    """Per data file of the previous snapshot: its rows, how many of them are still in the window, and how many
    left it because they are older than its start. The others were deleted or withdrawn."""
    from pyspark.sql import functions as F

    rows = (
        compared.where(F.col("_file").isNotNull())
        .groupBy("_file")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.count("_now").alias("kept"),
            F.count(F.when(F.col("_aged") & F.col("_now").isNull(), 1)).alias("aged"),
        )
        .collect()
    )
    return {row["_file"]: (int(row["rows"]), int(row["kept"]), int(row["aged"])) for row in rows}


def _late_keys(compared: DataFrame, key: str, mark: int | None) -> list[int]:
    """Keys of the window at or below the high-water mark that the previous snapshot lacks; at most one past the
    limit."""
    from pyspark.sql import functions as F

    if mark is None:
        return []
    late = compared.where(F.col("_file").isNull() & (F.col(key) <= mark)).select(key)
    return sorted(int(row[key]) for row in late.limit(LATE_ROWS_LIMIT + 1).collect())


def _read_new(
    spark: SparkSession,
    db: DatabaseUrl,
    source: Source,
    window: tuple[datetime, datetime],
    bounds: Bounds,
    mark: int | None,
    late: list[int],
    rows: int,
    num_partitions: int,
    fetchsize: int,
) -> tuple[DataFrame, int]:
    """The window's rows new to the previous snapshot, in full (keys above ``mark``, and the ``late`` ones), and
    the number of ranges the read is split into."""
    key = source.partition_column
    where = f"{key} > {mark}" if mark is not None else "TRUE"
    if late:
        where += f" OR {key} IN ({', '.join(str(k) for k in late)})"
    low = min([*late, (mark + 1) if mark is not None else bounds.id_min or 0])
    high = max([*late, bounds.id_max if bounds.id_max is not None else low])
    relation = windowed_relation(source, window, bounds.absent_columns, where=where)
    new_bounds = Bounds(rows=rows, id_min=low, id_max=max(low, high), absent_columns=bounds.absent_columns)
    frame = read_source(
        spark, db, source, window, new_bounds, num_partitions, fetchsize, relation=relation, what="new rows"
    )
    return frame, jdbc_partitions(new_bounds, num_partitions)


def _write_changes(compared: DataFrame, source: Source, staging: Path) -> None:
    """``_changed/``: the carried rows whose refresh columns differ from their batch's (an outcome that arrived
    since the row was read). Few, so a reader patches the batches with them through a broadcast join, instead of
    joining every wide row with the whole refresh read. New rows were read with their current values."""
    from functools import reduce

    from pyspark.sql import functions as F

    key, columns = source.partition_column, refresh_columns(source)
    same = reduce(lambda a, b: a & b, (F.col(f"_held_{c}").eqNullSafe(F.col(c)) for c in columns), F.lit(True))
    changed = compared.where(F.col("_file").isNotNull() & F.col("_now") & ~same).select(key, *columns)
    changed.coalesce(1).write.mode("error").parquet(str(staging / CHANGED_DIR))


def _check(
    spark: SparkSession,
    source: Source,
    staging: Path,
    new: Batch | None,
    keys: DataFrame,
    carried: int,
    expected: int,
) -> None:
    """The carried rows and the new ones make up the window as the probe counted it, and every new row is one the
    refresh read saw. The carried rows were matched with the refresh read's keys as they were counted, so only the
    few new keys need a look: broadcast, the window's keys are not shuffled."""
    from pyspark.sql import functions as F

    key = source.partition_column
    new_rows = new.rows if new else 0
    seen = 0
    if new is not None:
        ids = read_batches(spark, staging, [new], source.spark_schema_ddl).select(key)
        seen = keys.join(F.broadcast(ids), key, "left_semi").count()
    if carried + new_rows != expected or seen != new_rows:
        raise ExtractError(
            f"Source {source.name!r}: the snapshot holds {carried} rows carried forward and {new_rows} new ones "
            f"({new_rows - seen} of them not in the refresh read), but the window held {expected} when probed; "
            "rows changed inside the window during the read. Re-run the extract."
        )
