"""The demo data: the contract's shape and dirty-input mix, determinism, drift, loading, and no password leaks."""

from __future__ import annotations

import json
import logging
from datetime import date
from urllib.parse import quote

import numpy as np
import pandas as pd
import psycopg2
import pytest

from jobs.cli import main
from jobs.demo.clinical import MODELS
from jobs.demo.generator import DIRTY_RATES, HOSTILE_OUTCOMES, KindCounts
from jobs.demo.seed import generate, seed_database
from jobs.errors import ConfigError

ROWS, SEED = 20_000, 42
CATEGORIES = {f.key: set(f.categories) for m in MODELS.values() for f in m.features if f.kind == "category"}
NUMERIC = {f.key for m in MODELS.values() for f in m.features if f.numeric}
LABS = {f.key for m in MODELS.values() for f in m.features if f.lab}


def classify(record_type: str, data: str) -> str:
    """What the contract says a record is, read from the record alone (duplicates are found separately)."""
    try:
        values = json.loads(data)
    except ValueError:
        return "malformed_json"
    if record_type not in MODELS:
        return "unknown_record_type"
    age, bmi = values.get("age"), values.get("bmi")
    if (isinstance(age, int | float) and not 0 <= age <= 120) or (isinstance(bmi, int | float) and bmi <= 0):
        return "impossible_value"
    if any(isinstance(values.get(k), int | float) and values[k] < 0 for k in LABS):
        return "impossible_value"
    if any(isinstance(values.get(k), str) for k in NUMERIC):
        return "numbers_as_strings"
    if len(values) < len(MODELS[record_type].features):
        return "missing_key"
    if any(v is None for v in values.values()):
        return "null_value"
    categorical = {k: v for k, v in values.items() if k in CATEGORIES}
    if any(v in ("other", "n/a") for v in categorical.values()):
        return "unknown_category"
    if any(v not in CATEGORIES[k] for k, v in categorical.items()):
        assert all(v.strip().lower() in CATEGORIES[k] for k, v in categorical.items())
        return "category_variant"
    assert list(values) == [f.key for f in MODELS[record_type].features]
    return "clean"


@pytest.fixture(scope="module")
def data():
    return generate(ROWS, SEED)


def test_rows_users_and_consent(data):
    report = data.report
    assert report.records == len(data.records) == ROWS
    assert report.users == len(data.users) == ROWS // 8
    assert list(data.records["id"]) == list(range(1, ROWS + 1))
    assert set(data.records["user_id"]) <= set(data.users["id"])
    assert data.records["created_at"].is_monotonic_increasing
    assert 0.08 < 1 - report.consenting_users / report.users < 0.12
    assert report.consenting_records == int(data.truth["allow_data_collection"].sum())
    assert data.records["created_at"].max() < pd.Timestamp("2026-11-22", tz="UTC")
    assert data.records["created_at"].min() >= pd.Timestamp("2026-05-24", tz="UTC")
    assert set(data.records["prediction"]) == {"High Risk", "Low Risk"}
    assert data.records["confidence"].between(0.5, 1).all()
    outcomes = data.records["verified_outcome"].dropna()
    assert set(outcomes) <= {"positive", "negative", *HOSTILE_OUTCOMES}
    assert (~outcomes.isin(["positive", "negative"])).sum() == report.unknown_outcome > 0


def test_every_record_is_what_the_report_says(data):
    """Read back from the records alone, each defect kind is found exactly as often as it was injected."""
    records = data.records
    found = np.array([classify(t, d) for t, d in zip(records["record_type"], records["data"], strict=True)])
    key = ["user_id", "record_type", "data", "created_at"]
    duplicate = records.duplicated(subset=key, keep="first").to_numpy()
    assert (found[duplicate] != "malformed_json").all()  # never a duplicate of a quarantined record
    found = np.where(
        duplicate & ~np.isin(found, ["malformed_json", "unknown_record_type", "impossible_value"]), "duplicate", found
    )
    assert (found == data.truth["injected"].to_numpy()).all()
    labelled = records["verified_outcome"].notna().to_numpy()
    assert KindCounts.of(found, labelled) == KindCounts(
        **{k: getattr(data.report, k) for k in KindCounts.__dataclass_fields__}
    )


