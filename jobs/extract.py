"""extract_data: snapshot every source's window from PostgreSQL into ``runs/ds=<ds>/raw/<source>/``.

Later steps, and re-runs of them, read the snapshot instead of the database, so a run is reproducible even while
the backend keeps writing. A snapshot is replaced whole or not at all. A source declared ``incremental`` is read
on the previous week's snapshot: only its new rows in full (``jobs/postgres/incremental.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import ConfigError, ExtractError, RetrainError
from jobs.postgres.classify import classify
from jobs.postgres.incremental import read_incrementally, refresh_columns, source_hash
from jobs.postgres.jdbc import Bounds, conform, default_num_partitions, jdbc_partitions, probe_bounds, read_source
from jobs.postgres.url import DatabaseUrl
from jobs.run_context import RunContext, RunFolder
from jobs.settings import Settings
from jobs.spark.atomic import atomic_directory, write_manifest
from jobs.spark.batches import FORMAT, FullRead, PreviousSnapshot, SnapshotFiles, find_previous, write_batch
from jobs.sqlproject.config import Source, load_project_vars, load_sources, lookback_days

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceSnapshot:
    """What one source's snapshot holds; also written as its ``_manifest.json``, with its ``batches`` besides
    (they stay out of XCom)."""

    source: str
    path: str
    rows: int
    id_min: int | None
    id_max: int | None
    window_start: str
    window_end: str
    num_partitions: int
    fetchsize: int
    duration_seconds: float
    #: optional columns of the source (sources.yml) that the database lacks, read as NULL
    absent_columns: tuple[str, ...] = ()
    #: the snapshot layout's version (``jobs/spark/batches.py``)
    format: int = FORMAT
    #: "full": the whole window was read; "incremental": only the rows the previous snapshot lacked, in full
    mode: str = "full"
    #: why the window was read whole; None for an incremental read
    full_read_reason: str | None = None
    #: a digest of the source's definition: an incremental read builds only on a snapshot of the same one
    source_hash: str = ""
    #: the ds of the snapshot an incremental read built on; None for a full read
    previous: str | None = None
    #: rows read in full (every row, for a full read), and rows of the previous snapshot that left the window
    new_rows: int = 0
    dropped_rows: int = 0
    #: the columns that change after a row is written, read again for the rows that may have changed (none for a
    #: full read)
    refresh_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtractResult:
    """The snapshots of one run; small enough to travel through XCom."""

    ds: str
    snapshots: tuple[SourceSnapshot, ...]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.snapshots)

    @property
    def nothing_new(self) -> bool:
        """True when every window was empty: training and deployment are skipped."""
        return self.rows == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ds": self.ds,
            "rows": self.rows,
            "nothing_new": self.nothing_new,
            "snapshots": [asdict(s) for s in self.snapshots],
        }


def _full_read(
    spark: SparkSession,
    db: DatabaseUrl,
    source: Source,
    window: tuple[datetime, datetime],
    bounds: Bounds,
    staging: Path,
    batch: str,
    num_partitions: int,
    fetchsize: int,
) -> SnapshotFiles:
    """The whole window, written as one batch."""
    if bounds.rows == 0:
        log.info("Source %s has no rows in its window: nothing new.", source.name)
        df = spark.createDataFrame([], source.spark_schema_ddl)
    else:
        df = conform(read_source(spark, db, source, window, bounds, num_partitions, fetchsize), source)
    written = write_batch(df, staging, batch, source.partition_column)
    if written.rows != bounds.rows:
        raise ExtractError(
            f"Source {source.name!r}: wrote {written.rows} rows but the window held {bounds.rows} when probed; "
            "rows changed inside the window during the read. Re-run the extract."
        )
    partitions = jdbc_partitions(bounds, num_partitions) if bounds.rows else 0
    return SnapshotFiles(batches=(written,), new_rows=written.rows, dropped_rows=0, num_partitions=partitions)


FULL_REFRESH_ASKED = "a full refresh was asked for (--full-refresh, or the DAG run's full_refresh param)"


def _plan(
    folder: RunFolder, source: Source, window: tuple[datetime, datetime], bounds: Bounds, full_refresh: bool
) -> PreviousSnapshot | FullRead:
    """The snapshot an incremental read of ``source`` builds on, or why its window is read whole."""
    if source.incremental is None:
        return FullRead("the source has no 'incremental' block in sources.yml")
    if full_refresh:
        return FullRead(FULL_REFRESH_ASKED)
    if bounds.rows == 0:
        return FullRead("its window is empty")
    return find_previous(folder, source.name, source_hash(source), window[1], bounds.absent_columns)


def snapshot_source(
    spark: SparkSession,
    db: DatabaseUrl,
    source: Source,
    ctx: RunContext,
    folder: RunFolder,
    window_days: int,
    num_partitions: int,
    fetchsize: int,
    probe: Future[Bounds],
    full_refresh: bool = False,
) -> SourceSnapshot:
    """Read one source's window and write it atomically as Parquet with a manifest into ``folder``: on the newest
    valid earlier snapshot when the source is ``incremental`` (unless ``full_refresh``), else whole.

    ``probe``: the window's bounds, being probed since :meth:`Extraction.start`; its error, if any, is raised here.
    """
    started = time.monotonic()
    target = folder.snapshot(source.name)
    window = ctx.window(window_days)
    bounds = probe.result()
    plan = _plan(folder, source, window, bounds, full_refresh)
    if isinstance(plan, FullRead) and source.incremental is not None:
        plan.log(source.name)
    with atomic_directory(target) as staging:
        staging.mkdir(parents=True)
        try:
            files = None
            if isinstance(plan, PreviousSnapshot):
                outcome = read_incrementally(
                    spark, db, source, window, bounds, plan, staging, ctx.ds_str, num_partitions, fetchsize
                )
                if isinstance(outcome, FullRead):
                    outcome.log(source.name)
                    plan = outcome
                else:
                    files = outcome
            if files is None:
                files = _full_read(spark, db, source, window, bounds, staging, ctx.ds_str, num_partitions, fetchsize)
        except RetrainError:
            raise
        except Exception as e:  # py4j and pyspark errors carry the driver's message
            raise classify(e, db, f"reading source {source.name!r}") from None
        previous = plan if isinstance(plan, PreviousSnapshot) else None
        snapshot = SourceSnapshot(
            source=source.name,
            path=str(target),
            rows=bounds.rows,
            id_min=bounds.id_min,
            id_max=bounds.id_max,
            window_start=window[0].isoformat(),
            window_end=window[1].isoformat(),
            num_partitions=files.num_partitions,
            fetchsize=fetchsize,
            duration_seconds=round(time.monotonic() - started, 3),
            absent_columns=bounds.absent_columns,
            mode="full" if previous is None else "incremental",
            full_read_reason=plan.reason if isinstance(plan, FullRead) else None,
            source_hash=source_hash(source),
            previous=previous.ds if previous else None,
            new_rows=files.new_rows,
            dropped_rows=files.dropped_rows,
            refresh_columns=refresh_columns(source) if previous else (),
        )
        write_manifest(staging, {**asdict(snapshot), "batches": [b.to_dict() for b in files.batches]})
    log.info(
        "Snapshot of %s (%s read): %d rows in %.1fs -> %s",
        source.name,
        snapshot.mode,
        bounds.rows,
        snapshot.duration_seconds,
        target,
    )
    return snapshot


@dataclass(frozen=True)
class Extraction:
    """One run's extract, started before Spark: the configuration is checked and each source's window is being
    probed (one count/min/max query in PostgreSQL) while the caller starts its Spark session.

    The probe is shorter than the session's start, so overlapped it costs nothing. A wrong password or an
    unreachable server fails at :meth:`run`'s first step, before any data is read.
    """

    settings: Settings
    ctx: RunContext
    db: DatabaseUrl
    sources: tuple[Source, ...]
    window_days: int
    probes: Mapping[str, Future[Bounds]]
    #: read every window whole, even a source declared incremental (``retrain extract --full-refresh``)
    full_refresh: bool = False

    @classmethod
    def start(
        cls,
        settings: Settings,
        ctx: RunContext,
        *,
        project_dir: Path | None = None,
        vars_overrides: dict[str, Any] | None = None,
        sources: list[str] | None = None,
        full_refresh: bool = False,
    ) -> Extraction:
        """Check the selected sources (default: all in sources.yml) and start probing their windows."""
        project_dir = project_dir or settings.sql_project_dir
        declared = load_sources(project_dir)
        unknown = sorted(set(sources or ()) - set(declared))
        if unknown:
            raise ConfigError(f"Unknown source(s) {', '.join(unknown)}. Known sources: {', '.join(sorted(declared))}.")
        window_days = lookback_days(load_project_vars(project_dir, vars_overrides))
        db = settings.database()
        selected = tuple(declared[name] for name in (sources or sorted(declared)))
        window = ctx.window(window_days)
        pool = ThreadPoolExecutor(max_workers=len(selected) or 1, thread_name_prefix="probe")
        probes = {source.name: pool.submit(probe_bounds, db, source, window) for source in selected}
        pool.shutdown(wait=False)  # the probes run on; run() waits for each one it needs
        return cls(settings, ctx, db, selected, window_days, probes, full_refresh)

    def run(self, spark: SparkSession) -> ExtractResult:
        """Snapshot every selected source with ``spark``, in sources.yml's name order."""
        folder = self.settings.run_folder(self.ctx.ds_str)
        num_partitions = self.settings.jdbc_num_partitions or default_num_partitions(spark)
        snapshots = tuple(
            snapshot_source(
                spark,
                self.db,
                source,
                self.ctx,
                folder,
                self.window_days,
                num_partitions,
                self.settings.jdbc_fetchsize,
                self.probes[source.name],
                self.full_refresh,
            )
            for source in self.sources
        )
        result = ExtractResult(ds=self.ctx.ds_str, snapshots=snapshots)
        if result.nothing_new:
            log.info("Nothing new for %s: every source window is empty.", self.ctx.ds_str)
        return result


def extract(
    settings: Settings,
    ctx: RunContext,
    spark: SparkSession,
    *,
    project_dir: Path | None = None,
    vars_overrides: dict[str, Any] | None = None,
    sources: list[str] | None = None,
    full_refresh: bool = False,
) -> ExtractResult:
    """Snapshot the selected sources (default: all in sources.yml) for the run ``ctx`` with a running session.

    The steps' commands use :class:`Extraction` instead, to probe while their session starts.
    """
    extraction = Extraction.start(
        settings,
        ctx,
        project_dir=project_dir,
        vars_overrides=vars_overrides,
        sources=sources,
        full_refresh=full_refresh,
    )
    return extraction.run(spark)
