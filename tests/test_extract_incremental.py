"""The incremental extract against a real PostgreSQL and a real Spark session: a week later, only the new rows are
read in full, and the source's view is still exactly what a full read gives."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest
from chispa import assert_df_equality

from jobs.errors import ConfigError, SqlProjectError
from jobs.extract import FULL_REFRESH_ASKED, extract
from jobs.postgres import incremental
from jobs.postgres.url import DatabaseUrl
from jobs.run_context import RunContext
from jobs.settings import Settings
from jobs.spark.atomic import MANIFEST, read_manifest
from jobs.spark.batches import CHANGED_DIR, FORMAT, REFRESH_DIR
from jobs.sqlproject.config import load_sources
from jobs.sqlproject.sources import snapshot_reader
from tests.conftest import REPO_ROOT

DS1, DS2, DS3 = "2026-06-01", "2026-06-08", "2026-06-15"
END1, END2 = (RunContext.for_ds(ds).data_interval_end for ds in (DS1, DS2))
LOOKBACK = {"lookback_days": 30}
USERS = 20
#: ids the first week lacks: they are committed late, inside the window, before the second week's extract
LATE = range(150, 155)
#: the user who withdraws consent before the second week
WITHDRAWS = 7


def record(id_: int, created_at: datetime) -> tuple:
    outcome = "negative" if id_ % 4 == 0 else None
    verified_at = created_at + timedelta(hours=1) if outcome else None
    return (id_, 1 + id_ % USERS, "diabetes", f'{{"age": {20 + id_ % 60}}}', "Low Risk", 0.8, "v1", outcome,
            verified_at, created_at)  # fmt: skip


def insert(db: DatabaseUrl, records: list[tuple], users: int = 0) -> None:
    with psycopg2.connect(**db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        if users:
            psycopg2.extras.execute_values(
                cur, "INSERT INTO users (id, allow_data_collection) VALUES %s", [(u, True) for u in range(1, users + 1)]
            )
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO health_records (id, user_id, record_type, data, prediction, confidence, model_version, "
            "verified_outcome, verified_at, created_at) VALUES %s",
            records,
        )
        # Explicit ids: the sequence moves past them, so a later test's backend insert takes a free id.
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('health_records', 'id'), (SELECT max(id) FROM health_records))"
        )


def execute(db: DatabaseUrl, *statements: str) -> None:
    with psycopg2.connect(**db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def window_ids(db: DatabaseUrl, ds: str) -> set[int]:
    """The ids a full read of ``ds``'s window holds: consented, inside the window."""
    start, end = RunContext.for_ds(ds).window(LOOKBACK["lookback_days"])
    with psycopg2.connect(**db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT r.id FROM health_records r JOIN users u ON u.id = r.user_id WHERE u.allow_data_collection "
            "AND r.created_at >= %s AND r.created_at < %s",
            (start, end),
        )
        return {row[0] for row in cur.fetchall()}


def settings_for(settings: Settings, db: DatabaseUrl, data_dir: Path) -> Settings:
    return dataclasses.replace(settings, database_url=db.full_url(), data_dir=data_dir)


def manifest_of(run_settings: Settings, ds: str) -> dict:
    return read_manifest(run_settings.run_folder(ds).snapshot("predictions"))


def view(spark, run_settings: Settings, ds: str):
    """The source as the SQL models read it."""
    source = load_sources(REPO_ROOT / "sql")["predictions"]
    return snapshot_reader(run_settings.run_folder(ds).raw)(spark, source)


@pytest.fixture
def first_week(empty_db: DatabaseUrl) -> DatabaseUrl:
    """300 records, one every two hours up to the first run's end (ids rise with time), ids 150-154 missing."""
    insert(
        empty_db,
        [record(i, END1 - timedelta(hours=2 * (301 - i))) for i in range(1, 301) if i not in LATE],
        users=USERS,
    )
    return empty_db


