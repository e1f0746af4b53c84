"""The model store: immutable versions per model, a production pointer replaced atomically, and its history.

```
<store>/<model>/<version>/model.joblib | metrics.json | metadata.json   (immutable once written)
<store>/<model>/production.json                                          the version in production
<store>/<model>/history.jsonl                                            every promotion, restore and rollback
<store>/<model>/.lock                                                    taken (flock) by every pointer change
```

A version (``<ds>-<8 hex>``) is written into a hidden staging folder and renamed into place, so a reader never sees
half of one; its files are then made read-only. ``metadata.json`` records the sha256 of ``model.joblib``, and
:meth:`ModelStore.load` refuses an artifact that no longer matches it. An artifact is read once (:class:`Artifact`):
the bytes hashed are the bytes unpickled, so the hash checked is the hash of the estimator in memory. ``joblib``
files are pickles: the model store must be as trusted as the code.

Every name is checked by :mod:`jobs.ml.names` before a path is built from it, and every path is checked to resolve
inside the store (a symbolic link cannot lead out of it).

A pointer change (promote, restore, rollback) holds the model's lock (``fcntl.flock`` on ``.lock``) from reading
the current pointer to writing the new one, so concurrent changes are serialised and each history line's
``previous`` is the version the line before it installed. Under the lock the change is written ahead to
``.production.pending``, then its line is appended to ``history.jsonl``, then ``production.json`` is replaced: if
the replace fails, the history is cut back to its former length, so the pointer and the history change together or
not at all. A process killed half-way leaves the pending file, and the next change finishes it (its history line
was written) or drops it (it was not).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.errors import ModelStoreError, StoreLockTimeoutError
from jobs.ml.names import check_model_name, check_version_name, is_model_name, is_version_name

log = logging.getLogger(__name__)

ARTIFACT = "model.joblib"
METRICS = "metrics.json"
METADATA = "metadata.json"
PRODUCTION = "production.json"
HISTORY = "history.jsonl"
STAGING = ".staging"
LOCK = ".lock"
PENDING = ".production.pending"
LOCK_TIMEOUT_SECONDS = 60.0
_UNSET: Any = object()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json_atomic(path: Path, payload: Any) -> None:
    """Write ``path`` whole: a temporary file, flushed to disk, renamed over it (the rename is the only change)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            f.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable (the directory entry is what changed)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


@dataclass(frozen=True)
class Change:
    """What a pointer change really did: the version in production before it and after it (None: no pointer)."""

    model: str
    action: str
    version: str | None
    previous: str | None
    pointer: Pointer | None


