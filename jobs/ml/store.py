"""The model store: immutable versions per model, a production pointer replaced atomically, and its history.

```
<store>/<model>/<version>/model.joblib | metrics.json | metadata.json   (immutable once written)
<store>/<model>/production.json                                          the version in production
<store>/<model>/history.jsonl                                            every promotion, restore and rollback
```

A version (``<ds>-<8 hex>``) is written into a hidden staging folder and renamed into place, so a reader never sees
half of one; its files are then made read-only. ``metadata.json`` records the sha256 of ``model.joblib``, and
:meth:`ModelStore.load` refuses an artifact that no longer matches it. An artifact is read once (:class:`Artifact`):
the bytes hashed are the bytes unpickled, so the hash checked is the hash of the estimator in memory. ``joblib``
files are pickles: the model store must be as trusted as the code. Pointer changes write ``production.json``
through a temporary file and ``os.replace``, then append one line to ``history.jsonl``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import stat
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.errors import ModelStoreError

ARTIFACT = "model.joblib"
METRICS = "metrics.json"
METADATA = "metadata.json"
PRODUCTION = "production.json"
HISTORY = "history.jsonl"
STAGING = ".staging"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json_atomic(path: Path, payload: Any) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True)
class Artifact:
    """A version's ``model.joblib`` read into memory once, with the sha256 of those bytes."""

    path: Path
    sha256: str
    data: bytes = field(repr=False)

    @classmethod
    def read(cls, path: Path) -> Artifact:
        data = path.read_bytes()
        return cls(path, hashlib.sha256(data).hexdigest(), data)

    def unpickle(self) -> Any:
        """The estimator, from the bytes that were hashed (not from the file again)."""
        import joblib

        return joblib.load(io.BytesIO(self.data))


@dataclass(frozen=True)
class Pointer:
    """What ``production.json`` holds: which version of a model serves, since when and why."""

    model: str
    version: str
    artifact_sha256: str
    promoted_at: str
    reason: str
    actor: str = "unknown"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pointer:
        return cls(
            model=data["model"],
            version=data["version"],
            artifact_sha256=data["artifact_sha256"],
            promoted_at=data["promoted_at"],
            reason=data.get("reason", ""),
            actor=data.get("actor", "unknown"),
        )


