"""``retrain runs``: the old run folders deleted, the newest kept, and the disk freed counted link by link."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from jobs import cli
from jobs.errors import ConfigError
from jobs.run_context import PRUNING_PREFIX, RunFolder, plan_prune, prune

BATCH = 64 * 1024  # a snapshot batch: shared by hard links between consecutive runs


def make_run(data_dir: Path, ds: str, *, shared_with: RunFolder | None = None) -> RunFolder:
    """A run folder with a snapshot batch (linked to ``shared_with``'s when given), a table and a report."""
    folder = RunFolder.under(data_dir, ds)
    batch = folder.snapshot("predictions") / "batch=1.parquet"
    batch.parent.mkdir(parents=True)
    if shared_with is None:
        batch.write_bytes(os.urandom(BATCH))
    else:
        os.link(shared_with.snapshot("predictions") / "batch=1.parquet", batch)
    (folder.snapshot("predictions") / "_manifest.json").write_text("{}")
    (folder.feature_table("stg_predictions")).mkdir(parents=True)
    (folder.feature_table("stg_predictions") / "part-0.parquet").write_bytes(os.urandom(BATCH))
    built(folder, "success")
    return folder


def built(folder: RunFolder, status: str) -> None:
    """The run's transform.json, its one model with ``status``."""
    folder.transform_summary.write_text(json.dumps({"models": [{"name": "stg_predictions", "status": status}]}))


@pytest.fixture
def runs(tmp_path: Path) -> list[RunFolder]:
    first = make_run(tmp_path, "2026-11-08")
    second = make_run(tmp_path, "2026-11-15", shared_with=first)
    third = make_run(tmp_path, "2026-11-22", shared_with=second)
    return [first, second, third]


def test_prune_keeps_the_newest_and_frees_only_what_no_kept_run_links(tmp_path: Path, runs) -> None:
    plan = plan_prune(tmp_path, keep=1)
    assert [f.ds for f in plan.deleted] == ["2026-11-08", "2026-11-15"]
    assert [f.ds for f in plan.kept] == ["2026-11-22"]
    # Two tables freed; the batch all three share stays, linked from the kept run.
    assert 2 * BATCH <= plan.freed_bytes < 3 * BATCH
    prune(plan)
    assert [f.ds for f in RunFolder.every(tmp_path)] == ["2026-11-22"]
    assert (runs[2].snapshot("predictions") / "batch=1.parquet").stat().st_size == BATCH
    assert runs[2].earlier() == []  # next week's incremental steps build on the newest run, still there


def test_a_run_deleted_with_every_link_frees_the_shared_batch(tmp_path: Path, runs) -> None:
    assert plan_prune(tmp_path, keep=3).deleted == []
    everything = plan_prune(tmp_path, keep=1).freed_bytes
    prune(plan_prune(tmp_path, keep=2))
    assert plan_prune(tmp_path, keep=1).freed_bytes < everything


def test_keep_must_leave_the_newest_run(tmp_path: Path, runs) -> None:
    with pytest.raises(ConfigError, match="--keep must be at least 1. Got 0 instead: the newest complete run is"):
        plan_prune(tmp_path, keep=0)
    assert len(RunFolder.every(tmp_path)) == 3


def test_only_complete_runs_count_and_newer_ones_stay(tmp_path: Path, runs) -> None:
    """A week whose extract failed (a folder with logs only) or that is under way is not what next week builds on:
    it does not count toward --keep, and it is not deleted either."""
    failed = RunFolder.under(tmp_path, "2026-11-29")
    failed.logs.mkdir(parents=True)
    plan = plan_prune(tmp_path, keep=1)
    assert [f.ds for f in plan.kept] == ["2026-11-22", "2026-11-29"]
    assert [f.ds for f in plan.deleted] == ["2026-11-08", "2026-11-15"]
    # Older failed runs are deleted with the complete ones around them.
    runs[1].transform_summary.unlink()
    assert [f.ds for f in plan_prune(tmp_path, keep=1).deleted] == ["2026-11-08", "2026-11-15"]
    assert plan_prune(tmp_path, keep=2).deleted == []  # two complete runs only: both stay


def test_a_transform_that_failed_or_read_the_database_is_not_a_complete_run(tmp_path: Path, runs) -> None:
    """Next week's incremental models could not build on a model that failed, nor its extract on a run that read
    the database instead of a snapshot: neither run counts, so the complete one before them stays."""
    built(runs[2], "error")
    assert [f.ds for f in plan_prune(tmp_path, keep=1).kept] == ["2026-11-15", "2026-11-22"]
    built(runs[2], "success")
    shutil.rmtree(runs[2].raw)
    assert [f.ds for f in plan_prune(tmp_path, keep=1).kept] == ["2026-11-15", "2026-11-22"]


def test_what_an_interrupted_prune_renamed_aside_is_removed_and_never_seen_as_a_run(tmp_path: Path, runs) -> None:
    aside = tmp_path / "runs" / f"{PRUNING_PREFIX}ds=2026-11-01"
    (aside / "raw").mkdir(parents=True)
    (aside / "raw" / "part-0.parquet").write_bytes(os.urandom(BATCH))
    assert [f.ds for f in runs[0].earlier()] == []  # not a run: no incremental step builds on it
    plan = plan_prune(tmp_path, keep=3)
    assert plan.deleted == [] and plan.leftovers == [aside] and plan.freed_bytes >= BATCH
    prune(plan)
    assert not aside.exists()


def test_the_commands_list_the_runs_and_a_dry_run_deletes_nothing(tmp_path: Path, runs, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert cli.main(["runs", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == ["2026-11-08", "2026-11-15", "2026-11-22"]
    assert all(line.endswith("transform") and "KiB" in line for line in listed)
    assert cli.main(["runs", "prune", "--keep", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Would delete the run of 2026-11-08" in out
    assert "1 run(s) would be deleted, freeing " in out and "kept: 2026-11-15, 2026-11-22." in out
    assert len(RunFolder.every(tmp_path)) == 3
    assert cli.main(["runs", "prune", "--keep", "2"]) == 0
    assert "1 run(s) deleted, " in capsys.readouterr().out
    assert [f.ds for f in RunFolder.every(tmp_path)] == ["2026-11-15", "2026-11-22"]


def test_without_runs_the_commands_say_so(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert cli.main(["runs", "prune", "--keep", "1"]) == 0
    assert capsys.readouterr().out == f"No runs under {tmp_path / 'runs'}.\n"
    assert not (tmp_path / "runs").exists()
