"""The logical date of a run and its data interval, the only notion of time the pipeline uses; and its folder.

Nothing reads the wall clock, so re-running a logical date reads and writes exactly the same data. ``RunFolder``
names every path of a run, :func:`read_step_output` reads what a step left there, and :func:`plan_prune` and
:func:`prune` delete old runs (``retrain runs prune``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from jobs.errors import ConfigError, check_scalar

log = logging.getLogger(__name__)


def parse_ds(ds: str) -> date:
    try:
        return date.fromisoformat(ds)
    except ValueError:
        raise ConfigError(f"--ds must be a date as YYYY-MM-DD. Got {ds!r} instead.") from None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class RunContext:
    """One run: its logical date ``ds`` and its data interval (Airflow's, or derived from ``ds``)."""

    ds: date
    data_interval_start: datetime
    data_interval_end: datetime

    @classmethod
    def for_ds(
        cls,
        ds: str | date,
        data_interval_end: datetime | None = None,
        data_interval_start: datetime | None = None,
    ) -> RunContext:
        """From the command line, the interval ends at ``ds`` 00:00 UTC and spans the week before."""
        day = parse_ds(ds) if isinstance(ds, str) else ds
        end = _utc(data_interval_end) if data_interval_end else datetime(day.year, day.month, day.day, tzinfo=UTC)
        start = _utc(data_interval_start) if data_interval_start else end - timedelta(days=7)
        if start > end:
            raise ConfigError(f"The data interval starts ({start}) after it ends ({end}).")
        return cls(ds=day, data_interval_start=start, data_interval_end=end)

    @property
    def ds_str(self) -> str:
        return self.ds.isoformat()

    def window(self, lookback_days: int) -> tuple[datetime, datetime]:
        """The extraction window ``[data_interval_end - lookback_days, data_interval_end)``."""
        check_scalar(lookback_days, "The 'lookback_days' var", minimum=1)
        return self.data_interval_end - timedelta(days=lookback_days), self.data_interval_end


def ds_of(path: Path) -> str:
    """The ``ds`` of the run folder ``path`` is in (``.../runs/ds=2026-11-22/...``), for a message that tells which
    command to run; ``<ds>`` when it is in none."""
    folder = next((p.name for p in (path, *path.parents) if p.name.startswith("ds=") and _is_ds_folder(p.name)), None)
    return folder.removeprefix("ds=") if folder else "<ds>"


def _is_ds_folder(name: str) -> bool:
    try:
        date.fromisoformat(name.removeprefix("ds="))
    except ValueError:
        return False
    return True


def read_step_output(path: Path, reader: str) -> Any:
    """The JSON a step left in a run folder, or None. Missing means the step did not run (or ran before it wrote
    this file); unreadable or not JSON is logged as a warning naming ``reader`` and treated as missing, so a report
    or a site is still written from the rest."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("Could not read %s for %s, which goes on without it: %s", path, reader, e)
        return None


@dataclass(frozen=True)
class RunFolder:
    """The one owner of ``<DATA_DIR>/runs/ds=<ds>/``: every step asks it where its inputs and outputs live.

    Everything a run writes is keyed by its logical date, so two dates never touch each other's files and a re-run
    of a date replaces exactly what that date wrote.
    """

    path: Path

    @classmethod
    def under(cls, data_dir: Path, ds: str) -> RunFolder:
        return cls(data_dir / "runs" / f"ds={ds}")

    @classmethod
    def every(cls, data_dir: Path) -> list[RunFolder]:
        """Every run folder under ``data_dir``, oldest first."""
        folders = [p for p in (data_dir / "runs").glob("ds=*") if p.is_dir() and _is_ds_folder(p.name)]
        return [cls(p) for p in sorted(folders)]

    def earlier(self) -> list[RunFolder]:
        """The run folders of dates before this one, newest first: where an incremental step finds its previous
        output. Only earlier dates count, so re-running a date reads what it read the first time."""
        every = RunFolder.every(self.path.parent.parent)
        return [folder for folder in reversed(every) if folder.path.name < self.path.name]

    @property
    def ds(self) -> str:
        return self.path.name.removeprefix("ds=")

    @property
    def raw(self) -> Path:
        """The sources' Parquet snapshots, one folder per source (``extract``)."""
        return self.path / "raw"

    def snapshot(self, source: str) -> Path:
        return self.raw / source

    @property
    def has_snapshot(self) -> bool:
        """Whether an extract finished here: a source's snapshot with its manifest."""
        return any(self.raw.glob("*/_manifest.json"))

    @property
    def features(self) -> Path:
        """The SQL project's ``table`` models, one folder per model (``transform``)."""
        return self.path / "features"

    def feature_table(self, model: str) -> Path:
        return self.features / model

    @property
    def transform_summary(self) -> Path:
        return self.path / "transform.json"

    @property
    def train_summary(self) -> Path:
        return self.path / "train.json"

    @property
    def decision(self) -> Path:
        return self.path / "decision.json"

    @property
    def deploy_summary(self) -> Path:
        return self.path / "deploy.json"

    @property
    def report_md(self) -> Path:
        return self.path / "report.md"

    @property
    def report_json(self) -> Path:
        return self.path / "report.json"

    @property
    def report_plot(self) -> Path:
        """The report's plot of the gate's metric, champion vs challenger, referenced from ``report.md`` by name."""
        return self.path / "report_metric.png"

    def drift_plot(self, model: str) -> Path:
        """The report's small multiples of ``model``'s feature drift (production's training rows vs this week)."""
        return self.path / f"report_drift_{model}.png"

    @property
    def docs(self) -> Path:
        """The SQL project's documentation site for this run (``retrain docs --ds``)."""
        return self.path / "docs"

    @property
    def logs(self) -> Path:
        """Spark's full log and other diagnostics of the run (the console shows the pipeline's own lines)."""
        return self.path / "logs"


# -- retention: `retrain runs prune` ------------------------------------------------------------------------------
# A run folder keeps what its week read and built (the snapshot, staging, the quarantine) until it is deleted:
# withdrawn patients' rows included, and a few hundred MiB a week at a window of millions of rows. Later weeks read
# only the newest run before them that holds what they build on (the incremental extract and models; a backtest
# reads the one it is given), so the older ones can go. Nothing deletes a run unless asked: how long to keep them
# is the operator's. Unchanged snapshot batches are hard links shared by consecutive runs, so a folder's size on
# disk is not what deleting it frees: `disk_usage` counts a file as freed only when every link to it is deleted.

#: a run folder being deleted is first renamed to this prefix: no step sees a half-deleted run as one of its own
PRUNING_PREFIX = ".pruning-"


@dataclass(frozen=True)
class PrunePlan:
    """The runs that stay and those to delete (oldest first), what an interrupted prune left renamed aside, and
    what deleting all that frees."""

    kept: Sequence[RunFolder]
    deleted: Sequence[RunFolder]
    leftovers: Sequence[Path]
    freed_bytes: int


def plan_prune(data_dir: Path, keep: int) -> PrunePlan:
    """Keep the ``keep`` newest complete runs (:func:`is_complete`: they hold what next week's incremental extract
    and models build on) and every run newer than them (failed or under way: small, and perhaps not over); delete
    the older ones. ``keep`` is at least 1."""
    if keep < 1:
        raise ConfigError(
            f"--keep must be at least 1. Got {keep} instead: the newest complete run is what next week's "
            "incremental extract and models build on (without it, next week reads the whole window again)."
        )
    runs = RunFolder.every(data_dir)
    complete = [folder for folder in runs if is_complete(folder)]
    oldest_kept = complete[-keep].path.name if len(complete) > keep else ""
    deleted = [folder for folder in runs if folder.path.name < oldest_kept]
    kept = [folder for folder in runs if folder.path.name >= oldest_kept]
    leftovers = sorted((data_dir / "runs").glob(f"{PRUNING_PREFIX}*"))
    freed = disk_usage([*(f.path for f in deleted), *leftovers])
    return PrunePlan(kept=kept, deleted=deleted, leftovers=leftovers, freed_bytes=freed)


def is_complete(folder: RunFolder) -> bool:
    """Whether a run holds what next week's incremental steps build on: a snapshot, and every model built by a
    whole transform (one whose models failed, or that read the database instead of a snapshot, does not)."""
    summary = read_step_output(folder.transform_summary, "the check of a complete run")
    models = summary.get("models") if isinstance(summary, dict) else None
    built = bool(models) and all(isinstance(m, dict) and m.get("status") == "success" for m in models)
    return built and folder.has_snapshot


def prune(plan: PrunePlan) -> None:
    """Delete what an interrupted prune left renamed aside, then the plan's runs, each renamed aside first (so a
    step listing runs never sees it half gone) and then removed."""
    for aside in plan.leftovers:
        log.info("Finishing the deletion an interrupted prune began: %s.", aside)
        _remove(aside)
    for folder in plan.deleted:
        log.info("Deleting the run of %s (%s).", folder.ds, folder.path)
        aside = folder.path.with_name(f"{PRUNING_PREFIX}{folder.path.name}")
        try:
            folder.path.rename(aside)
        except FileNotFoundError:
            continue  # another prune took it first
        _remove(aside)


def _remove(path: Path) -> None:
    """Remove a folder, as much of it as is still there: another prune may be removing it too."""
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        shutil.rmtree(path)  # what stopped the first pass was not the other prune: raised this time


def disk_usage(folders: Iterable[Path]) -> int:
    """The bytes that deleting ``folders`` together frees: each file counted once, and only when no link to it
    is left outside them."""
    links: dict[tuple[int, int], int] = {}
    sizes: dict[tuple[int, int], tuple[int, int]] = {}
    for folder in folders:
        for root, _, files in os.walk(folder):
            for name in files:
                try:
                    stat = os.lstat(os.path.join(root, name))
                except FileNotFoundError:  # a step's temporary file, gone while it was counted
                    continue
                inode = (stat.st_dev, stat.st_ino)
                links[inode] = links.get(inode, 0) + 1
                sizes[inode] = (stat.st_blocks * 512, stat.st_nlink)
    return sum(size for inode, (size, nlink) in sizes.items() if links[inode] >= nlink)


def human_bytes(count: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def steps_done(folder: RunFolder) -> list[str]:
    """The steps whose output the run folder holds, in the DAG's order."""
    done = {
        "extract": folder.has_snapshot,
        "transform": folder.transform_summary.is_file(),
        "train": folder.train_summary.is_file(),
        "validate": folder.decision.is_file(),
        "deploy": folder.deploy_summary.is_file(),
        "notify": folder.report_json.is_file(),
    }
    return [step for step, finished in done.items() if finished]