class ModelStore:
    """Versions and production pointers of every model under ``root`` (``settings.model_store``)."""

    def __init__(self, root: Path, *, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        self.root = Path(root)
        self.lock_timeout = lock_timeout

    # -- paths --------------------------------------------------------------------------------------------------

    def _inside(self, path: Path) -> Path:
        """``path`` when it resolves inside the store; a symbolic link leading elsewhere is refused."""
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root):
            raise ModelStoreError(
                f"{path} resolves to {path.resolve()}, outside the model store {root}; a model or version folder "
                "must not be a link to elsewhere. Move it into the store or remove the link."
            )
        return path

    def model_folder(self, model: str) -> Path:
        """``<store>/<model>``, after checking the name and that the folder stays inside the store."""
        return self._inside(self.root / check_model_name(model))

    # -- reading ------------------------------------------------------------------------------------------------

    def models(self) -> list[str]:
        """Models with at least one version or a production pointer (folders with other names are ignored)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if is_model_name(p.name) and p.is_dir() and (self.versions(p.name) or (p / PRODUCTION).exists())
        )

    def versions(self, model: str) -> list[str]:
        """Complete versions of ``model``, oldest first (versions sort by their date, then their random suffix)."""
        folder = self.model_folder(model)
        if not folder.is_dir():
            return []
        return sorted(
            p.name for p in folder.iterdir() if is_version_name(p.name) and p.is_dir() and (p / METADATA).exists()
        )

    def path(self, model: str, version: str) -> Path:
        folder = self._inside(self.model_folder(model) / check_version_name(version, model=model))
        if not (folder / METADATA).exists():
            known = ", ".join(self.versions(model)) or "none"
            raise ModelStoreError(
                f"There is no version {version!r} of model {model!r} in the model store {self.root}. "
                f"Versions: {known}. `retrain models list` shows every model and version."
            )
        return folder

    def metadata(self, model: str, version: str) -> dict[str, Any]:
        return json.loads(self._inside(self.path(model, version) / METADATA).read_text(encoding="utf-8"))

    def metrics(self, model: str, version: str) -> dict[str, Any]:
        return json.loads(self._inside(self.path(model, version) / METRICS).read_text(encoding="utf-8"))

    def artifact_sha256(self, model: str, version: str) -> str:
        return self.metadata(model, version)["artifact_sha256"]

    def artifact(self, model: str, version: str) -> Artifact:
        """The version's artifact, read and hashed; :meth:`load` checks the hash against the metadata's."""
        return Artifact.read(self._inside(self.path(model, version) / ARTIFACT))

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
        """The production pointer; one that names another model or no valid version is refused, never followed."""
        path = self.model_folder(model) / PRODUCTION
        if not path.exists():
            return None
        fix = f"Point production at a valid version: `retrain models promote {model} VERSION --reason ...`."
        try:
            pointer = Pointer.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelStoreError(f"{path} is not a production pointer ({type(e).__name__}). {fix}") from None
        if pointer.model != model:
            raise ModelStoreError(f"{path} names model {pointer.model!r}, not {model!r}. {fix}")
        check_version_name(pointer.version, model=model, where=str(path))
        return pointer

    def history(self, model: str) -> list[dict[str, Any]]:
        """Every change, oldest first; a last line without its newline (a write cut short) is not one."""
        path = self.model_folder(model) / HISTORY
        if not path.exists():
            return []
        text = path.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    # -- writing ------------------------------------------------------------------------------------------------

    @staticmethod
    def new_version(ds: str) -> str:
        return f"{ds}-{secrets.token_hex(4)}"

    def write(
        self, model: str, ds: str, estimator: Any, metrics: dict[str, Any], metadata: dict[str, Any]
    ) -> tuple[str, str]:
        """Write a new immutable version; returns ``(version, artifact_sha256)``."""
        import joblib

        version = check_version_name(self.new_version(ds), model=model, where=f"The run date {ds!r}")
        folder = self.model_folder(model)
        target = folder / version
        staging = folder / STAGING / version
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
        """Make ``version`` the production version of ``model`` and record it in the history (under the lock)."""
        check_model_name(model)
        check_version_name(version, model=model)
        with self._locked(model) as folder:
            digest = self.artifact_sha256(model, version)  # raises for an unknown version
            try:
                previous = self.production(model)
            except ModelStoreError as e:  # promoting is how a broken pointer is mended: record it as none
                log.warning("Replacing the production pointer of %s, which could not be read: %s", model, e)
                previous = None
            pointer = Pointer(model, version, digest, _now(), reason, actor)
            self._commit(folder, "promote", pointer, previous, reason, actor)
        return pointer

    def restore(
        self,
        model: str,
        pointer: Pointer | None,
        *,
        reason: str,
        actor: str = "deploy",
        replacing: Pointer | None = _UNSET,
    ) -> Change:
        """Put back ``pointer`` (the one read before a failed deployment); None removes the production pointer.

        With ``replacing``, the pointer is put back only while production is still ``replacing`` (the one the
        caller installed): a change someone else made in the meantime is kept, and the error says so.
        """
        with self._locked(model) as folder:
            current = self.production(model)
            if replacing is not _UNSET and current != replacing:
                now = f"{current.version} (set by {current.actor} at {current.promoted_at})" if current else "none"
                meant = replacing.version if replacing else "none"
                raise ModelStoreError(
                    f"The production pointer of {model} changed after {meant} was installed: it now names {now}. "
                    f"It was left as it is rather than put back to {pointer.version if pointer else 'none'}. "
                    f"`retrain models show {model}` and `retrain models promote` set it explicitly."
                )
            if pointer is not None:
                self.path(model, pointer.version)  # checks the name; raises for a version that is gone
            self._commit(folder, "restore", pointer, current, reason, actor)
        return Change(model, "restore", pointer.version if pointer else None, _version(current), pointer)

    def rollback(self, model: str, *, reason: str, actor: str = "unknown") -> Change:
        """Back to the version that was in production before the current one; refuses when there is none.

        The history decides which version that is, so it must agree with ``production.json``: when it does not
        (the pointer was changed by hand), nothing is changed and the error names both.
        """
        with self._locked(model) as folder:
            current = self.production(model)
            stack = self._production_stack(model)
            fix = f"Promote the version you want instead: `retrain models promote {model} VERSION --reason ...`."
            if current is None:
                raise ModelStoreError(f"Model {model!r} has no production version, so there is nothing to roll back.")
            if not stack or stack[-1] != current.version:
                said = stack[-1] if stack else "nothing"
                raise ModelStoreError(
                    f"The history of {model} ({folder / HISTORY}) says {said} is in production, but "
                    f"{folder / PRODUCTION} names {current.version}: the pointer was changed outside `retrain models` "
                    f"and `retrain deploy`, so the history cannot say what came before. Nothing was changed. {fix}"
                )
            if len(stack) < 2:
                raise ModelStoreError(
                    f"Model {model!r} has no earlier production version to roll back to (current: {current.version}, "
                    f"the only version its history has had in production). Nothing was changed. {fix}"
                )
            target = stack[-2]  # differs from the current one: the stack holds no version twice in a row
            pointer = Pointer(model, target, self.artifact_sha256(model, target), _now(), reason, actor)
            self._commit(folder, "rollback", pointer, current, reason, actor)
        return Change(model, "rollback", target, current.version, pointer)

    # -- internals ----------------------------------------------------------------------------------------------

    @contextmanager
    def _locked(self, model: str) -> Iterator[Path]:
        """Hold ``<store>/<model>/.lock`` (an exclusive flock, released when the file is closed or the process dies)."""
        folder = self.model_folder(model)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreLockTimeoutError(
                            f"Another process has held the lock of model {model!r} ({folder / LOCK}) for over "
                            f"{self.lock_timeout:g}s; a pointer change takes milliseconds. Find it with "
                            f"`fuser {folder / LOCK}` and let it finish (or stop it), then try again."
                        ) from None
                    time.sleep(0.002)
            self._recover(folder)
            yield folder
        finally:
            os.close(fd)

    def _commit(
        self, folder: Path, action: str, pointer: Pointer | None, previous: Pointer | None, reason: str, actor: str
    ) -> None:
        """Append the history line and install ``pointer`` (None: remove it), both or neither; the lock is held."""
        entry = {
            "action": action,
            "at": _now(),
            "version": _version(pointer),
            "previous": _version(previous),
            "reason": reason,
            "actor": actor,
        }
        pending = folder / PENDING
        _write_json_atomic(pending, {"entry": entry, "pointer": pointer.to_dict() if pointer else None})
        history = folder / HISTORY
        size = history.stat().st_size if history.exists() else 0
        try:
            with history.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._install(folder, pointer)
        except BaseException:
            with history.open("r+b") as f:  # the pointer did not change: neither does the history
                f.truncate(size)
            pending.unlink(missing_ok=True)
            raise
        pending.unlink(missing_ok=True)
        _fsync_dir(folder)

    @staticmethod
    def _install(folder: Path, pointer: Pointer | None) -> None:
        """Replace (or remove) ``production.json``; its last step is the one that changes the pointer."""
        if pointer is None:
            (folder / PRODUCTION).unlink(missing_ok=True)
        else:
            _write_json_atomic(folder / PRODUCTION, pointer.to_dict())

    def _recover(self, folder: Path) -> None:
        """Finish or drop a change a killed process left half-done (the lock is held)."""
        history = folder / HISTORY
        if history.exists():
            data = history.read_bytes()
            if data and not data.endswith(b"\n"):
                log.warning("%s ends in a line cut short by an interrupted change; removing that line.", history)
                with history.open("r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)
        pending = folder / PENDING
        if not pending.exists():
            return
        try:
            change = json.loads(pending.read_text(encoding="utf-8"))
            entries = self.history(folder.name)
            if entries and entries[-1] == change["entry"]:
                pointer = Pointer.from_dict(change["pointer"]) if change["pointer"] else None
                self._install(folder, pointer)
                log.warning("Finished an interrupted change of %s: %s.", folder.name, change["entry"])
            else:
                log.warning("Dropped an interrupted change of %s that never reached its history.", folder.name)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("Dropped an unreadable pending change of %s (%s).", folder.name, type(e).__name__)
        pending.unlink(missing_ok=True)

    def _production_stack(self, model: str) -> list[str]:
        """Production versions, most recent last, none twice in a row: a promotion pushes, a rollback pops, a
        restore undoes."""
        stack: list[str] = []
        for entry in self.history(model):
            version = entry.get("version")
            if entry["action"] == "promote":
                if not stack or stack[-1] != version:
                    stack.append(version)
            elif entry["action"] in ("rollback", "restore"):
                if stack:
                    stack.pop()
                if version is not None and (not stack or stack[-1] != version):
                    stack.append(version)
        return stack


def _version(pointer: Pointer | None) -> str | None:
    return pointer.version if pointer else None