def second_week(db: DatabaseUrl) -> None:
    """40 new records, the late ones, an outcome written, a record deleted, a user's consent withdrawn."""
    insert(db, [record(300 + k, END1 + timedelta(hours=3 * k + 1)) for k in range(1, 41)])
    insert(db, [record(i, END1 - timedelta(days=3, hours=i - 149)) for i in LATE])
    execute(
        db,
        "UPDATE health_records SET verified_outcome = 'positive', "
        f"verified_at = TIMESTAMPTZ '{END1 + timedelta(days=1)}' WHERE id = 250",
        "DELETE FROM health_records WHERE id = 200",
        f"UPDATE users SET allow_data_collection = false WHERE id = {WITHDRAWS}",
    )


def test_a_week_later_only_the_new_rows_are_read_and_the_view_equals_a_full_read(
    spark, settings, first_week, tmp_path, caplog
) -> None:
    caplog.set_level(logging.INFO)
    run = settings_for(settings, first_week, tmp_path / "incremental")
    full = settings_for(settings, first_week, tmp_path / "full")

    first = extract(run, RunContext.for_ds(DS1), spark, vars_overrides=LOOKBACK).snapshots[0]
    assert (first.mode, first.previous, first.rows, first.new_rows) == ("full", None, 295, 295)
    assert "Source predictions: full read: no earlier run folder" in caplog.text
    ids_week1 = window_ids(first_week, DS1)

    second_week(first_week)
    ids_week2 = window_ids(first_week, DS2)
    (snapshot,) = extract(run, RunContext.for_ds(DS2), spark, vars_overrides=LOOKBACK).snapshots
    manifest = manifest_of(run, DS2)
    assert manifest == {**json.loads(json.dumps(dataclasses.asdict(snapshot))), "batches": manifest["batches"]}
    assert (manifest["format"], manifest["mode"], manifest["full_read_reason"], manifest["previous"]) == (
        FORMAT,
        "incremental",
        None,
        DS1,
    )
    assert manifest["refresh_columns"] == ["verified_outcome", "verified_at"]
    # 40 new, less the 2 of the user who withdrew consent; and the 5 committed late
    assert manifest["new_rows"] == len(ids_week2 - ids_week1) == 38 + len(LATE)
    # ids 1-24 aged out of the window, 200 was deleted, and the records of the user who withdrew consent left
    withdrawn = {i for i in ids_week1 if 1 + i % USERS == WITHDRAWS and i >= 25 and i != 200}
    assert manifest["dropped_rows"] == len(ids_week1 - ids_week2) == 24 + 1 + len(withdrawn)
    assert manifest["rows"] == len(ids_week2) == sum(b["rows"] for b in manifest["batches"])
    assert [b["batch"] for b in manifest["batches"]] == [DS1, DS2]
    folder = Path(snapshot.path)
    assert all(name.startswith(f"b{b['batch']}-") for b in manifest["batches"] for name in b["files"])
    assert (folder / REFRESH_DIR).is_dir()
    # the one outcome that changed since its row was read: what readers patch the batches with (broadcast)
    assert [row.id for row in spark.read.parquet(str(folder / CHANGED_DIR)).collect()] == [250]
    assert manifest["batches"][1]["id_max"] == 340

    extract(full, RunContext.for_ds(DS2), spark, vars_overrides=LOOKBACK, full_refresh=True)
    assert (manifest_of(full, DS2)["mode"], manifest_of(full, DS2)["full_read_reason"]) == ("full", FULL_REFRESH_ASKED)
    incremental_view, full_view = view(spark, run, DS2), view(spark, full, DS2)
    assert_df_equality(incremental_view, full_view, ignore_row_order=True)
    assert incremental_view.where("id = 250").first()["verified_outcome"] == "positive"  # the refresh column's now

    # A week later: the second week's batch lost no row and the first's only rows older than the window, so both
    # are hard-linked (readers skip the old rows); nothing is rewritten.
    insert(first_week, [record(400 + k, END2 + timedelta(hours=5 * k + 1)) for k in range(20)])
    execute(first_week, "UPDATE health_records SET verified_outcome = 'negative' WHERE id = 320")
    extract(run, RunContext.for_ds(DS3), spark, vars_overrides=LOOKBACK)
    third = manifest_of(run, DS3)
    assert (third["mode"], third["previous"], third["new_rows"]) == ("incremental", DS2, 19)  # 406 withdrew
    # ids 25-108 aged out, less the 5 of the user who withdrew consent
    assert third["dropped_rows"] == len(window_ids(first_week, DS2) - window_ids(first_week, DS3)) == 84 - 5
    assert [b["batch"] for b in third["batches"]] == [DS1, DS2, DS3]
    assert third["batches"][:2] == manifest["batches"]
    for name in (*third["batches"][0]["files"], *third["batches"][1]["files"]):
        assert os.stat(folder.parent.parent.parent / f"ds={DS3}" / "raw" / "predictions" / name).st_ino == (
            os.stat(folder / name).st_ino
        )
    extract(full, RunContext.for_ds(DS3), spark, vars_overrides=LOOKBACK, full_refresh=True)
    assert_df_equality(view(spark, run, DS3), view(spark, full, DS3), ignore_row_order=True)
    assert view(spark, run, DS3).where("id = 320").first()["verified_outcome"] == "negative"


