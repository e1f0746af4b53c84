"""The set of models the backend serves, reloaded all-or-nothing from the model store's production pointers.

A reload builds a complete new set beside the current one (recipes, pointers, artifacts, their sha256) and swaps
it in with one reference assignment only when every model loaded. A request reads the reference once and predicts
with that set, so a prediction during a reload is served by the old set or the new one, never by a mixture, and
never fails because of the reload. A reload that fails leaves the old set serving and names the model at fault.

Artifacts are read once into memory, hashed, and unpickled from those same bytes (``jobs.ml.store.Artifact``): the
hash reported is the hash of what is serving. ``joblib.load`` unpickles, so the model store must be as trusted as
the code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jobs.errors import ModelLoadError, RetrainError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """One model in production: its recipe (for input validation), its fitted estimator and where it came from."""

    name: str
    version: str
    artifact_sha256: str
    recipe: Any
    estimator: Any
    loaded_at: str
    #: the operating threshold stored with the version: a score at or above it is "High Risk"
    threshold: float
    #: how the version reads each feature from a request's JSON, as the SQL did for its training rows
    #: (``jobs.ml.json_inputs.ServingInputs``); None for a version stored before they were recorded
    inputs: Any = None

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "artifact_sha256": self.artifact_sha256,
            "loaded_at": self.loaded_at,
            "operating_threshold": self.threshold,
        }


class ModelRegistry:
    """Holds the serving set; :meth:`reload` replaces it whole or not at all (reloads run one at a time)."""

    def __init__(self, model_store: Path, models_dir: Path) -> None:
        self.model_store = model_store
        self.models_dir = models_dir
        self._models: Mapping[str, LoadedModel] = MappingProxyType({})
        self._reload_lock = threading.Lock()
        self.reloaded_at: str | None = None
        self.last_error: dict[str, str] | None = None

    @property
    def models(self) -> Mapping[str, LoadedModel]:
        """The current set; read it once per request."""
        return self._models

    def describe(self) -> dict[str, Any]:
        models = self._models
        return {
            "models": {name: m.describe() for name, m in sorted(models.items())},
            "reloaded_at": self.reloaded_at,
            "last_error": self.last_error,
        }

    def reload(self) -> Mapping[str, LoadedModel]:
        """Load every production pointer into a new set and swap it in; raises :class:`ModelLoadError` otherwise."""
        with self._reload_lock:
            try:
                new = load_production_set(self.model_store, self.models_dir)
            except ModelLoadError as e:
                self.last_error = {"model": e.model, "error": str(e), "at": _now()}
                log.error("Reload failed, the previous set keeps serving: %s", e)
                raise
            self._models = MappingProxyType(new)  # the swap: one reference assignment
            self.reloaded_at = _now()
            self.last_error = None
            log.info("Serving %s.", ", ".join(f"{m.name} {m.version}" for m in new.values()) or "no models")
            return self._models


def load_production_set(model_store: Path, models_dir: Path) -> dict[str, LoadedModel]:
    """Every recipe's production version, loaded and hashed; models without a production pointer are left out."""
    from jobs.ml.recipes import load_recipes
    from jobs.ml.store import ModelStore

    try:
        recipes = load_recipes(models_dir)
    except RetrainError as e:
        raise ModelLoadError("(recipes)", f"Could not load the recipes of {models_dir}: {e}") from e
    store = ModelStore(model_store)
    loaded: dict[str, LoadedModel] = {}
    for name, recipe in sorted(recipes.items()):
        try:
            pointer = store.production(name)
        except Exception as e:
            raise ModelLoadError(name, f"Could not read the production pointer of {name}: {e}") from e
        if pointer is None:
            continue
        loaded[name] = _load_one(store, name, recipe, pointer)
    return loaded


def _load_one(store: Any, name: str, recipe: Any, pointer: Any) -> LoadedModel:
    from jobs.ml.json_inputs import ServingInputs
    from jobs.ml.metrics import threshold_of
    from jobs.ml.names import check_version_name
    from jobs.ml.recipes import as_trained

    version = pointer.version
    try:
        check_version_name(version, model=name, where=f"The production pointer of {name}")  # before any path
        artifact = store.artifact(name, version)
        metadata = store.metadata(name, version)
        recipe = as_trained(recipe, metadata)
        inputs = ServingInputs.from_metadata(metadata)
    except (OSError, ValueError, RetrainError) as e:
        raise ModelLoadError(name, f"Could not read {name} {version} from the model store: {e}") from e
    path, sha = artifact.path, artifact.sha256
    expected = getattr(pointer, "artifact_sha256", None)
    if expected and sha != expected:
        raise ModelLoadError(
            name,
            f"{name} {version}: {path} has sha256 {sha[:12]}..., its production pointer says {expected[:12]}...; "
            "the artifact changed after promotion.",
        )
    try:
        estimator = artifact.unpickle()
    except Exception as e:
        raise ModelLoadError(name, f"Could not load {name} {version} ({path}): {type(e).__name__}: {e}") from e
    if not hasattr(estimator, "predict_proba"):
        raise ModelLoadError(name, f"{name} {version} ({path}) is a {type(estimator).__name__}, not a classifier.")
    return LoadedModel(name, version, sha, recipe, estimator, _now(), threshold_of(metadata), inputs)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