@pytest.mark.parametrize("kind", list(DIRTY_RATES))
def test_each_defect_at_about_its_rate(data, kind):
    rate = getattr(data.report, kind) / ROWS
    assert abs(rate - DIRTY_RATES[kind]) < 0.3 * DIRTY_RATES[kind] + 0.001, (kind, rate)


def test_labels_arrive_late(data):
    records = data.records
    recent = records["created_at"] >= pd.Timestamp("2026-11-01", tz="UTC")
    old = records["created_at"] < pd.Timestamp("2026-10-01", tz="UTC")
    assert 0.7 < records.loc[old, "verified_outcome"].notna().mean() < 0.9
    assert records.loc[recent, "verified_outcome"].notna().mean() < 0.5


def test_an_outcome_is_dated_when_it_arrived_before_the_end_date(data):
    records = data.records
    labelled = records["verified_outcome"].notna()
    assert (records["verified_at"].notna() == labelled).all()
    delay = (records.loc[labelled, "verified_at"] - records.loc[labelled, "created_at"]).dt.total_seconds() / 86_400
    # 2 days + Exp(mean 12 days); the late ones are cut off by the end date, so the mean seen is lower
    assert delay.min() >= 2 - 1 / 86_400 and 8 < delay.mean() - 2 < 12
    assert (records.loc[labelled, "verified_at"] < pd.Timestamp("2026-11-22", tz="UTC")).all()


def test_same_seed_same_data_other_seed_other_data(data):
    again = generate(ROWS, SEED)
    pd.testing.assert_frame_equal(again.records, data.records)
    pd.testing.assert_frame_equal(again.users, data.users)
    assert again.report == data.report
    other = generate(ROWS, SEED + 1)
    assert not other.records["data"].equals(data.records["data"])
    shifted = generate(100, SEED, end_date=date(2026, 1, 1))
    assert shifted.records["created_at"].max() < pd.Timestamp("2026-01-01", tz="UTC")


def test_outcomes_drift_between_the_first_and_last_month():
    """Glucose separates diabetes outcomes far better early on than at the end, and BMI the other way round."""
    data = generate(60_000, 7)
    records = data.records.join(data.truth[["injected", "outcome"]], rsuffix="_truth")
    records = records[(records["record_type"] == "diabetes") & (records["injected"] == "clean")]
    values = pd.json_normalize(records["data"].map(json.loads).tolist()).set_index(records.index)
    month = records["created_at"].dt.strftime("%Y-%m")
    positive = records["outcome"] == "positive"

    def gap(feature: str, which: str) -> float:
        in_month = month == which
        return values.loc[in_month & positive, feature].mean() - values.loc[in_month & ~positive, feature].mean()

    first, last = month.min(), month.max()
    assert gap("glucose", first) > 2 * gap("glucose", last)
    assert gap("bmi", last) > 2 * gap("bmi", first)


def test_rows_must_be_positive():
    with pytest.raises(ConfigError, match="at least 1"):
        generate(0, 1)


# -- in PostgreSQL ---------------------------------------------------------------------------------------------------


