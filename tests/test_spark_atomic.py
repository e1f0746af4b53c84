"""Atomic directory replacement: readers see the old output or the new one, never a mix or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.spark.atomic import atomic_directory, read_manifest, write_manifest


def test_success_replaces_the_previous_output(tmp_path: Path) -> None:
    target = tmp_path / "raw" / "predictions"
    for version in ("old", "new"):
        with atomic_directory(target) as staging:
            staging.mkdir()
            (staging / "part-0").write_text(version)
    assert (target / "part-0").read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["predictions"]


def test_failure_keeps_the_previous_output_and_leaves_no_trace(tmp_path: Path) -> None:
    target = tmp_path / "predictions"
    with atomic_directory(target) as staging:
        staging.mkdir()
        (staging / "part-0").write_text("good")
    with pytest.raises(RuntimeError, match="read failed"), atomic_directory(target) as staging:
        staging.mkdir()
        (staging / "part-0").write_text("half")
        raise RuntimeError("read failed")
    assert (target / "part-0").read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["predictions"]


def test_manifest_is_written_inside_the_output(tmp_path: Path) -> None:
    with atomic_directory(tmp_path / "out") as staging:
        staging.mkdir()
        write_manifest(staging, {"rows": 3})
    assert read_manifest(tmp_path / "out") == {"rows": 3}
