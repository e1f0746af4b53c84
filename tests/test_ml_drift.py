"""Feature drift (PSI): identical distributions give about 0, a real shift passes 0.2, categories new this week count,
and production's training rows and this week's rows are the right ones."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from jobs.ml.drift import MISSING, categorical_drift, feature_drift, numeric_drift, psi
from jobs.ml.holdout import holdout_mask
from jobs.ml.production_drift import metric_change, production_drift, this_weeks_rows, training_rows
from jobs.ml.recipes import load_recipes
from tests.conftest import REPO_ROOT
from tests.ml_helpers import feature_table

END = datetime(2026, 11, 22, tzinfo=UTC)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.1 * np.log(1.2 / 1) + 0.1 * np.log(1 / 0.8), rel=1e-9)
    assert psi([0.5, 0.5], [0.9, 0.1]) > psi([0.5, 0.5], [0.6, 0.4]) > 0
    assert np.isfinite(psi([1.0, 0.0], [0.0, 1.0]))  # an empty bin is floored, not infinite


def test_a_numeric_feature_from_the_same_distribution_does_not_drift_and_a_shifted_one_does() -> None:
    rng = np.random.default_rng(0)
    training = rng.normal(30, 5, 20_000)
    assert numeric_drift("bmi", training, training).psi == 0.0
    same = numeric_drift("bmi", training, rng.normal(30, 5, 2_000))
    assert same.psi < 0.02 and len(same.bins) == 10  # deciles of the training rows
    assert all(abs(share - 0.1) < 1e-3 for share in same.reference)
    shifted = numeric_drift("bmi", training, rng.normal(33, 5, 2_000))  # +0.6 standard deviations
    assert shifted.psi > 0.2 and shifted.kind == "numeric"
    wider = numeric_drift("bmi", training, rng.normal(30, 9, 2_000))  # same mean, more spread
    assert wider.psi > 0.2
    assert sum(shifted.current) == pytest.approx(1.0) and sum(shifted.reference) == pytest.approx(1.0)


def test_missing_values_are_a_bin_of_their_own() -> None:
    rng = np.random.default_rng(1)
    training = rng.normal(0, 1, 5_000)
    now = np.concatenate([rng.normal(0, 1, 1_500), np.full(500, np.nan)])  # a quarter stopped arriving
    drift = numeric_drift("glucose", training, now)
    assert drift.bins[-1] == MISSING and drift.reference[-1] == 0.0 and drift.current[-1] == 0.25
    assert drift.unseen == (MISSING,) and drift.psi > 0.2
    assert numeric_drift("glucose", [np.nan] * 10, [np.nan] * 5).psi == 0.0  # never measured: nothing moved


def test_categories_compare_their_shares_and_an_unseen_category_counts() -> None:
    training = ["female"] * 500 + ["male"] * 500
    assert categorical_drift("sex", training, ["male", "female"] * 300).psi == 0.0
    assert categorical_drift("sex", training, ["female"] * 520 + ["male"] * 480).psi < 0.01
    skewed = categorical_drift("sex", training, ["female"] * 800 + ["male"] * 200)
    assert skewed.psi > 0.2 and skewed.unseen == ()
    unseen = categorical_drift("smoker", ["no"] * 700 + ["yes"] * 300, ["no"] * 630 + ["yes"] * 270 + ["vape"] * 100)
    assert unseen.bins == ("no", "yes", "vape") and unseen.reference == (0.7, 0.3, 0.0)
    assert unseen.unseen == ("vape",) and unseen.psi > 0.2
    with_none = categorical_drift("smoker", ["no", None, "yes", None], ["no", "yes", None, None])
    assert MISSING in with_none.bins and with_none.psi == 0.0


def test_a_frame_is_compared_feature_by_feature_and_the_drifted_ones_are_flagged_largest_first() -> None:
    rng = np.random.default_rng(2)
    reference = pd.DataFrame({"age": rng.normal(50, 10, 4_000), "bmi": rng.normal(27, 4, 4_000)})
    reference["sex"] = np.where(rng.random(4_000) < 0.5, "female", "male")
    current = pd.DataFrame({"age": rng.normal(50, 10, 1_000), "bmi": rng.normal(30, 4, 1_000)})
    current["sex"] = np.where(rng.random(1_000) < 0.9, "female", "male")
    report = feature_drift(reference, current, ["age", "bmi"], ["sex"], threshold=0.2)
    assert {f.feature for f in report.flagged} == {"bmi", "sex"}
    assert report.flagged[0].psi >= report.flagged[1].psi
    record = report.to_dict()
    assert record["reference_rows"] == 4_000 and record["current_rows"] == 1_000
    assert set(record["features"]) == {"age", "bmi", "sex"} and record["features"]["age"]["psi"] < 0.05
    assert record["flagged"] == [f.feature for f in report.flagged]


def test_production_lost_metric_is_oriented_so_that_positive_means_worse() -> None:
    assert metric_change("roc_auc", 0.81, 0.76)["lost"] == pytest.approx(0.05)
    assert metric_change("log_loss", 0.40, 0.45)["lost"] == pytest.approx(0.05)
    assert metric_change("roc_auc", 0.70, 0.75)["lost"] == pytest.approx(-0.05)
    assert metric_change("roc_auc", None, 0.75)["lost"] is None


def test_production_training_rows_are_its_training_patients_in_its_window_labelled_as_of_its_run(tmp_path) -> None:
    recipe = load_recipes(REPO_ROOT / "models")["diabetes"]
    frame = feature_table(tmp_path / "t", "diabetes", 4_000, seed=3)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["verified_at"] = pd.to_datetime(frame["verified_at"], utc=True)
    metadata = {
        "holdout": {"by": "user_id", "fraction": 0.2, "salt": "holdout-v1"},
        "training_window": {"from": "2026-09-06T00:00:00+00:00"},
        "trained_until": "2026-10-18T00:00:00+00:00",
        "data_interval": ["2026-11-08T00:00:00+00:00", "2026-11-15T00:00:00+00:00"],
    }
    rows = training_rows(frame, recipe, metadata)
    assert len(rows) > 1_000
    assert not holdout_mask(rows["user_id"].tolist(), 0.2, "holdout-v1").any()
    assert rows["created_at"].min() >= pd.Timestamp("2026-09-06", tz="UTC")
    assert rows["created_at"].max() < pd.Timestamp("2026-10-18", tz="UTC")
    assert rows["label"].notna().all() and (rows["verified_at"] < pd.Timestamp("2026-11-15", tz="UTC")).all()
    assert training_rows(frame, recipe, {}) is None
    week = this_weeks_rows(frame, END)
    assert week["created_at"].min() >= pd.Timestamp("2026-11-15", tz="UTC") and len(week) > 200
    assert week["label"].isna().any()  # labels are not needed: every record of the week counts

    drifted = frame.copy()
    recent = drifted["created_at"] >= pd.Timestamp("2026-11-15", tz="UTC")
    drifted.loc[recent, "bmi"] = drifted.loc[recent, "bmi"] + 8
    record, notes = production_drift(
        drifted,
        recipe,
        metadata,
        {"roc_auc": 0.82},
        {"roc_auc": 0.77, "rows": 300},
        version="2026-11-15-aaaa0000",
        end=END,
        threshold=0.2,
    )
    assert record["flagged"] == ["bmi"] and record["metric"]["lost"] == pytest.approx(0.05)
    assert record["reference"]["rows"] == len(rows) and record["current"]["rows"] == len(week)
    assert len(notes) == 1 and notes[0].startswith("Drift: bmi has shifted since production was trained: PSI ")
    assert "does not change the verdict" in notes[0]
    few, no_notes = production_drift(
        drifted, recipe, metadata, {}, None, version="v", end=datetime(2026, 8, 1, tzinfo=UTC), threshold=0.2
    )
    assert no_notes == [] and "not measured" in few["note"] and few["features"] == {}
