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
    with pytest.raises(ModelStoreError, match=f"no version '2026-01-04-0badf00d'.*Versions: {version}"):
        store.promote("diabetes", "2026-01-04-0badf00d", reason="test")


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


# -- concurrent and interrupted pointer changes -------------------------------------------------------------------

RACER = """
import json, random, sys
from jobs.errors import ModelStoreError
from jobs.ml.store import ModelStore

root, versions, seed, ops = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
store = ModelStore(root)
for i in range(ops):
    if rng.random() < 0.3:
        try:
            change = store.rollback("diabetes", reason=f"racer {seed} op {i}", actor=f"racer-{seed}")
        except ModelStoreError as e:
            print(json.dumps({"op": "rollback", "refused": str(e)[:60]}))
        else:
            print(json.dumps({"op": "rollback", "from": getattr(change, "previous", None), "to": change.version}))
    else:
        version = rng.choice(versions)
        store.promote("diabetes", version, reason=f"racer {seed} op {i}", actor=f"racer-{seed}")
        print(json.dumps({"op": "promote", "to": version}))
"""


def check_consistent(store: ModelStore) -> list[dict]:
    """The history is one chain (each line's ``previous`` is what the line before installed) ending at the pointer."""
    history = store.history("diabetes")
    broken = [i for i in range(1, len(history)) if history[i]["previous"] != history[i - 1]["version"]]
    assert broken == [], f"{len(broken)} of {len(history)} history lines do not follow the line before them"
    pointer = store.production("diabetes")
    assert (pointer.version if pointer else None) == history[-1]["version"]
    assert store._production_stack("diabetes")[-1] == pointer.version
    no_op_rollbacks = [h for h in history if h["action"] == "rollback" and h["version"] == h["previous"]]
    assert no_op_rollbacks == [], f"{len(no_op_rollbacks)} rollbacks changed nothing"
    assert not (store.root / "diabetes" / ".production.pending").exists()
    return history


def test_concurrent_promotes_and_rollbacks_keep_the_history_and_the_pointer_together(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    store = ModelStore(tmp_path)
    versions = [write(store, f"2026-11-{day:02d}") for day in (1, 8, 15, 22)]
    store.promote("diabetes", versions[0], reason="first", actor="test")
    racers, ops = 8, 40
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path), json.dumps(versions), str(seed), str(ops)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(racers)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results += [json.loads(line) for line in out.splitlines()]
    assert len(results) == racers * ops
    history = check_consistent(store)
    assert len(history) == 1 + sum(1 for r in results if "to" in r)  # every change reported is in the history
    rollbacks = [r for r in results if r["op"] == "rollback" and "to" in r]
    assert rollbacks and all(r["from"] != r["to"] for r in rollbacks)  # what each rollback said it did, it did
    in_history = [(h["previous"], h["version"]) for h in history if h["action"] == "rollback"]
    assert sorted(in_history) == sorted((r["from"], r["to"]) for r in rollbacks)


def test_rollback_changes_something_or_refuses(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    a, b = write(store, "2026-11-01"), write(store, "2026-11-08")
    with pytest.raises(ModelStoreError, match="no production version, so there is nothing to roll back"):
        store.rollback("diabetes", reason="none yet")
    store.promote("diabetes", a, reason="first")
    store.promote("diabetes", a, reason="the same again")  # production did not change: nothing to go back to
    with pytest.raises(ModelStoreError, match=f"no earlier production version.*current: {a}.*Nothing was changed"):
        store.rollback("diabetes", reason="back")
    store.promote("diabetes", b, reason="second")
    store.promote("diabetes", b, reason="second again")
    change = store.rollback("diabetes", reason="back")
    assert (change.previous, change.version, store.production("diabetes").version) == (b, a, a)
    check_consistent(store)


def test_rollback_refuses_when_the_pointer_was_changed_behind_the_historys_back(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    a, b, c = (write(store, ds) for ds in ("2026-11-01", "2026-11-08", "2026-11-15"))
    store.promote("diabetes", a, reason="first")
    store.promote("diabetes", b, reason="second")
    by_hand = store.production("diabetes").to_dict() | {
        "version": c,
        "artifact_sha256": store.artifact_sha256("diabetes", c),
    }
    (tmp_path / "diabetes" / "production.json").write_text(json.dumps(by_hand))
    before = (tmp_path / "diabetes" / "history.jsonl").read_bytes()
    with pytest.raises(ModelStoreError, match=f"says {b} is in production, but .* names {c}.*Nothing was changed"):
        store.rollback("diabetes", reason="back")
    assert store.production("diabetes").version == c
    assert (tmp_path / "diabetes" / "history.jsonl").read_bytes() == before


def test_a_pointer_that_cannot_be_replaced_leaves_the_history_as_it_was(tmp_path: Path, monkeypatch) -> None:
    store = ModelStore(tmp_path)
    a, b = write(store, "2026-11-01"), write(store, "2026-11-08")
    store.promote("diabetes", a, reason="first")
    history = tmp_path / "diabetes" / "history.jsonl"
    before = history.read_bytes()
    real_replace = os.replace

    def failing_replace(src, dst):
        if Path(dst).name == "production.json":
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr("jobs.ml.store.os.replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        store.promote("diabetes", b, reason="second")
    assert history.read_bytes() == before and store.production("diabetes").version == a
    monkeypatch.undo()
    check_consistent(store)


KILLED_MIDWAY = """
import os, sys
import jobs.ml.store as store_module

real_replace = os.replace
def die_before_the_pointer(src, dst):
    if os.path.basename(dst) == "production.json":
        os._exit(9)  # killed after the history line was written, before the pointer moved
    return real_replace(src, dst)
store_module.os.replace = die_before_the_pointer
store_module.ModelStore(sys.argv[1]).promote("diabetes", sys.argv[2], reason="killed", actor="victim")
"""


def test_a_change_killed_half_way_is_finished_by_the_next_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    store = ModelStore(tmp_path)
    a, b, c = (write(store, ds) for ds in ("2026-11-01", "2026-11-08", "2026-11-15"))
    store.promote("diabetes", a, reason="first")
    killed = subprocess.run([sys.executable, "-c", KILLED_MIDWAY, str(tmp_path), b], cwd=REPO_ROOT)
    assert killed.returncode == 9
    assert store.history("diabetes")[-1]["version"] == b and store.production("diabetes").version == a
    store.promote("diabetes", c, reason="third")  # finishes the killed change first, under the lock
    history = check_consistent(store)
    assert [h["version"] for h in history] == [a, b, c]
    assert store.rollback("diabetes", reason="back").version == b


def test_a_history_line_cut_short_is_dropped_with_its_pending_change(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    a, b = write(store, "2026-11-01"), write(store, "2026-11-08")
    store.promote("diabetes", a, reason="first")
    folder = tmp_path / "diabetes"
    (folder / ".production.pending").write_text(json.dumps({"entry": {"version": b}, "pointer": None}))
    with (folder / "history.jsonl").open("a") as f:
        f.write('{"action": "promote", "version": "2026-11-08-')  # the process died in the middle of the line
    assert [h["version"] for h in store.history("diabetes")] == [a]  # readers skip the cut line
    store.promote("diabetes", b, reason="second")
    assert [h["version"] for h in check_consistent(store)] == [a, b]