def sql_counts(db) -> dict[str, int]:
    """The dirty-input mix counted by SQL in the seeded database."""
    conn = psycopg2.connect(**db.psycopg_kwargs())
    known = "('diabetes', 'heart', 'liver')"
    numeric = ", ".join(f"'{k}'" for k in sorted(NUMERIC))
    labs = ", ".join(f"'{k}'" for k in sorted(LABS))
    valid = {k: list(v) for k, v in CATEGORIES.items()}
    try:
        with conn, conn.cursor() as cur:
            cur.execute("""
                CREATE FUNCTION pg_temp.try_json(t text) RETURNS jsonb LANGUAGE plpgsql AS
                $$ BEGIN RETURN t::jsonb; EXCEPTION WHEN others THEN RETURN NULL; END $$
            """)
            cur.execute("""
                CREATE TEMP TABLE j AS
                SELECT r.id, r.record_type, pg_temp.try_json(r.data) AS doc, r.verified_outcome,
                       EXISTS (SELECT 1 FROM health_records o WHERE o.user_id = r.user_id AND o.id < r.id
                               AND o.record_type = r.record_type AND o.data = r.data
                               AND o.created_at = r.created_at) AS dup
                FROM health_records r;
                CREATE TEMP TABLE kv AS
                SELECT j.id, e.key, e.value FROM j, jsonb_each(j.doc) e WHERE j.doc IS NOT NULL;
            """)
            soft = "NOT dup AND id IN (SELECT id FROM kv WHERE"  # kept defects, counted on originals only
            cur.execute(
                f"""
                SELECT
                  count(*) FILTER (WHERE doc IS NULL) AS malformed_json,
                  count(*) FILTER (WHERE doc IS NOT NULL AND record_type NOT IN {known}) AS unknown_record_type,
                  count(*) FILTER (WHERE record_type IN {known} AND id IN (
                      SELECT id FROM kv WHERE jsonb_typeof(value) = 'number' AND (
                        (key = 'age' AND (value::numeric < 0 OR value::numeric > 120))
                        OR (key = 'bmi' AND value::numeric <= 0)
                        OR (key IN ({labs}) AND value::numeric < 0)))) AS impossible_value,
                  count(*) FILTER (WHERE dup) AS duplicate,
                  count(*) FILTER (WHERE {soft} key IN ({numeric}) AND jsonb_typeof(value) = 'string'))
                    AS numbers_as_strings,
                  count(*) FILTER (WHERE {soft} key IN (SELECT jsonb_object_keys(%(valid)s::jsonb))
                                   AND NOT (%(valid)s::jsonb -> key ? (value #>> '{{}}'))
                                   AND %(valid)s::jsonb -> key ? lower(trim(value #>> '{{}}'))))
                    AS category_variant,
                  count(*) FILTER (WHERE NOT dup AND doc IS NOT NULL AND record_type IN {known}
                                   AND (SELECT count(*) FROM jsonb_object_keys(doc)) < 8) AS missing_key,
                  count(*) FILTER (WHERE {soft} jsonb_typeof(value) = 'null')) AS null_value,
                  count(*) FILTER (WHERE {soft} value #>> '{{}}' IN ('other', 'n/a'))) AS unknown_category,
                  count(*) FILTER (WHERE verified_outcome IS NOT NULL) AS labelled
                FROM j
            """,
                {"valid": json.dumps(valid)},
            )
            names = [c.name for c in cur.description]
            row = cur.fetchone()
    finally:
        conn.close()
    return dict(zip(names, row, strict=True))


def fingerprint(db) -> tuple:
    conn = psycopg2.connect(**db.psycopg_kwargs())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT md5(string_agg(r::text, '|' ORDER BY id)) FROM health_records r")
            records = cur.fetchone()[0]
            cur.execute("SELECT md5(string_agg(u::text, '|' ORDER BY id)) FROM users u")
            return records, cur.fetchone()[0]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def seeded(pg_admin):
    report, loaded = seed_database(pg_admin, ROWS, SEED)  # the tables' owner: the pipeline's role cannot replace rows
    return pg_admin, report, loaded


