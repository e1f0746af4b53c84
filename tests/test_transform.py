"""extract -> transform on the demo data in a real PostgreSQL: the quarantine matches the seed's dirty-input mix."""

from __future__ import annotations

import dataclasses
import json

import pytest

from jobs.demo.generator import generate
from jobs.demo.loader import load
from jobs.extract import extract
from jobs.run_context import RunContext
from jobs.transform import rerun_data_tests, transform
from tests.conftest import empty_tables

ROWS, SEED = 20_000, 11
CTX = RunContext.for_ds("2026-11-22")  # the seed's end date: the default 365-day window holds every record


@pytest.fixture(scope="module")
def transformed(spark, settings, pg_cluster, tmp_path_factory):
    db, admin = pg_cluster.database_url(), pg_cluster.admin_url()  # the pipeline's role; the tables' owner
    data = generate(ROWS, SEED)
    load(admin, data)
    run_settings = dataclasses.replace(
        settings,
        database_url=db.full_url(),
        data_dir=tmp_path_factory.mktemp("data"),
    )
    extracted = extract(run_settings, CTX, spark)
    outcome = transform(run_settings, CTX, spark)
    yield run_settings, data.report, extracted, outcome
    empty_tables(admin)


def test_quarantine_counts_match_the_seeds_dirty_input_mix(spark, transformed) -> None:
    run_settings, report, _, outcome = transformed
    path = run_settings.run_folder(CTX.ds_str).features / "quarantine"
    rows = spark.read.parquet(str(path)).groupBy("quarantine_reason").count().collect()
    counts = {r.quarantine_reason: r["count"] for r in rows}
    expected = report.consenting
    assert counts == {
        "malformed_json": expected.malformed_json,
        "unknown_record_type": expected.unknown_record_type,
        "impossible_value": expected.impossible_value,
        "duplicate": expected.duplicate,
        "unknown_outcome": report.consenting_unknown_outcome,
    }
    assert all(n > 0 for n in counts.values())


def test_every_extracted_record_is_either_a_feature_row_or_quarantined(transformed) -> None:
    _, report, extracted, outcome = transformed
    result = outcome
    features = sum(result.rows(f"{m}_features") for m in ("diabetes", "heart", "liver"))
    assert extracted.rows == report.consenting_records
    assert features + result.rows("quarantine") == extracted.rows


def test_labels_come_from_verified_outcomes_only(spark, transformed) -> None:
    run_settings, report, _, _ = transformed
    features = run_settings.run_folder(CTX.ds_str).features
    labelled = sum(
        spark.read.parquet(str(features / f"{m}_features")).where("label IS NOT NULL").count()
        for m in ("diabetes", "heart", "liver")
    )
    assert 0 < labelled < report.consenting_records


def test_data_tests_pass_and_are_recorded(spark, transformed) -> None:
    run_settings, _, _, outcome = transformed
    assert outcome.tests and all(t.status in ("pass", "warn") for t in outcome.tests)
    assert not spark.catalog.isCached("stg_predictions")  # held for the data tests, released after them
    summary = json.loads((run_settings.run_folder(CTX.ds_str).transform_summary).read_text())
    assert {m["name"] for m in summary["models"]} >= {"quarantine", "diabetes_features"}
    assert len(summary["data_tests"]) == len(outcome.tests)
    again = rerun_data_tests(run_settings, CTX, spark)
    assert [(r.model, r.name, r.failures) for r in again] == [(r.model, r.name, r.failures) for r in outcome.tests]


def test_features_are_partitioned_by_month(transformed) -> None:
    run_settings, _, _, _ = transformed
    table = run_settings.run_folder(CTX.ds_str).features / "diabetes_features"
    months = sorted(p.name for p in table.glob("created_month=*"))
    assert months[0] == "created_month=2026-05" and months[-1] == "created_month=2026-11"


def test_reading_sources_straight_from_the_database_gives_the_same_tables(spark, transformed) -> None:
    run_settings, _, _, outcome = transformed
    again = transform(run_settings, CTX, spark, select=["+quarantine"], from_database=True)
    assert again.rows("quarantine") == outcome.rows("quarantine")
    assert again.tests == ()  # a partial build is not data-tested; `retrain test --ds D` does that


@pytest.mark.spark  # `retrain check` starts a Spark session
def test_cli_check_analyses_every_model_without_data(capsys) -> None:
    from jobs import cli

    assert cli.main(["check", "--ds", "2026-11-22"]) == 0
    out = capsys.readouterr().out
    assert "OK diabetes_features (sql/features/diabetes_features.sql): record_id bigint" in out
    assert "5 model(s) analysed against the declared source schemas; no data was read." in out


def test_a_few_hostile_outcomes_warn_but_a_systematic_change_stops_the_run(spark, transformed) -> None:
    from jobs.errors import DataTestError

    run_settings, report, _, outcome = transformed
    tests = {(t.model, t.name): t for t in outcome.tests}
    few = tests[("stg_predictions", "accepted_values(verified_outcome)")]
    assert few.status == "warn" and few.failures == report.consenting_unknown_outcome > 0
    # The backend starts writing 'yes'/'no' everywhere: the same test now stops the run before training.
    later = RunContext.for_ds("2026-11-29")
    raw = spark.read.parquet(str(run_settings.run_folder(CTX.ds_str).snapshot("predictions")))
    from pyspark.sql import functions as F

    spelling = F.expr("CASE verified_outcome WHEN 'positive' THEN 'yes' WHEN 'negative' THEN 'no' END")
    respelt = raw.withColumn("verified_outcome", spelling)
    respelt.write.parquet(str(run_settings.run_folder(later.ds_str).snapshot("predictions")))
    with pytest.raises(
        DataTestError,
        match=r"stg_predictions: accepted_values\(verified_outcome\): \d+ rows .*"
        r"error_if >1%",
    ):
        transform(run_settings, later, spark)


def test_a_run_without_a_snapshot_fails_before_spark_starts(settings, tmp_path, caplog, monkeypatch) -> None:
    """`retrain transform` before `retrain extract`: one line naming the command to run, and no driver started."""
    from jobs import cli

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SPARK_MASTER", settings.spark_master)
    code = cli.main(["transform", "--ds", "2026-11-29"])
    err = caplog.text
    assert code == 2
    assert "No snapshot of source 'predictions'" in err
    assert "retrain extract --ds 2026-11-29" in err
    assert not (tmp_path / "runs").exists()  # no run folder, so no logs/ made by a Spark driver


def test_data_tests_of_a_run_not_built_fail_before_spark_and_the_unit_tests(
    settings, tmp_path, caplog, monkeypatch
) -> None:
    from jobs import cli

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SPARK_MASTER", settings.spark_master)
    assert cli.main(["test", "--ds", "2026-11-29"]) == 2
    assert "No tables of the run of 2026-11-29" in caplog.text
    assert "Run `retrain extract --ds 2026-11-29` and `retrain transform --ds 2026-11-29` first" in caplog.text
    assert not (tmp_path / "runs").exists()
