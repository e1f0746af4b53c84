"""Three consecutive Sundays of the real SQL project, incremental, against a full refresh of the later two: every
table equal row for row, with outcomes arriving late, a consent withdrawal, a deleted record and a duplicate of an
earlier week's record in between."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest
from chispa import assert_df_equality

from jobs.demo.generator import generate
from jobs.demo.loader import load
from jobs.extract import extract
from jobs.run_context import RunContext
from jobs.spark.atomic import read_manifest
from jobs.transform import transform
from tests.conftest import empty_tables

SUNDAYS = ("2026-11-08", "2026-11-15", "2026-11-22")
TABLES = ("stg_predictions", "quarantine", "diabetes_features", "heart_features", "liver_features")


def execute(admin, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg2

    with psycopg2.connect(**admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


def between_first_and_second(admin) -> dict[str, int]:
    """A patient withdraws consent, a record is deleted, an old record's outcome arrives late."""
    user = execute(
        admin,
        "SELECT r.user_id FROM health_records r JOIN users u ON u.id = r.user_id WHERE u.allow_data_collection "
        "AND r.created_at < '2026-11-08' GROUP BY r.user_id ORDER BY count(*) DESC LIMIT 1",
    )[0][0]
    execute(admin, "UPDATE users SET allow_data_collection = false WHERE id = %s", (user,))
    deleted = execute(admin, "SELECT max(id) FROM health_records WHERE created_at < '2026-11-01'")[0][0]
    execute(admin, "DELETE FROM health_records WHERE id = %s", (deleted,))
    late = execute(
        admin,
        "SELECT min(r.id) FROM health_records r JOIN users u ON u.id = r.user_id WHERE u.allow_data_collection "
        "AND r.verified_outcome IS NULL AND r.record_type = 'diabetes' AND r.created_at < '2026-10-01'",
    )[0][0]
    execute(
        admin,
        "UPDATE health_records SET verified_outcome = 'positive', verified_at = '2026-11-12' WHERE id = %s",
        (late,),
    )
    return {"user": user, "deleted": deleted, "late": late}


def between_second_and_third(admin, original: int, repeat: int) -> dict[str, int]:
    """The backend logs a submission of the week before a second time (a retry that arrived late), and the first of
    an earlier repeated submission is deleted: its repeat is no longer a duplicate."""
    duplicate = execute(
        admin,
        "INSERT INTO health_records (user_id, record_type, data, prediction, confidence, model_version, created_at) "
        "SELECT user_id, record_type, data, prediction, confidence, model_version, created_at "
        "FROM health_records WHERE id = %s RETURNING id",
        (original,),
    )[0][0]
    first, second = execute(
        admin,
        "SELECT o.id FROM health_records o JOIN health_records d ON o.user_id = d.user_id "
        "AND o.record_type = d.record_type AND o.data::text = d.data::text AND o.created_at = d.created_at "
        "WHERE d.id = %s ORDER BY o.id LIMIT 2",
        (repeat,),
    )
    execute(admin, "DELETE FROM health_records WHERE id = %s", (first[0],))
    return {"duplicate": duplicate, "no_longer_a_duplicate": second[0]}


def a_repeat_of_the_second_sunday(spark, folder) -> int:
    rows = spark.read.parquet(str(folder.feature_table("quarantine")))
    return rows.where("quarantine_reason = 'duplicate'").agg({"record_id": "min"}).first()[0]


def a_clean_record_of_the_second_week(spark, folder) -> int:
    rows = spark.read.parquet(str(folder.feature_table("heart_features")))
    return rows.where("created_at >= '2026-11-08' AND created_at < '2026-11-15'").agg({"record_id": "min"}).first()[0]


@pytest.fixture(scope="module")
def sundays(spark, settings, pg_cluster, tmp_path_factory):
    """Each Sunday run twice: incrementally in one data folder, and from scratch in a folder of its own."""
    db, admin = pg_cluster.database_url(), pg_cluster.admin_url()
    load(admin, generate(6_000, 5, end_date=date(2026, 11, 22)))
    weekly = dataclasses.replace(settings, database_url=db.full_url(), data_dir=tmp_path_factory.mktemp("weekly"))
    runs, changes = [], {}
    for n, ds in enumerate(SUNDAYS):
        if n == 1:
            changes.update(between_first_and_second(admin))
        if n == 2:
            second = runs[1][1]
            changes.update(
                between_second_and_third(
                    admin,
                    a_clean_record_of_the_second_week(spark, second),
                    a_repeat_of_the_second_sunday(spark, second),
                )
            )
        ctx = RunContext.for_ds(ds)
        extract(weekly, ctx, spark)
        incremental = transform(weekly, ctx, spark)
        full = None
        if n > 0:  # the first Sunday has nothing to build on: it is a full refresh already
            full = dataclasses.replace(weekly, data_dir=tmp_path_factory.mktemp(f"full-{ds}"))
            extract(full, ctx, spark)
            transform(full, ctx, spark, full_refresh=True)
        runs.append((ds, weekly.run_folder(ds), full and full.run_folder(ds), incremental))
    yield runs, changes
    empty_tables(admin)


