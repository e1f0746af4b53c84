"""A snapshot's batches, and the previous snapshot an incremental extract builds on.

An incremental snapshot (``raw/<source>/``) is the union of batches: each the rows one run read in full, kept as
Parquet files named after that run's ``ds`` (``b2026-11-22-part-00000-....parquet``) and listed in the manifest.
A later run carries a batch forward by hard-linking its files when none of its rows left the window, so a week
rewrites only what changed. ``_changed/`` (ignored by Spark and pyarrow when they read the folder, as every path
starting with ``_``) holds the carried rows whose refresh columns changed since they were read; readers patch the
batches with it (``jobs/sqlproject/sources.py``). ``_refresh/`` holds the window's keys and refresh columns when a
read had to re-read them.

This module owns that layout on disk and decides whether an earlier snapshot can be built on; the reads
themselves are in ``jobs/postgres/incremental.py``.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.run_context import RunFolder
from jobs.spark.atomic import MANIFEST, link_files, read_manifest

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

#: the snapshot layout's version, in every manifest: a previous snapshot of another version is not built on
FORMAT = 3
#: the window's keys and refresh columns, inside the snapshot folder
REFRESH_DIR = "_refresh"
#: the refresh read's rows whose refresh columns differ from their batch's: what readers patch the batches with
CHANGED_DIR = "_changed"


@dataclass(frozen=True)
class Batch:
    """The rows one run read in full: its Parquet files in the snapshot folder, their row count and highest key."""

    batch: str
    files: tuple[str, ...]
    rows: int
    id_max: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "files": list(self.files), "rows": self.rows, "id_max": self.id_max}

    @classmethod
    def from_dict(cls, value: Any) -> Batch:
        """A manifest's batch entry; ValueError when it is not one (a damaged or hand-edited manifest)."""
        if not isinstance(value, dict):
            raise ValueError(f"a batch must be an object, got {value!r}")
        batch, files, rows, id_max = (value.get(k) for k in ("batch", "files", "rows", "id_max"))
        if not isinstance(batch, str) or not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError(f"a batch needs 'batch' (a ds) and 'files' (file names), got {value!r}")
        if any("/" in f or f.startswith(("_", ".")) for f in files):
            raise ValueError(f"batch {batch} lists a file that is not a data file of the folder: {files!r}")
        if not _whole(rows) or rows < 0 or not (id_max is None or _whole(id_max)):
            raise ValueError(f"batch {batch} needs whole numbers 'rows' and 'id_max', got {value!r}")
        return cls(batch=batch, files=tuple(files), rows=rows, id_max=id_max)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def batch_prefix(batch: str) -> str:
    """The file-name prefix of a batch's files: ``b<ds>-``."""
    return f"b{batch}-"


def write_batch(df: DataFrame, directory: Path, batch: str, key: str) -> Batch:
    """Write ``df`` as batch ``batch`` of the snapshot being staged in ``directory``.

    Spark writes into a temporary folder beside ``directory`` (a folder inside it would be read as part of the
    snapshot), then each part file moves in under the batch's prefix. An empty ``df`` still leaves one file, which
    carries the schema.
    """
    from pyspark.sql import functions as F

    temporary = directory.with_name(f"{directory.name}-batch-{uuid.uuid4().hex[:8]}")
    try:
        df.write.mode("error").parquet(str(temporary))
        written = df.sparkSession.read.parquet(str(temporary)).agg(F.count(F.lit(1)), F.max(key)).first()
        files = []
        for part in sorted(temporary.glob("*.parquet")):
            name = batch_prefix(batch) + part.name
            os.replace(part, directory / name)
            files.append(name)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return Batch(batch=batch, files=tuple(files), rows=int(written[0]), id_max=written[1])


def link_batch(previous: Path, directory: Path, batch: Batch) -> Batch:
    """Carry ``batch`` of the snapshot ``previous`` into ``directory`` unchanged: its files hard-linked, no byte
    rewritten."""
    names = set(batch.files)
    linked = link_files(previous, directory, keep=lambda relative: len(relative.parts) == 1 and relative.name in names)
    if linked != len(names):
        raise FileNotFoundError(f"{previous}: batch {batch.batch} lists {len(names)} files, {linked} were found")
    return batch


def batch_paths(directory: Path, batches: Sequence[Batch]) -> list[str]:
    return [str(directory / name) for batch in batches for name in batch.files]


def read_batches(spark: SparkSession, directory: Path, batches: Sequence[Batch], schema: str) -> DataFrame:
    """The rows of ``batches`` of the snapshot in ``directory``, with the declared ``schema``."""
    paths = batch_paths(directory, batches)
    if not paths:
        return spark.createDataFrame([], schema)
    return spark.read.schema(schema).parquet(*paths)