class ModelStore:
    """Versions and production pointers of every model under ``root`` (``settings.model_store``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # -- reading ------------------------------------------------------------------------------------------------

    def models(self) -> list[str]:
        """Models with at least one version or a production pointer."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (self.versions(p.name) or (p / PRODUCTION).exists())
        )

    def versions(self, model: str) -> list[str]:
        """Complete versions of ``model``, oldest first (versions sort by their date, then their random suffix)."""
        folder = self.root / model
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / METADATA).exists())

    def path(self, model: str, version: str) -> Path:
        folder = self.root / model / version
        if not (folder / METADATA).exists():
            known = ", ".join(self.versions(model)) or "none"
            raise ModelStoreError(
                f"There is no version {version!r} of model {model!r} in the model store {self.root}. "
                f"Versions: {known}. `retrain models list` shows every model and version."
            )
        return folder

    def metadata(self, model: str, version: str) -> dict[str, Any]:
        return json.loads((self.path(model, version) / METADATA).read_text(encoding="utf-8"))

    def metrics(self, model: str, version: str) -> dict[str, Any]:
        return json.loads((self.path(model, version) / METRICS).read_text(encoding="utf-8"))

    def artifact_sha256(self, model: str, version: str) -> str:
        return self.metadata(model, version)["artifact_sha256"]

    def artifact(self, model: str, version: str) -> Artifact:
        """The version's artifact, read and hashed; :meth:`load` checks the hash against the metadata's."""
        return Artifact.read(self.path(model, version) / ARTIFACT)

    def load(self, model: str, version: str) -> Any:
        """The fitted estimator, after checking that its file still matches the recorded sha256."""
        artifact = self.artifact(model, version)
        expected = self.artifact_sha256(model, version)
        if artifact.sha256 != expected:
            raise ModelStoreError(
                f"The artifact of {model} {version} ({artifact.path}) has sha256 {artifact.sha256}, but its metadata "
                f"records {expected}: the file was changed after it was written. Retrain the model, or promote "
                "another version."
            )
        return artifact.unpickle()

    def production(self, model: str) -> Pointer | None:
        path = self.root / model / PRODUCTION
        if not path.exists():
            return None
        return Pointer.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def history(self, model: str) -> list[dict[str, Any]]:
        path = self.root / model / HISTORY
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    # -- writing ------------------------------------------------------------------------------------------------

    @staticmethod
    def new_version(ds: str) -> str:
        return f"{ds}-{secrets.token_hex(4)}"

    def write(
        self, model: str, ds: str, estimator: Any, metrics: dict[str, Any], metadata: dict[str, Any]
    ) -> tuple[str, str]:
        """Write a new immutable version; returns ``(version, artifact_sha256)``."""
        import joblib

        version = self.new_version(ds)
        target = self.root / model / version
        staging = self.root / model / STAGING / version
        staging.mkdir(parents=True, exist_ok=False)
        try:
            joblib.dump(estimator, staging / ARTIFACT)
            digest = sha256_file(staging / ARTIFACT)
            full = {"model": model, "version": version, "artifact_sha256": digest, **metadata}
            (staging / METRICS).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            (staging / METADATA).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            for file in staging.iterdir():
                file.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return version, digest

    def promote(self, model: str, version: str, *, reason: str, actor: str = "unknown") -> Pointer:
        """Make ``version`` the production version of ``model`` (atomic replace) and record it in the history."""
        digest = self.artifact_sha256(model, version)  # raises for an unknown version
        previous = self.production(model)
        pointer = Pointer(model, version, digest, _now(), reason, actor)
        self._set(model, pointer)
        self._append(model, "promote", pointer, previous, reason, actor)
        return pointer

    def restore(self, model: str, pointer: Pointer | None, *, reason: str, actor: str = "deploy") -> None:
        """Put back ``pointer`` (the one read before a failed deployment); None removes the production pointer."""
        previous = self.production(model)
        if pointer is None:
            (self.root / model / PRODUCTION).unlink(missing_ok=True)
        else:
            self.path(model, pointer.version)
            self._set(model, pointer)
        self._append(model, "restore", pointer, previous, reason, actor)

    def rollback(self, model: str, *, reason: str, actor: str = "unknown") -> Pointer:
        """Back to the version that was in production before the current one."""
        stack = self._production_stack(model)
        if len(stack) < 2:
            current = stack[-1] if stack else "none"
            raise ModelStoreError(
                f"Model {model!r} has no earlier production version to roll back to (current: {current}). "
                f"Promote a version instead: `retrain models promote {model} VERSION`."
            )
        target = stack[-2]
        previous = self.production(model)
        pointer = Pointer(model, target, self.artifact_sha256(model, target), _now(), reason, actor)
        self._set(model, pointer)
        self._append(model, "rollback", pointer, previous, reason, actor)
        return pointer

    # -- internals ----------------------------------------------------------------------------------------------

    def _set(self, model: str, pointer: Pointer) -> None:
        (self.root / model).mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.root / model / PRODUCTION, pointer.to_dict())

    def _append(
        self, model: str, action: str, pointer: Pointer | None, previous: Pointer | None, reason: str, actor: str
    ) -> None:
        entry = {
            "action": action,
            "at": _now(),
            "version": pointer.version if pointer else None,
            "previous": previous.version if previous else None,
            "reason": reason,
            "actor": actor,
        }
        with (self.root / model / HISTORY).open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _production_stack(self, model: str) -> list[str]:
        """Production versions, most recent last: a promotion pushes, a rollback pops, a restore undoes."""
        stack: list[str] = []
        for entry in self.history(model):
            version = entry.get("version")
            if entry["action"] == "promote":
                stack.append(version)
            elif entry["action"] == "rollback":
                if stack:
                    stack.pop()
                if not stack or stack[-1] != version:
                    stack.append(version)
            elif entry["action"] == "restore":
                if stack:
                    stack.pop()
                if version is not None and (not stack or stack[-1] != version):
                    stack.append(version)
        return stack
