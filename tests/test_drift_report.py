"""Drift through the real steps: train and validate on hand-built feature tables (no Spark), then notify. A feature
whose last week moved away from production's training rows is flagged in decision.json's reasons and drift record and
in report.md, and the verdict is the one the gate gives without the note."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.ml.store import ModelStore
from jobs.notify import notify
from jobs.run_context import RunContext
from jobs.train import train
from jobs.validate import validate
from tests.ml_helpers import feature_table

CTX = RunContext.for_ds("2026-11-22")
WEEK_START = pd.Timestamp("2026-11-15", tz="UTC")


@pytest.fixture
def drifted(settings, tmp_path):
    """Production trained on the diabetes table; then the table's last week gets a much higher bmi, and a new
    version is trained on the same ds (its training rows, before the evaluation period, are unchanged)."""
    run = dataclasses.replace(settings, data_dir=tmp_path / "data", model_store=tmp_path / "store")
    table = run.run_folder(CTX.ds_str).feature_table("diabetes_features")
    frame = feature_table(table, "diabetes", 6_000, seed=11)
    champion = train(run, CTX, models=["diabetes"]).trained["diabetes"]
    ModelStore(run.model_store).promote("diabetes", champion, reason="first", actor="test")
    last_week = pd.to_datetime(frame["created_at"], utc=True) >= WEEK_START
    frame.loc[last_week, "bmi"] = frame.loc[last_week, "bmi"] + 9.0
    shutil.rmtree(table)
    pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), table, partition_cols=["created_month"])
    train(run, CTX, models=["diabetes"])
    return run, champion


def test_a_drifted_feature_is_flagged_in_the_reasons_and_the_report_without_changing_the_verdict(
    drifted, monkeypatch
) -> None:
    run, champion = drifted
    validate(run, CTX)
    folder = run.run_folder(CTX.ds_str)
    entry = json.loads(folder.decision.read_text())["models"]["diabetes"]
    drift = entry["drift"]
    assert drift["production_version"] == champion and drift["flagged"] == ["bmi"]
    assert drift["features"]["bmi"]["psi"] > 0.2 and all(
        f["psi"] < 0.2 for name, f in drift["features"].items() if name != "bmi"
    )
    assert drift["reference"]["rows"] > 1_000 and 300 < drift["current"]["rows"] < 700  # one week of 12
    assert drift["metric"]["metric"] == "roc_auc" and drift["metric"]["lost"] is not None
    meta = ModelStore(run.model_store).metrics("diabetes", champion)
    assert drift["metric"]["at_training"] == meta["roc_auc"]
    assert drift["metric"]["now"] == entry["champion"]["metrics"]["roc_auc"]
    (note,) = [r for r in entry["reasons"] if r.startswith("Drift:")]
    assert note.startswith("Drift: bmi has shifted since production was trained: PSI ")

    # the same validation with drift never flagged: the same verdict, codes and gate reasons
    import jobs.ml.recipes as recipes_module

    original = recipes_module.load_recipes

    def never_flag(models_dir):
        loaded = original(models_dir)
        recipe = loaded["diabetes"]
        thresholds = dataclasses.replace(recipe.thresholds, drift_psi=1e6)
        return {**loaded, "diabetes": dataclasses.replace(recipe, thresholds=thresholds)}

    monkeypatch.setattr("jobs.validate.load_recipes", never_flag)
    validate(run, CTX)
    quiet = json.loads(folder.decision.read_text())["models"]["diabetes"]
    assert quiet["drift"]["flagged"] == [] and not any(r.startswith("Drift:") for r in quiet["reasons"])
    assert (quiet["verdict"], quiet["codes"]) == (entry["verdict"], entry["codes"])
    assert quiet["reasons"] == [r for r in entry["reasons"] if r != note]

    monkeypatch.undo()
    validate(run, CTX)
    notify(run, CTX)
    md = folder.report_md.read_text()
    assert "| diabetes |" in md and md.count("| bmi |") == 1  # the models table's drifted features
    assert "**bmi " in md and "(drifted)**" in md and "  - Drift: bmi has shifted" in md
    assert f"- Production {champion} has " in md and " of roc_auc since it was trained: " in md
    assert "](report_drift_diabetes.png)" in md and folder.drift_plot("diabetes").exists()
    report = json.loads(folder.report_json.read_text())
    assert report["models"]["diabetes"]["drift"]["flagged"] == ["bmi"]