def quiet_week(db: DatabaseUrl) -> None:
    """An ordinary week: 30 new records and two outcomes written, each dated when written; nothing deleted."""
    insert(db, [record(300 + k, END1 + timedelta(hours=5 * k + 1)) for k in range(1, 31)])
    execute(
        db,
        "UPDATE health_records SET verified_outcome = 'positive', "
        f"verified_at = TIMESTAMPTZ '{END1 + timedelta(days=2)}' WHERE id IN (251, 302)",
    )


def test_an_ordinary_week_reads_only_the_new_and_updated_rows_and_checks_the_rest_in_postgres(
    spark, settings, first_week, tmp_path, caplog
) -> None:
    run = settings_for(settings, first_week, tmp_path / "incremental")
    full = settings_for(settings, first_week, tmp_path / "full")
    extract(run, RunContext.for_ds(DS1), spark, vars_overrides=LOOKBACK)
    quiet_week(first_week)
    caplog.clear()
    caplog.set_level(logging.INFO)
    (snapshot,) = extract(run, RunContext.for_ds(DS2), spark, vars_overrides=LOOKBACK).snapshots

    assert (snapshot.mode, snapshot.previous, snapshot.new_rows) == ("incremental", DS1, 30)
    assert snapshot.dropped_rows == len(window_ids(first_week, DS1) - window_ids(first_week, DS2)) == 24
    assert "checked in PostgreSQL (count and checksum), not read" in caplog.text
    assert "re-reading the window's keys" not in caplog.text
    folder = Path(snapshot.path)
    assert not (folder / REFRESH_DIR).exists()  # the window was not re-read
    # read again: the outcome written this week (251), and the ones dated since a day before the last window's end
    changed = {row.id for row in spark.read.parquet(str(folder / CHANGED_DIR)).collect()}
    assert 251 in changed and 302 not in changed
    first_batch = manifest_of(run, DS1)["batches"][0]["files"][0]
    previous_folder = run.run_folder(DS1).snapshot("predictions")
    assert os.stat(folder / first_batch).st_ino == os.stat(previous_folder / first_batch).st_ino

    extract(full, RunContext.for_ds(DS2), spark, vars_overrides=LOOKBACK, full_refresh=True)
    incremental_view = view(spark, run, DS2)
    assert_df_equality(incremental_view, view(spark, full, DS2), ignore_row_order=True)
    assert {row.id: row.verified_outcome for row in incremental_view.where("id IN (251, 302)").collect()} == {
        251: "positive",
        302: "positive",
    }