@dataclass(frozen=True)
class SnapshotFiles:
    """What a read left in the staged snapshot folder: its batches, and how many rows were read in full or left."""

    batches: tuple[Batch, ...]
    new_rows: int
    dropped_rows: int
    num_partitions: int

    @property
    def rows(self) -> int:
        return sum(b.rows for b in self.batches)


@dataclass(frozen=True)
class PreviousSnapshot:
    """An earlier run's snapshot of the same source that an incremental read can build on."""

    ds: str
    path: Path
    batches: tuple[Batch, ...]
    absent_columns: tuple[str, ...]
    #: the end of the window it was taken of (its run's data_interval_end)
    window_end: datetime

    @property
    def rows(self) -> int:
        return sum(b.rows for b in self.batches)

    @property
    def high_water_mark(self) -> int | None:
        """The highest key it holds: every row with a higher key is new to it."""
        marks = [b.id_max for b in self.batches if b.id_max is not None]
        return max(marks) if marks else None


@dataclass(frozen=True)
class FullRead:
    """Why a source is read whole; ``expected`` for the ordinary reasons (no earlier snapshot, ``--full-refresh``),
    logged at INFO; a damaged or inconsistent earlier snapshot is logged as a WARNING."""

    reason: str
    expected: bool = True

    def log(self, source: str) -> None:
        log.log(logging.INFO if self.expected else logging.WARNING, "Source %s: full read: %s", source, self.reason)


def find_previous(
    folder: RunFolder,
    source: str,
    source_hash: str,
    window_end: datetime,
    absent_columns: Sequence[str],
) -> PreviousSnapshot | FullRead:
    """The newest snapshot of ``source`` in an earlier run folder (``RunFolder.earlier``) that is valid and was
    taken of the same source definition, up to this run's window end; else why not, for the one line saying why
    the source is read whole.

    An earlier folder without a snapshot of the source is passed over; one whose snapshot cannot be built on is
    passed over too, and when none can, the newest one's reason is given.
    """
    first_problem: FullRead | None = None
    for earlier in folder.earlier():
        path = earlier.snapshot(source)
        if not path.is_dir():
            continue
        checked = _check(earlier.ds, path, source, source_hash, window_end, tuple(absent_columns))
        if isinstance(checked, PreviousSnapshot):
            if first_problem is not None:
                log.info(
                    "Source %s: building on ds=%s, not on a newer snapshot: %s",
                    source,
                    earlier.ds,
                    first_problem.reason,
                )
            return checked
        first_problem = first_problem or checked
    return first_problem or FullRead(f"no earlier run folder under {folder.path.parent} holds a snapshot of it")


def _check(
    ds: str, path: Path, source: str, source_hash: str, window_end: datetime, absent: tuple[str, ...]
) -> PreviousSnapshot | FullRead:
    at = f"the snapshot of ds={ds} ({path / MANIFEST})"
    try:
        manifest = read_manifest(path)
    except FileNotFoundError:
        return FullRead(f"{at} has no manifest", expected=False)
    except (OSError, ValueError) as e:
        return FullRead(f"{at} cannot be read: {e}", expected=False)
    if not isinstance(manifest, Mapping):
        return FullRead(f"{at} is not a JSON object", expected=False)
    if manifest.get("format") != FORMAT:
        return FullRead(f"{at} has format {manifest.get('format', 1)!r}; this extract writes format {FORMAT}")
    if manifest.get("source") != source or manifest.get("source_hash") != source_hash:
        return FullRead(f"{at} was taken of another definition of the source (sources.yml changed since)")
    if list(manifest.get("absent_columns") or ()) != list(absent):
        return FullRead(
            f"{at} read the optional columns {list(manifest.get('absent_columns') or ())} as NULL, this run reads "
            f"{list(absent)} so: the database's columns changed since"
        )
    try:
        previous_end = datetime.fromisoformat(str(manifest.get("window_end")))
        batches = tuple(Batch.from_dict(b) for b in manifest.get("batches") or ())
        rows = manifest.get("rows")
        if not _whole(rows) or sum(b.rows for b in batches) != rows:
            raise ValueError(f"its batches hold {sum(b.rows for b in batches)} rows, its 'rows' says {rows!r}")
        later = previous_end > window_end  # TypeError for a window end without a time zone
    except (TypeError, ValueError) as e:
        return FullRead(f"{at} is not valid: {e}", expected=False)
    if later:
        return FullRead(
            f"{at} ends its window at {previous_end.isoformat()}, after this run's {window_end.isoformat()}"
        )
    missing = [name for b in batches for name in b.files if not (path / name).is_file()]
    if missing:
        return FullRead(f"{at} lists {len(missing)} data file(s) that are missing, e.g. {missing[0]}", expected=False)
    if not batches or sum(b.rows for b in batches) == 0:
        return FullRead(f"{at} holds no rows")
    return PreviousSnapshot(ds=ds, path=path, batches=batches, absent_columns=absent, window_end=previous_end)
