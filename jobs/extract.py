"""extract_data: snapshot every source's window from PostgreSQL into ``runs/ds=<ds>/raw/<source>/``.

Later steps, and re-runs of them, read the snapshot instead of the database, so a run is reproducible even while
the backend keeps writing. A snapshot is replaced whole or not at all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import ConfigError, ExtractError, MissingRelationError, RetrainError
from jobs.postgres.classify import classify
from jobs.postgres.jdbc import Bounds, default_num_partitions, probe_bounds, read_source
from jobs.postgres.url import DatabaseUrl
from jobs.run_context import RunContext
from jobs.settings import Settings
from jobs.spark.atomic import atomic_directory, write_manifest
from jobs.sqlproject.config import Source, load_project_vars, load_sources, lookback_days

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceSnapshot:
    """What one source's snapshot holds; also written as its ``_manifest.json``."""

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


def _conform(df: DataFrame, source: Source) -> DataFrame:
    """Select the declared columns with their declared types, so every snapshot has the schema `check` assumes."""
    missing = [name for name in source.columns if name not in df.columns]
    if missing:
        raise MissingRelationError(
            f"Source {source.name!r} declares column(s) {', '.join(missing)} in sql/sources.yml, but its relation "
            f"has only: {', '.join(df.columns)}. Fix the column list or the source's table/query."
        )
    return df.selectExpr(*(f"CAST(`{name}` AS {type_}) AS `{name}`" for name, type_ in source.columns.items()))


def snapshot_source(
    spark: SparkSession,
    db: DatabaseUrl,
    source: Source,
    ctx: RunContext,
    target: Path,
    window_days: int,
    num_partitions: int,
    fetchsize: int,
    probe: Future[Bounds],
) -> SourceSnapshot:
    """Read one source's window and write it atomically as Parquet with a manifest.

    ``probe``: the window's bounds, being probed since :meth:`Extraction.start`; its error, if any, is raised here.
    """
    started = time.monotonic()
    window = ctx.window(window_days)
    bounds = probe.result()
    if bounds.rows == 0:
        log.info("Source %s has no rows in its window: nothing new.", source.name)
        df = spark.createDataFrame([], source.spark_schema_ddl)
    else:
        df = _conform(read_source(spark, db, source, window, bounds, num_partitions, fetchsize), source)

    with atomic_directory(target) as staging:
        try:
            df.write.mode("error").parquet(str(staging))
        except RetrainError:
            raise
        except Exception as e:  # py4j and pyspark errors carry the driver's message
            raise classify(e, db, f"reading source {source.name!r}") from None
        written = spark.read.parquet(str(staging)).count()
        if written != bounds.rows:
            raise ExtractError(
                f"Source {source.name!r}: wrote {written} rows but the window held {bounds.rows} when probed; "
                "rows changed inside the window during the read. Re-run the extract."
            )
        snapshot = SourceSnapshot(
            source=source.name,
            path=str(target),
            rows=bounds.rows,
            id_min=bounds.id_min,
            id_max=bounds.id_max,
            window_start=window[0].isoformat(),
            window_end=window[1].isoformat(),
            num_partitions=int(df.rdd.getNumPartitions()) if bounds.rows else 0,
            fetchsize=fetchsize,
            duration_seconds=round(time.monotonic() - started, 3),
            absent_columns=bounds.absent_columns,
        )
        write_manifest(staging, asdict(snapshot))
    log.info("Snapshot of %s: %d rows in %.1fs -> %s", source.name, bounds.rows, snapshot.duration_seconds, target)
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

    @classmethod
    def start(
        cls,
        settings: Settings,
        ctx: RunContext,
        *,
        project_dir: Path | None = None,
        vars_overrides: dict[str, Any] | None = None,
        sources: list[str] | None = None,
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
        return cls(settings, ctx, db, selected, window_days, probes)

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
                folder.snapshot(source.name),
                self.window_days,
                num_partitions,
                self.settings.jdbc_fetchsize,
                self.probes[source.name],
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
) -> ExtractResult:
    """Snapshot the selected sources (default: all in sources.yml) for the run ``ctx`` with a running session.

    The steps' commands use :class:`Extraction` instead, to probe while their session starts.
    """
    extraction = Extraction.start(
        settings, ctx, project_dir=project_dir, vars_overrides=vars_overrides, sources=sources
    )
    return extraction.run(spark)