def test_every_table_of_every_sunday_equals_a_full_refresh(spark, sundays) -> None:
    runs, _ = sundays
    for ds, weekly, full, _ in runs[1:]:
        for table in TABLES:
            got = spark.read.parquet(str(weekly.feature_table(table)))
            expected = spark.read.parquet(str(full.feature_table(table)))
            assert got.count() > 0, (ds, table)
            assert_df_equality(got, expected.select(*got.columns), ignore_row_order=True)


def test_each_sunday_builds_on_the_one_before(sundays) -> None:
    runs, _ = sundays
    previous = [read_manifest(weekly.feature_table("stg_predictions"))["previous_ds"] for _, weekly, _, _ in runs]
    assert previous == [None, *SUNDAYS[:2]]
    modes = [read_manifest(weekly.snapshot("predictions"))["mode"] for _, weekly, _, _ in runs]
    assert modes == ["full", "incremental", "incremental"]  # the extract, too, read only what changed
    for ds, weekly, _, outcome in runs:
        assert outcome.rows("stg_predictions") == read_manifest(weekly.feature_table("stg_predictions"))["rows"]
        assert json.loads(weekly.transform_summary.read_text())["ds"] == ds


def test_a_records_json_is_parsed_once(spark, tmp_path) -> None:
    """Week 2 sees every week-1 record with different JSON: its parsed values are still week 1's, because only
    records the previous output lacks are parsed."""
    import functools

    from jobs.run_context import RunFolder
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.incremental import find_previous
    from jobs.sqlproject.project import load_project
    from jobs.sqlproject.runner import SqlRunner
    from tests.conftest import REPO_ROOT

    project = load_project(REPO_ROOT / "sql")
    schema = project.sources["predictions"].spark_schema_ddl
    records = generate(400, 3, end_date=date(2026, 11, 22)).records
    columns = [c.split()[0].strip("`") for c in schema.split(", ")]
    week1 = records[records.created_at < "2026-11-15"]
    changed = records.assign(data=records.data.where(~records.id.isin(week1.id), '{"age": "999"}'))

    def run(ds: str, frame):
        source = spark.createDataFrame(frame[columns], schema)
        folder = RunFolder.under(tmp_path, ds)
        compiled = CompiledProject.build(
            project, RunContext.for_ds(ds), previous=functools.partial(find_previous, folder)
        )
        SqlRunner(spark, compiled, folder.features).run(lambda spark_, s: source, ["stg_predictions"])
        return spark.read.parquet(str(folder.feature_table("stg_predictions")))

    first = run("2026-11-15", week1)
    second = run("2026-11-22", changed)
    old = second.join(first.select("record_id"), "record_id", "left_semi")
    assert old.count() == first.count() and old.where("age = 999").count() == 0
    assert_df_equality(
        old.select("record_id", "age", "bmi"), first.select("record_id", "age", "bmi"), ignore_row_order=True
    )
    assert second.count() == len(records)


def test_a_withdrawn_or_deleted_record_is_gone_and_a_late_repeat_is_a_duplicate(spark, sundays) -> None:
    runs, changes = sundays
    second, third = runs[1][1], runs[2][1]
    for table in TABLES:
        rows = spark.read.parquet(str(second.feature_table(table)))
        assert rows.where(f"user_id = {changes['user']} OR record_id = {changes['deleted']}").count() == 0, table
    # The late outcome reaches its feature table; a repeat whose original was deleted is usable again.
    labels = [
        row.label
        for table in ("diabetes_features", "heart_features", "liver_features")
        for row in spark.read.parquet(str(second.feature_table(table)))
        .where(f"record_id = {changes['late']}")
        .collect()
    ]
    assert labels == [1]
    quarantine = spark.read.parquet(str(third.feature_table("quarantine")))
    assert quarantine.where(f"record_id = {changes['duplicate']}").first().quarantine_reason == "duplicate"
    assert quarantine.where(
        f"record_id = {changes['no_longer_a_duplicate']} AND quarantine_reason = 'duplicate'"
    ).isEmpty()