@pytest.mark.parametrize(
    ("change", "fewer_rows", "fewer_dated"),
    [
        ("UPDATE health_records SET verified_outcome = NULL, verified_at = NULL WHERE id = 260", 0, 1),  # cleared
        ("DELETE FROM health_records WHERE id = 261", 1, 0),  # no outcome
        # the user's 14 records in the window, none with an outcome
        (f"UPDATE users SET allow_data_collection = false WHERE id = {WITHDRAWS}", 14, 0),
    ],
)
def test_a_change_the_check_in_postgres_sees_re_reads_the_windows_keys(
    spark, settings, first_week, tmp_path, caplog, change, fewer_rows, fewer_dated
) -> None:
    run = settings_for(settings, first_week, tmp_path / "incremental")
    full = settings_for(settings, first_week, tmp_path / "full")
    extract(run, RunContext.for_ds(DS1), spark, vars_overrides=LOOKBACK)
    quiet_week(first_week)
    execute(first_week, change)
    caplog.clear()
    caplog.set_level(logging.INFO)
    (snapshot,) = extract(run, RunContext.for_ds(DS2), spark, vars_overrides=LOOKBACK).snapshots
    assert (snapshot.mode, snapshot.previous) == ("incremental", DS1)
    line = next(r.getMessage() for r in caplog.records if "re-reading the window's keys" in r.getMessage())
    found = re.search(
        r"PostgreSQL counts (\d+) rows .* \((\d+) with verified_at\), the snapshot of ds=\S+ (\d+) \((\d+)\)", line
    )
    assert found, line
    rows, dated, held_rows, held_dated = map(int, found.groups())
    assert (held_rows - rows, held_dated - dated) == (fewer_rows, fewer_dated)
    assert (Path(snapshot.path) / REFRESH_DIR).is_dir()
    extract(full, RunContext.for_ds(DS2), spark, vars_overrides=LOOKBACK, full_refresh=True)
    assert_df_equality(view(spark, run, DS2), view(spark, full, DS2), ignore_row_order=True)


def damage_manifest(folder: Path) -> None:
    (folder / MANIFEST).write_text("{not json", encoding="utf-8")


def remove_manifest(folder: Path) -> None:
    (folder / MANIFEST).unlink()


def remove_a_data_file(folder: Path) -> None:
    next(folder.glob("b*.parquet")).unlink()


def make_it_older(folder: Path) -> None:
    manifest = read_manifest(folder)
    del manifest["format"], manifest["batches"]
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize(
    ("damage", "reason", "level"),
    [
        (damage_manifest, "cannot be read", logging.WARNING),
        (remove_manifest, "has no manifest", logging.WARNING),
        (remove_a_data_file, "data file(s) that are missing", logging.WARNING),
        (make_it_older, "has format 1; this extract writes format 3", logging.INFO),
    ],
)
def test_an_unusable_previous_snapshot_means_a_full_read_and_says_why(
    spark, settings, first_week, tmp_path, caplog, damage, reason, level
) -> None:
    run = settings_for(settings, first_week, tmp_path / "data")
    extract(run, RunContext.for_ds(DS1), spark, vars_overrides=LOOKBACK)
    damage(run.run_folder(DS1).snapshot("predictions"))
    second_week(first_week)
    caplog.clear()
    caplog.set_level(logging.INFO)
    (snapshot,) = extract(run, RunContext.for_ds(DS2), spark, vars_overrides=LOOKBACK).snapshots
    assert snapshot.mode == "full" and snapshot.previous is None and reason in snapshot.full_read_reason
    lines = [r for r in caplog.records if r.getMessage().startswith("Source predictions: full read: ")]
    assert len(lines) == 1 and reason in lines[0].getMessage() and lines[0].levelno == level
    assert f"ds={DS1}" in lines[0].getMessage()
    assert snapshot.rows == len(window_ids(first_week, DS2)) == spark.read.parquet(snapshot.path).count()


def test_a_damaged_newest_snapshot_is_passed_over_for_an_older_valid_one(
    spark, settings, first_week, tmp_path, caplog
) -> None:
    run = settings_for(settings, first_week, tmp_path / "data")
    extract(run, RunContext.for_ds(DS1), spark, vars_overrides=LOOKBACK)
    second_week(first_week)
    extract(run, RunContext.for_ds(DS2), spark, vars_overrides=LOOKBACK)
    damage_manifest(run.run_folder(DS2).snapshot("predictions"))
    caplog.set_level(logging.INFO)
    (snapshot,) = extract(run, RunContext.for_ds(DS3), spark, vars_overrides=LOOKBACK).snapshots
    assert (snapshot.mode, snapshot.previous) == ("incremental", DS1)
    assert f"building on ds={DS1}, not on a newer snapshot: the snapshot of ds={DS2}" in caplog.text
    assert snapshot.rows == len(window_ids(first_week, DS3)) == view(spark, run, DS3).count()


