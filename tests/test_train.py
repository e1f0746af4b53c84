"""train and validate on hand-built feature tables: skipped models, reproducibility, the holdout, decision.json."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from jobs.deploy import approved_versions
from jobs.errors import DeployError, TrainError, ValidateError
from jobs.ml.dataset import read_feature_table, split
from jobs.ml.holdout import holdout_mask
from jobs.ml.recipes import load_recipes
from jobs.ml.store import ModelStore, sha256_file
from jobs.run_context import RunContext, ds_of
from jobs.train import train
from jobs.validate import validate
from tests.ml_helpers import feature_table

CTX = RunContext.for_ds("2026-11-22")


@pytest.fixture
def run(settings, tmp_path):
    """Settings with their own data and store, and a run whose diabetes table is fine, heart has a single class and
    liver too few labelled rows."""
    run_settings = dataclasses.replace(settings, data_dir=tmp_path / "data", model_store=tmp_path / "store")
    features = run_settings.run_folder(CTX.ds_str).features
    feature_table(features / "diabetes_features", "diabetes", 6_000, seed=1)
    feature_table(features / "heart_features", "heart", 3_000, seed=2, label=0)
    feature_table(features / "liver_features", "liver", 400, seed=3)
    return run_settings


def test_models_with_too_few_labels_or_one_class_are_skipped_and_the_others_train(run) -> None:
    result = train(run, CTX)
    assert list(result.trained) == ["diabetes"]
    assert "every labelled row has the same outcome (label 0)" in result.skipped["heart"]
    assert "training rows have a verified outcome; the recipe needs at least 500" in result.skipped["liver"]
    summary = json.loads(run.run_folder(CTX.ds_str).train_summary.read_text())
    assert summary["models"]["heart"]["version"] is None and summary["models"]["heart"]["skipped"] is True
    assert summary["models"]["heart"]["reason"] == result.skipped["heart"]
    diabetes = summary["models"]["diabetes"]
    assert diabetes["version"] == result.trained["diabetes"] and diabetes["rows"] == 6_000
    assert 0.75 < diabetes["label_coverage"] < 0.85
    assert (
        diabetes["train_rows"] + diabetes["validation_rows"] + diabetes["evaluation_rows"] < diabetes["labelled_rows"]
    )
    assert diabetes["validation_rows"] > 100 and diabetes["evaluation_rows"] > 100 and diabetes["train_rows"] > 2_000
    assert 0 < diabetes["operating_threshold"] < 1
    assert diabetes["training_window"]["weeks"] in (8, 26, 52) and diabetes["training_window"]["validated"]
    metrics = diabetes["metrics"]  # on the evaluation period, at the operating threshold
    assert {"accuracy", "recall", "precision", "roc_auc", "f1", "log_loss", "confusion_matrix"} <= set(metrics)
    assert metrics["rows"] == diabetes["evaluation_rows"] and metrics["roc_auc"] > 0.75
    assert metrics["validation"]["rows"] == diabetes["validation_rows"]
    assert metrics["validation"]["recall"] >= 0.8  # the threshold reaches the target recall where it was chosen
    assert set(metrics["slices"]["accuracy"]) == {"under_30", "30-44", "45-59", "60-74", "75+"}
    assert metrics["slices"]["column"] == "age_band"


def test_a_version_records_where_it_came_from(run) -> None:
    version = train(run, CTX).trained["diabetes"]
    store = ModelStore(run.model_store)
    meta = store.metadata("diabetes", version)
    assert meta["artifact_sha256"] == sha256_file(store.path("diabetes", version) / "model.joblib")
    assert meta["features"] == list(load_recipes(run.models_dir)["diabetes"].features)
    assert "prediction" not in meta["features"] and meta["label"] == "label"
    assert set(meta["sql"]) == {"diabetes_features", "stg_predictions"}  # the table and everything upstream
    assert all(len(h) == 64 for h in meta["sql"].values())
    assert meta["vars"]["lookback_days"] == 365 and meta["window"][1].startswith("2026-11-22")
    assert meta["rows"] == 6_000 and meta["class_balance"].keys() == {"0", "1"}
    assert {"scikit-learn", "numpy", "pandas", "pyarrow", "scipy", "python"} <= set(meta["libraries"])
    assert meta["code_revision"] and meta["recipe"]["sha256"]
    assert meta["holdout"] == {"by": "user_id", "fraction": 0.2, "salt": "holdout-v1"}
    assert meta["trained_until"] == "2026-10-25T00:00:00+00:00"  # four evaluation weeks before the run's end
    assert meta["periods"]["evaluation"] == ["2026-10-25T00:00:00+00:00", "2026-11-22T00:00:00+00:00"]
    assert meta["metric"] == "roc_auc" and meta["target_recall"] == 0.8 and meta["threshold_chosen_on"] == "validation"
    assert 0 < meta["operating_threshold"] < 1
    assert pd.Timestamp(meta["data_range"][1]) < pd.Timestamp(meta["trained_until"])


def test_training_the_same_data_twice_gives_the_same_metrics(run) -> None:
    first, second = train(run, CTX), train(run, CTX)
    assert first.trained["diabetes"] != second.trained["diabetes"]  # two immutable versions
    store = ModelStore(run.model_store)
    assert store.metrics("diabetes", first.trained["diabetes"]) == store.metrics("diabetes", second.trained["diabetes"])


def test_no_patient_is_on_both_sides_in_any_run(tmp_path) -> None:
    """Two runs a week apart over overlapping records: each patient is held out in both or trained on in both, and
    a held-out patient's records are never in any run's training rows."""
    recipe = load_recipes(__import__("tests.conftest").conftest.REPO_ROOT / "models")["diabetes"]
    first = feature_table(tmp_path / "a", "diabetes", 4_000, seed=4, labelled=1.0)
    later = pd.concat(
        [first, feature_table(tmp_path / "b", "diabetes", 600, seed=5, first_id=10_001, labelled=1.0)]
    ).sample(frac=1, random_state=0)
    end = CTX.data_interval_end
    runs = [split(first, recipe, end - pd.Timedelta(weeks=1)), split(later, recipe, end)]
    for parts in runs:
        trained = set(parts.train_pool["user_id"])
        held = set(parts.validation["user_id"]) | set(parts.evaluation["user_id"])
        assert trained and held and not trained & held
        assert parts.train_pool["created_at"].max() < pd.Timestamp(parts.periods.evaluation_start)
        assert parts.evaluation["created_at"].min() >= pd.Timestamp(parts.periods.evaluation_start)
    held_anywhere = {u for parts in runs for u in set(parts.validation["user_id"]) | set(parts.evaluation["user_id"])}
    trained_anywhere = {u for parts in runs for u in parts.train_pool["user_id"]}
    assert not held_anywhere & trained_anywhere
    mask = holdout_mask(range(100_000), 0.2, "holdout-v1")
    assert 0.19 < mask.mean() < 0.21 and np.array_equal(mask, holdout_mask(range(100_000), 0.2, "holdout-v1"))
    assert not np.array_equal(mask, holdout_mask(range(100_000), 0.2, "another salt"))


def test_an_outcome_verified_after_the_run_is_not_known_to_it(tmp_path) -> None:
    recipe = load_recipes(__import__("tests.conftest").conftest.REPO_ROOT / "models")["diabetes"]
    frame = feature_table(tmp_path / "a", "diabetes", 3_000, seed=6, labelled=1.0)
    end = CTX.data_interval_end
    before = split(frame, recipe, end)
    late = frame.copy()
    late.loc[late.index[:500], "verified_at"] = pd.Timestamp(end) + pd.Timedelta(days=3)  # arrives after the run
    after = split(late, recipe, end)
    assert after.labelled == before.labelled - 500
    late_ids = set(late["record_id"][:500])
    for part in (after.train_pool, after.validation, after.evaluation):
        assert not late_ids & set(part["record_id"])


def test_first_validation_deploys_then_same_data_is_inconclusive_and_force_is_recorded(run) -> None:
    first = train(run, CTX).trained["diabetes"]
    result = validate(run, CTX)
    assert result.approved == {"diabetes": first}
    assert approved_versions(run.run_folder(CTX.ds_str).decision) == {"diabetes": first}  # what deploy reads
    decision = json.loads(run.run_folder(CTX.ds_str).decision.read_text())
    entry = decision["models"]["diabetes"]
    assert entry["verdict"] == "deploy" and entry["codes"] == ["first_deployment"] and entry["champion"] is None
    assert entry["challenger"]["metrics"]["roc_auc"] == pytest.approx(entry["challenger_auc"], abs=1e-6)
    assert entry["challenger"]["metrics"]["recall"] == pytest.approx(entry["challenger_recall"], abs=1e-6)
    assert entry["evaluation_period"] == ["2026-10-25T00:00:00+00:00", "2026-11-22T00:00:00+00:00"]
    assert (
        decision["models"]["heart"]["verdict"] == "skipped"
        and "same outcome" in decision["models"]["heart"]["reasons"][0]
    )

    ModelStore(run.model_store).promote("diabetes", first, reason="first deployment", actor="test")
    second = train(run, CTX).trained["diabetes"]
    again = validate(run, CTX)
    assert again.approved == {}
    entry = json.loads(run.run_folder(CTX.ds_str).decision.read_text())["models"]["diabetes"]
    assert entry["verdict"] == "inconclusive" and entry["comparison"]["p_value"] == 1.0
    assert entry["champion"]["version"] == first and entry["challenger"]["version"] == second
    assert entry["champion"]["metrics"] == entry["challenger"]["metrics"]  # scored on the very same rows

    forced = validate(run, CTX, force=["diabetes"], force_reason="hotfix for a data bug")
    assert forced.approved == {"diabetes": second}
    entry = json.loads(run.run_folder(CTX.ds_str).decision.read_text())["models"]["diabetes"]
    assert entry["forced"] is True and entry["gate_verdict"] == "inconclusive"
    assert entry["force_reason"] == "hotfix for a data bug"
    with pytest.raises(ValidateError, match="Cannot force model.*kidney"):
        validate(run, CTX, force=["kidney"], force_reason="x")
    with pytest.raises(ValidateError, match='A forced deployment needs a reason.*--force-reason "..."'):
        validate(run, CTX, force=["diabetes"], force_reason=" ")


def test_missing_inputs_say_which_command_to_run(settings, tmp_path) -> None:
    empty = dataclasses.replace(settings, data_dir=tmp_path / "data", model_store=tmp_path / "store")
    with pytest.raises(TrainError, match="retrain transform --ds 2026-11-22"):
        train(empty, CTX)
    with pytest.raises(ValidateError, match="retrain train --ds 2026-11-22"):
        validate(empty, CTX)


def test_feature_tables_that_failed_their_data_tests_are_not_trained_on(run, caplog) -> None:
    """transform writes its tables, then tests them: a hand-run train after failed tests stops, naming them."""
    summary = run.run_folder(CTX.ds_str).transform_summary
    tests = [
        {"name": "json_keys_present(data)", "model": "stg_predictions", "status": "error"},
        {"name": "accepted_values(verified_outcome)", "model": "stg_predictions", "status": "warn"},
    ]
    summary.write_text(json.dumps({"ds": CTX.ds_str, "models": [], "data_tests": tests}))
    with pytest.raises(TrainError, match=r"failed 1 data test\(s\) \(stg_predictions: json_keys_present\(data\);"):
        train(run, CTX)
    assert not run.run_folder(CTX.ds_str).train_summary.exists()
    # Warnings, or tests skipped (--skip-data-tests: data_tests is null), do not stop it.
    summary.write_text(json.dumps({"ds": CTX.ds_str, "models": [], "data_tests": tests[1:]}))
    assert list(train(run, CTX).trained) == ["diabetes"]
    summary.write_text(json.dumps({"ds": CTX.ds_str, "models": [], "data_tests": None}))
    assert list(train(run, CTX).trained) == ["diabetes"]
    # A summary that cannot be read says nothing either way: training goes on, and the log says so.
    summary.write_text('{"ds": "2026-11-22", "models": [')
    assert list(train(run, CTX).trained) == ["diabetes"]
    assert f"Could not read {summary} for the check of the data tests before training" in caplog.text


def test_the_commands_train_validate_and_manage_the_store(settings, tmp_path, monkeypatch, capsys, caplog) -> None:
    from jobs.cli import main

    monkeypatch.setenv("RETRAIN_HOME", str(settings.root))
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "store"))
    features = tmp_path / "data" / "runs" / f"ds={CTX.ds_str}" / "features"
    feature_table(features / "diabetes_features", "diabetes", 4_000, seed=7)
    assert main(["train", "--ds", CTX.ds_str, "--model", "diabetes"]) == 0
    version = ModelStore(tmp_path / "store").versions("diabetes")[0]
    assert f"diabetes     {version}" in capsys.readouterr().out
    assert main(["validate", "--ds", CTX.ds_str]) == 0
    out = capsys.readouterr().out
    assert "diabetes     deploy" in out and "No model is in production" in out
    assert main(["models", "promote", "diabetes", version, "--reason", "first"]) == 0
    assert main(["models", "list"]) == 0
    assert f"* diabetes     {version}" in capsys.readouterr().out
    assert main(["models", "show", "diabetes"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["production"]["version"] == version and shown["metadata"]["artifact_sha256"]
    assert main(["models", "rollback", "diabetes", "--reason", "test"]) == 1  # nothing earlier: a clear error
    assert main(["models", "promote", "diabetes", "nope", "--reason", "x"]) == 1
    assert main(["models", "show", "kidney"]) == 1  # not "has no production version": there is no such model
    assert main(["validate", "--ds", CTX.ds_str, "--force-reason", "x"]) == 2  # a reason for no --force
    assert "--force-reason is the reason for --force, which was not given" in caplog.text
    assert "The model store has no model 'kidney' (its models: diabetes)" in caplog.text


def test_a_champion_with_other_holdout_settings_is_compared_only_on_rows_it_never_saw(run, monkeypatch) -> None:
    """Changing holdout_salt would put most of today's held-out patients into the champion's training data: the
    gate says so and compares only patients held out under both salts, or is inconclusive when too few remain."""
    import jobs.ml.recipes as recipes_module

    store = ModelStore(run.model_store)
    champion = train(run, CTX, models=["diabetes"]).trained["diabetes"]
    store.promote("diabetes", champion, reason="first", actor="test")
    original = recipes_module.load_recipes

    def resalted(models_dir):
        loaded = original(models_dir)
        return {**loaded, "diabetes": dataclasses.replace(loaded["diabetes"], holdout_salt="holdout-v2")}

    monkeypatch.setattr("jobs.train.load_recipes", resalted)
    monkeypatch.setattr("jobs.validate.load_recipes", resalted)
    train(run, CTX, models=["diabetes"])
    validate(run, CTX)
    entry = json.loads(run.run_folder(CTX.ds_str).decision.read_text())["models"]["diabetes"]
    assert entry["reasons"][0].startswith("Production was trained with other holdout settings (fraction 0.2, salt ")
    assert "whose patients are held out under both are compared" in entry["reasons"][0]
    both = entry["evaluation_rows"]
    assert (
        0
        < both
        < 0.5
        * json.loads(run.run_folder(CTX.ds_str).train_summary.read_text())["models"]["diabetes"]["evaluation_rows"]
    )
    assert entry["verdict"] == "inconclusive" and "holdout_too_small" in entry["codes"]  # too few held out by both


def test_a_champion_trained_on_this_evaluation_period_is_compared_after_its_last_record(run) -> None:
    """A run re-done for an older date, after a newer version went to production: only rows created after the
    champion's training data are compared."""
    store = ModelStore(run.model_store)
    newer = RunContext.for_ds("2026-12-13")  # trained up to 2026-11-15, inside 2026-11-22's evaluation period
    run_folder = run.run_folder(newer.ds_str)
    run_folder.features.mkdir(parents=True)
    import shutil

    shutil.copytree(
        run.run_folder(CTX.ds_str).features / "diabetes_features", run_folder.features / "diabetes_features"
    )
    champion = train(run, newer, models=["diabetes"]).trained["diabetes"]
    store.promote("diabetes", champion, reason="newer", actor="test")
    train(run, CTX, models=["diabetes"])
    validate(run, CTX)
    entry = json.loads(run.run_folder(CTX.ds_str).decision.read_text())["models"]["diabetes"]
    assert any("Production was trained on records up to 2026-11-15T00:00:00+00:00" in r for r in entry["reasons"])
    assert (
        entry["evaluation_rows"]
        < json.loads(run.run_folder(CTX.ds_str).train_summary.read_text())["models"]["diabetes"]["evaluation_rows"]
    )


def test_a_missing_input_names_the_command_for_its_own_date(run, tmp_path) -> None:
    """Not `--ds <ds>`: the date is the run folder's, so the message is the command to run."""
    folder = run.run_folder("2026-11-29")
    assert ds_of(folder.features / "diabetes_features" / "part-0.parquet") == "2026-11-29"
    assert ds_of(tmp_path / "elsewhere") == "<ds>"
    with pytest.raises(DeployError, match=r"run `retrain validate --ds 2026-11-29` before deploying"):
        approved_versions(folder.decision)
    table = run.run_folder(CTX.ds_str).feature_table("heart_features")
    table.rename(tmp_path / "moved")
    with pytest.raises(TrainError, match=r"Run `retrain transform --ds 2026-11-22` first"):
        read_feature_table(table, load_recipes(run.models_dir)["heart"])
