"""The gate on the demo data, whose true outcome drifts: seed -> extract -> transform -> train -> validate.

- the first run deploys (nothing in production);
- a run twelve weeks later, whose champions are a quarter old, deploys challengers that are significantly better on
  the newest weeks' outcomes of held-out patients;
- retraining on the same data again is never "deploy" (identical models: inconclusive), with the same metrics.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from jobs.demo.generator import generate
from jobs.demo.loader import load
from jobs.extract import extract
from jobs.ml.store import ModelStore
from jobs.run_context import RunContext
from jobs.train import train
from jobs.transform import transform
from jobs.validate import validate
from tests.conftest import empty_tables

ROWS, SEED = 80_000, 5  # enough evaluation rows in the newest four weeks of held-out patients
EARLY = RunContext.for_ds("2026-08-30")  # fourteen weeks into the data (it starts on 2026-05-24)
LATE = RunContext.for_ds("2026-11-22")  # a quarter later, production left alone in between
LATE_VARS: dict = {}
MODELS = ("diabetes", "heart", "liver")


@pytest.fixture(scope="module")
def runs(spark, settings, pg_cluster, tmp_path_factory):
    """Feature tables of the early and the late run, and settings with an empty model store."""
    db = pg_cluster.database_url()
    empty_tables(pg_cluster.admin_url())  # the tables' owner loads; the pipeline reads as its own role
    load(pg_cluster.admin_url(), generate(ROWS, SEED))
    root = tmp_path_factory.mktemp("retraining")
    run_settings = dataclasses.replace(
        settings,
        database_url=db.full_url(),
        data_dir=root / "data",
        model_store=root / "store",
    )
    extract(run_settings, EARLY, spark)
    transform(run_settings, EARLY, spark, run_data_tests=False)
    extract(run_settings, LATE, spark, vars_overrides=LATE_VARS)
    transform(run_settings, LATE, spark, vars_overrides=LATE_VARS, run_data_tests=False)
    empty_tables(pg_cluster.admin_url())
    return run_settings


def promote_approved(settings, result) -> None:
    store = ModelStore(settings.model_store)
    for model, version in result.approved.items():
        store.promote(model, version, reason="approved by the gate", actor="test")


def decisions(settings, ctx) -> dict:
    return json.loads(settings.run_folder(ctx.ds_str).decision.read_text())["models"]


def test_first_run_deploys_then_a_fresher_challenger_replaces_the_drifted_champion(runs) -> None:
    early = train(runs, EARLY)
    assert sorted(early.trained) == list(MODELS)
    first = validate(runs, EARLY)
    entries = decisions(runs, EARLY)
    # Nothing in production: a model deploys on the absolute checks, unless its evaluation is too small to judge.
    for model in MODELS:
        assert entries[model]["codes"] in (["first_deployment"], ["holdout_too_small"]), entries[model]["reasons"]
    assert "diabetes" in first.approved  # the most common record type always has enough evaluation rows
    promote_approved(runs, first)

    late = train(runs, LATE, vars_overrides=LATE_VARS)
    assert sorted(late.trained) == list(MODELS)
    second = validate(runs, LATE)
    entries = decisions(runs, LATE)
    compared = [m for m in MODELS if m in first.approved]
    for model in compared:
        entry = entries[model]
        assert entry["champion"]["version"] == early.trained[model]
        assert entry["challenger"]["metrics"]["rows"] == entry["champion"]["metrics"]["rows"]  # the same rows
        assert entry["evaluation_period"] == ["2026-10-25T00:00:00+00:00", "2026-11-22T00:00:00+00:00"]
    # A quarter of drift: the newer diabetes model ranks the newest weeks' patients clearly better.
    diabetes = entries["diabetes"]
    assert diabetes["comparison"]["test"] == "DeLong's test" and diabetes["comparison"]["difference"] > 0
    assert diabetes["verdict"] == "deploy" and diabetes["codes"] == ["significantly_better"], diabetes["reasons"]
    assert diabetes["comparison"]["p_value"] < diabetes["thresholds"]["alpha"]
    assert second.approved["diabetes"] == late.trained["diabetes"]
    promote_approved(runs, second)

    # The same data again: an identical model, so never "deploy", and the same metrics.
    again = train(runs, LATE, vars_overrides=LATE_VARS)
    store = ModelStore(runs.model_store)
    for model in MODELS:
        assert store.metrics(model, again.trained[model]) == store.metrics(model, late.trained[model])
    third = validate(runs, LATE)
    assert third.approved == {}
    assert all(entry["verdict"] in ("inconclusive", "reject") for entry in decisions(runs, LATE).values())
    assert len(store.versions("diabetes")) == 3