def test_seeded_database_holds_the_generated_rows(seeded, data):
    db, report, loaded = seeded
    assert report == data.report
    assert (loaded.users, loaded.records) == (report.users, ROWS)
    conn = psycopg2.connect(**db.psycopg_kwargs())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT user_id), min(id), max(id) FROM health_records")
            count, _, lo, hi = cur.fetchone()
            assert (count, lo, hi) == (ROWS, 1, ROWS)
            cur.execute("SELECT count(*), count(*) FILTER (WHERE allow_data_collection) FROM users")
            assert cur.fetchone() == (report.users, report.consenting_users)
            cur.execute(
                "SELECT count(*) FROM health_records r JOIN users u ON u.id = r.user_id WHERE u.allow_data_collection"
            )
            assert cur.fetchone()[0] == report.consenting_records
            cur.execute("SELECT data, created_at, confidence FROM health_records WHERE id = 1")
            data_, created, confidence = cur.fetchone()
            first = data.records.iloc[0]
            assert (data_, pd.Timestamp(created), confidence) == (
                first["data"],
                first["created_at"],
                first["confidence"],
            )
            cur.execute("SELECT id, verified_at FROM health_records ORDER BY id")
            stored = pd.Series([pd.Timestamp(v) if v else pd.NaT for _, v in cur.fetchall()], dtype=object)
            expected = data.records["verified_at"].astype(object)
            assert all((a is pd.NaT and b is pd.NaT) or a == b for a, b in zip(stored, expected, strict=True))
            cur.execute("SELECT nextval(pg_get_serial_sequence('health_records', 'id'))")
            assert cur.fetchone()[0] == ROWS + 1
    finally:
        conn.close()


def test_sql_finds_the_dirty_mix_the_report_states(seeded):
    db, report, _ = seeded
    counts = sql_counts(db)
    assert counts == {k: getattr(report, k) for k in counts}
    for kind, rate in DIRTY_RATES.items():
        assert abs(counts[kind] / ROWS - rate) < 0.3 * rate + 0.001, kind


def test_seeding_again_replaces_the_data(seeded):
    db, _, _ = seeded
    before = fingerprint(db)
    seed_database(db, ROWS, SEED + 1)
    assert fingerprint(db) != before
    seed_database(db, ROWS, SEED)
    assert fingerprint(db) == before


def test_cli_seed_on_the_embedded_database_logs_which_first(pg_cluster, monkeypatch, caplog, capsys):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("RETRAIN_PG_DIR", str(pg_cluster.data_dir))
    monkeypatch.setenv("RETRAIN_PG_PORT", str(pg_cluster.port))
    caplog.set_level(logging.INFO)
    before = fingerprint(pg_cluster.database_url())
    assert main(["db", "seed", "--rows", str(ROWS), "--seed", str(SEED)]) == 0
    assert caplog.records[0].getMessage().startswith("DATABASE_URL is unset: using the embedded PostgreSQL")
    assert json.loads(capsys.readouterr().out)["report"]["records"] == ROWS
    assert fingerprint(pg_cluster.database_url()) == before


PASSWORD = "s3cr@t:pa%ss/wörd"


def test_no_password_in_logs_or_output(pg_admin, monkeypatch, caplog, capsys):
    conn = psycopg2.connect(**pg_admin.psycopg_kwargs())  # seeding replaces rows: the tables' owner's work
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("ALTER ROLE postgres PASSWORD %s", (PASSWORD,))
    try:
        caplog.set_level(logging.DEBUG)
        url = f"postgresql://postgres:{quote(PASSWORD, safe='')}@127.0.0.1:{pg_admin.port}/retrain"
        monkeypatch.setenv("DATABASE_URL", url)
        # Not the embedded database and not empty: refused without --force.
        assert main(["db", "seed", "--rows", "500"]) == 2
        assert main(["-v", "db", "seed", "--rows", str(ROWS), "--seed", str(SEED), "--force"]) == 0
        monkeypatch.setenv("DATABASE_URL", url.replace("/retrain", "/no_such_db"))
        assert main(["-v", "db", "seed", "--rows", "500", "--force"]) == 1
        out, err = capsys.readouterr()
        text = "\n".join([out, err, caplog.text])
        assert "postgres:***@127.0.0.1" in text and "no_such_db" in text
        for secret in (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD), "s3cr@t", "pa%ss"):
            assert secret not in text
    finally:
        with conn.cursor() as cur:
            cur.execute("ALTER ROLE postgres PASSWORD %s", (pg_admin.password,))
        conn.close()
