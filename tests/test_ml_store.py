"""The model store: immutable versions, atomic pointer changes with history, rollback, integrity on load."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier

from jobs.errors import ModelStoreError
from jobs.ml.store import ModelStore, sha256_file


def fitted() -> DummyClassifier:
    return DummyClassifier(strategy="most_frequent").fit([[0], [1], [2]], [0, 1, 1])


def write(store: ModelStore, ds: str = "2026-11-22") -> str:
    version, _ = store.write("diabetes", ds, fitted(), {"accuracy": 0.5}, {"features": ["age"], "label": "label"})
    return version


def test_a_version_holds_three_files_read_only_with_the_artifact_hash(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    version = write(store)
    folder = store.path("diabetes", version)
    assert sorted(p.name for p in folder.iterdir()) == ["metadata.json", "metrics.json", "model.joblib"]
    assert version.startswith("2026-11-22-") and len(version.split("-")[-1]) == 8
    meta = store.metadata("diabetes", version)
    assert meta["artifact_sha256"] == sha256_file(folder / "model.joblib") == store.artifact_sha256("diabetes", version)
    assert meta["features"] == ["age"] and meta["version"] == version
    assert all(not os.access(p, os.W_OK) or os.geteuid() == 0 for p in folder.iterdir())
    assert all((p.stat().st_mode & 0o222) == 0 for p in folder.iterdir())
    assert store.models() == ["diabetes"] and store.versions("diabetes") == [version]
    assert not (tmp_path / "diabetes" / ".staging").exists() or not any((tmp_path / "diabetes" / ".staging").iterdir())
    assert store.load("diabetes", version).predict([[5]]).tolist() == [1]


def test_load_refuses_an_artifact_changed_after_writing(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    version = write(store)
    artifact = store.path("diabetes", version) / "model.joblib"
    artifact.chmod(0o644)
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(ModelStoreError, match="was changed after it was written"):
        store.load("diabetes", version)


def test_unknown_version_lists_the_known_ones(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    version = write(store)
    with pytest.raises(ModelStoreError, match=f"no version 'nope'.*Versions: {version}"):
        store.promote("diabetes", "nope", reason="test")


def test_promote_rollback_restore_and_history(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    a, b, c = (write(store, ds) for ds in ("2026-11-01", "2026-11-08", "2026-11-15"))
    assert store.production("diabetes") is None
    store.promote("diabetes", a, reason="first", actor="test")
    store.promote("diabetes", b, reason="better", actor="test")
    pointer = store.promote("diabetes", c, reason="better again", actor="test")
    on_disk = json.loads((tmp_path / "diabetes" / "production.json").read_text())
    assert on_disk == pointer.to_dict() and on_disk["artifact_sha256"] == store.artifact_sha256("diabetes", c)
    assert store.rollback("diabetes", reason="bad").version == b
    assert store.rollback("diabetes", reason="bad too").version == a
    with pytest.raises(ModelStoreError, match="no earlier production version"):
        store.rollback("diabetes", reason="again")
    # deploy's undo: promote, then restore what was there before
    before = store.production("diabetes")
    store.promote("diabetes", c, reason="deploy", actor="deploy")
    store.restore("diabetes", before, reason="reload failed")
    assert store.production("diabetes") == before
    history = store.history("diabetes")
    assert [h["action"] for h in history] == ["promote"] * 3 + ["rollback"] * 2 + ["promote", "restore"]
    assert history[3]["previous"] == c and history[3]["version"] == b
    store.restore("diabetes", None, reason="first deployment failed")
    assert store.production("diabetes") is None