def test_another_source_definition_or_too_many_late_rows_means_a_full_read(
    spark, settings, first_week, tmp_path, monkeypatch
) -> None:
    run = settings_for(settings, first_week, tmp_path / "data")
    extract(run, RunContext.for_ds(DS1), spark, vars_overrides=LOOKBACK)
    second_week(first_week)

    monkeypatch.setattr(incremental, "LATE_ROWS_LIMIT", len(LATE) - 1)
    (snapshot,) = extract(run, RunContext.for_ds(DS2), spark, vars_overrides=LOOKBACK).snapshots
    assert snapshot.mode == "full" and f"more than {len(LATE) - 1} rows of the window" in snapshot.full_read_reason
    assert not (Path(snapshot.path) / REFRESH_DIR).exists()
    monkeypatch.undo()

    project = tmp_path / "sqlproject"
    project.mkdir()
    (project / "project.yml").write_text("vars:\n  lookback_days: 30\n")
    yml = (REPO_ROOT / "sql" / "sources.yml").read_text()
    narrower = yml.replace("[verified_outcome, verified_at]\n      updated_at: verified_at", "[verified_outcome]")
    assert narrower != yml
    (project / "sources.yml").write_text(narrower)
    (snapshot,) = extract(run, RunContext.for_ds(DS3), spark, project_dir=project).snapshots
    assert snapshot.mode == "full" and "another definition of the source" in snapshot.full_read_reason


SOURCE = """
sources:
  - name: outcomes
    table: health_records
    partition_column: {partition}
    window_column: created_at
    columns: {{id: bigint, code: string, created_at: timestamp, verified_outcome: string}}
    incremental: {incremental}
"""


def test_the_projects_predictions_are_incremental() -> None:
    source = load_sources(REPO_ROOT / "sql")["predictions"]
    assert source.incremental is not None
    assert source.incremental.refresh_columns == ("verified_outcome", "verified_at")


@pytest.mark.parametrize(
    ("partition", "block", "error"),
    [
        ("id", "{refresh_columns: [nope]}", "refresh column 'nope' of source 'outcomes' is not one of its columns. "
         "Choose among: code, verified_outcome."),
        ("id", "{refresh_columns: [id]}", "refresh column 'id' of source 'outcomes' is its partition_column"),
        ("id", "{refresh_columns: [created_at]}", "is its window_column, which an incremental read cannot refresh"),
        ("id", "{refresh_columns: verified_outcome}", "'refresh_columns' of source 'outcomes' must be a list"),
        ("id", "{refresh_columns: [code, code]}", "names code more than once"),
        ("id", "{key: id}", "unknown key 'key' in 'incremental' of source 'outcomes'. Allowed keys: refresh_columns"),
        ("id", "[verified_outcome]", "'incremental' of source 'outcomes' must be a mapping"),
        ("code", "{refresh_columns: [verified_outcome]}", "partition_column 'code' must be a whole-number column"),
        ("id", "{refresh_columns: [verified_outcome], updated_at: code}", "'updated_at' of source 'outcomes' must "
         "name one of its refresh_columns of type timestamp"),
    ],
)  # fmt: skip
def test_a_wrong_incremental_block_is_refused_naming_the_file_and_the_choices(
    tmp_path: Path, partition: str, block: str, error: str
) -> None:
    (tmp_path / "sources.yml").write_text(SOURCE.format(partition=partition, incremental=block))
    with pytest.raises((ConfigError, SqlProjectError), match=error.replace("(", r"\(").replace(".", r"\.")) as info:
        load_sources(tmp_path)
    assert str(tmp_path / "sources.yml") in str(info.value)
