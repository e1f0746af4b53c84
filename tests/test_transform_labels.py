"""Labels as of the run: extract -> transform against a real PostgreSQL and Spark.

An outcome counts in a run only if it was written (``verified_at``) before the run's ``data_interval_end``, so
re-running an old date builds the same feature tables however many outcomes arrived since. A database without the
column still works, with one warning saying what that costs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extras
import pytest

from jobs.extract import extract
from jobs.postgres.embedded import apply_schema
from jobs.postgres.url import DatabaseUrl
from jobs.run_context import RunContext
from jobs.settings import Settings
from jobs.spark.atomic import read_manifest
from jobs.transform import transform

OLD = RunContext.for_ds("2026-06-01")
NEW = RunContext.for_ds("2026-06-15")
END = OLD.data_interval_end
BODIES = {  # every key stg_predictions reads appears (its json_keys_present data test)
    "diabetes": '{{"age": {age}, "bmi": 27.5, "glucose": 110, "blood_pressure": 80, "insulin": 90.5, "pregnancies": 1, '
    '"family_history": true, "physical_activity": "low"}}',
    "heart": '{{"age": {age}, "sex": "female", "chest_pain_type": "typical", "resting_bp": 130, "cholesterol": 210, '
    '"max_heart_rate": 150, "exercise_angina": false, "smoker": true}}',
    "liver": '{{"age": {age}, "sex": "male", "total_bilirubin": 0.9, "alkaline_phosphatase": 80, "alt": 30, "ast": 45, '
    '"albumin": 4.1, "alcohol_use": "none"}}',
}
FEATURES = ("diabetes_features", "heart_features", "liver_features")


def seed(db: DatabaseUrl, *, dated: bool = True) -> dict[str, int]:
    """20 records of each type over the 140 hours before ``END``; every other one verified a day after it was made
    (so the newest of those after ``END``). Returns the id of an unverified heart record, and counts."""
    users = [(u, True) for u in range(1, 31)]
    records = []
    for kind in BODIES:
        for i in range(20):
            created = END - timedelta(hours=7 * (i + 1))
            outcome = ("positive" if i % 4 == 0 else "negative") if i % 2 == 0 else None
            verified = created + timedelta(days=1) if outcome else None
            user = 1 + (i + len(records)) % 30
            records.append((user, kind, BODIES[kind].format(age=30 + i), outcome, created, verified))
    records.append((1, "heart", '{"age": 4', None, END - timedelta(hours=1), None))  # quarantined: malformed_json
    with psycopg2.connect(**db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(cur, "INSERT INTO users (id, allow_data_collection) VALUES %s", users)
        columns = "user_id, record_type, data, prediction, confidence, model_version, verified_outcome, created_at"
        rows = [(u, k, d, "Low Risk", 0.8, "v1", o, c) + ((v,) if dated else ()) for u, k, d, o, c, v in records]
        psycopg2.extras.execute_values(
            cur, f"INSERT INTO health_records ({columns}{', verified_at' if dated else ''}) VALUES %s", rows
        )
        cur.execute(
            "SELECT min(id) FROM health_records WHERE record_type = 'heart' AND verified_outcome IS NULL "
            "AND created_at < %s",
            (END - timedelta(days=3),),
        )
        unverified = cur.fetchone()[0]
    verified_late = sum(1 for r in records if r[5] is not None and r[5] >= END)
    return {"unverified": unverified, "verified_late": verified_late}


def build(spark: Any, settings: Settings, ctx: RunContext) -> dict[str, list[tuple]]:
    """extract + transform for ``ctx``; every feature table's rows, in record order."""
    extract(settings, ctx, spark)
    transform(settings, ctx, spark)
    folder = settings.run_folder(ctx.ds_str)
    return {
        name: [tuple(row) for row in spark.read.parquet(str(folder.feature_table(name))).orderBy("record_id").collect()]
        for name in FEATURES
    }


def table(spark: Any, settings: Settings, ctx: RunContext, name: str) -> dict[int, dict[str, Any]]:
    path = settings.run_folder(ctx.ds_str).feature_table(name)
    return {row["record_id"]: row.asDict() for row in spark.read.parquet(str(path)).collect()}


@pytest.fixture
def run_settings(settings: Settings, empty_db: DatabaseUrl, tmp_path: Path) -> Settings:
    return dataclasses.replace(settings, database_url=empty_db.full_url(), data_dir=tmp_path / "data")


def test_an_outcome_verified_later_does_not_change_an_old_run(spark, run_settings, empty_db) -> None:
    seeded = seed(empty_db)
    before = build(spark, run_settings, OLD)
    heart = table(spark, run_settings, OLD, "heart_features")
    assert heart[seeded["unverified"]]["label"] is None
    late = [r for t in FEATURES for r in table(spark, run_settings, OLD, t).values() if r["label"] is None]
    assert len(late) == 3 * 10 + seeded["verified_late"]  # the never verified, and those verified after END
    known = [r for r in heart.values() if r["label"] is not None]
    assert known and all(r["verified_at"] < END.replace(tzinfo=None) for r in known)
    assert {r["user_id"] for r in heart.values()} <= set(range(1, 31))

    # The outcome arrives three days after the old run's interval ended.
    with psycopg2.connect(**empty_db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE health_records SET verified_outcome = 'positive', verified_at = %s WHERE id = %s",
            (END + timedelta(days=3), seeded["unverified"]),
        )

    assert build(spark, run_settings, OLD) == before  # re-running the old date: the same tables, row for row
    build(spark, run_settings, NEW)  # a later run knows it
    record = table(spark, run_settings, NEW, "heart_features")[seeded["unverified"]]
    assert record["label"] == 1 and record["verified_at"] == (END + timedelta(days=3)).replace(tzinfo=None)


@pytest.fixture
def undated_db(empty_db: DatabaseUrl) -> Iterator[DatabaseUrl]:
    """The test database as a backend older than verified_at left it: the column does not exist."""
    with psycopg2.connect(**empty_db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE health_records DROP COLUMN verified_at")
    try:
        yield empty_db
    finally:
        apply_schema(empty_db)  # the column back, as every other test expects it


def test_a_database_without_verified_at_works_and_warns_once(spark, run_settings, undated_db, caplog) -> None:
    seed(undated_db, dated=False)
    with caplog.at_level(logging.WARNING):
        tables = build(spark, run_settings, OLD)

    notices = [r.getMessage() for r in caplog.records if "verified_at" in r.getMessage()]
    assert len(notices) == 1, notices
    assert "health_records has no column verified_at" in notices[0]
    assert "outcomes cannot be dated" in notices[0] and "re-running an old ds" in notices[0]
    snapshot = run_settings.run_folder(OLD.ds_str).snapshot("predictions")
    assert read_manifest(snapshot)["absent_columns"] == ["verified_at"]
    # Undated outcomes count as known: every verified record is labelled, and nothing is dated.
    assert all(len(rows) == 20 for rows in tables.values())
    rows = [r for t in FEATURES for r in table(spark, run_settings, OLD, t).values()]
    assert sum(r["label"] is not None for r in rows) == 30
    assert all(r["verified_at"] is None for r in rows)
