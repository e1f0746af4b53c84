"""The serving backend cuts each model at the operating threshold stored with its version, not at a constant."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from jobs.ml.metrics import LEGACY_THRESHOLD, positive_scores
from jobs.ml.recipes import features_frame, load_recipes
from jobs.ml.store import ModelStore
from serving.predict import HIGH_RISK, LOW_RISK, score
from serving.registry import load_production_set
from tests.conftest import REPO_ROOT

MODELS_DIR = REPO_ROOT / "models"


def stored(tmp_path: Path, metadata: dict) -> tuple[ModelStore, str]:
    """A small diabetes model in a store of its own, promoted, with ``metadata`` recorded beside it."""
    recipe = load_recipes(MODELS_DIR)["diabetes"]
    rng = np.random.default_rng(0)
    rows = [
        {
            "age": a,
            "bmi": 20 + a / 4,
            "glucose": 80 + a,
            "blood_pressure": 70.0,
            "insulin": 80.0,
            "pregnancies": 1.0,
            "family_history": float(a % 2),
            "physical_activity": ("low", "moderate", "high")[a % 3],
        }
        for a in rng.integers(20, 80, 200)
    ]
    y = np.array([int(r["glucose"] > 130) for r in rows])
    estimator = recipe.build_estimator().fit(features_frame(recipe, rows), y)
    store = ModelStore(tmp_path / "store")
    version, _ = store.write(
        "diabetes",
        "2026-11-22",
        estimator,
        {},
        {
            "numeric_features": list(recipe.numeric_features),
            "categorical_features": list(recipe.categorical_features),
            **metadata,
        },
    )
    store.promote("diabetes", version, reason="test", actor="test")
    return store, version


@pytest.mark.parametrize("threshold", [0.05, 0.95])
def test_the_stored_threshold_decides_high_or_low_risk(tmp_path: Path, threshold: float) -> None:
    store, version = stored(tmp_path, {"operating_threshold": threshold})
    loaded = load_production_set(tmp_path / "store", MODELS_DIR)["diabetes"]
    assert loaded.version == version and loaded.threshold == threshold
    assert loaded.describe()["operating_threshold"] == threshold
    inputs = {"age": 50.0, "bmi": 32.5, "glucose": 130.0, "physical_activity": "low"}
    probability = float(positive_scores(loaded.estimator, features_frame(loaded.recipe, [inputs]))[0])
    assert 0.05 < probability < 0.95
    prediction, confidence = score(loaded.estimator, loaded.recipe, inputs, loaded.threshold)
    if threshold < probability:
        assert (prediction, confidence) == (HIGH_RISK, pytest.approx(probability))
    else:
        assert (prediction, confidence) == (LOW_RISK, pytest.approx(1 - probability))


def test_a_version_stored_without_a_threshold_keeps_the_legacy_one(tmp_path: Path) -> None:
    stored(tmp_path, {})
    assert load_production_set(tmp_path / "store", MODELS_DIR)["diabetes"].threshold == LEGACY_THRESHOLD


def test_no_literal_cut_off_is_left_in_scoring_or_serving() -> None:
    """Every threshold comes from a version's metadata: the one constant is the legacy default, named once."""
    for path in [*(REPO_ROOT / "serving").glob("*.py"), REPO_ROOT / "jobs/validate.py", REPO_ROOT / "jobs/train.py"]:
        text = path.read_text(encoding="utf-8")
        assert ">= 0.5" not in text and "> 0.5" not in text, path
    assert dataclasses.fields(load_recipes(MODELS_DIR)["diabetes"])  # recipes still load
