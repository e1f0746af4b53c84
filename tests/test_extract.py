"""extract_data against a real PostgreSQL and a real Spark session."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest

from jobs.errors import AuthenticationFailedError, DatabaseUnreachableError, MissingRelationError
from jobs.extract import Extraction, extract
from jobs.postgres.jdbc import probe_bounds, read_source
from jobs.postgres.url import DatabaseUrl
from jobs.run_context import RunContext
from jobs.settings import Settings
from jobs.spark.atomic import MANIFEST, read_manifest
from jobs.spark.session import spark_log_file
from jobs.sqlproject.config import load_sources
from tests.conftest import GERMAN, REPO_ROOT, free_port, german_available, speak

DS = "2026-06-01"
CTX = RunContext.for_ds(DS)
END = CTX.data_interval_end
PASSWORD = "p@ss:w%rd"
ANALYST = "analyst"


def insert(db: DatabaseUrl, users: list[tuple[int, bool]], records: list[tuple]) -> None:
    """records: (user_id, record_type, data, created_at)."""
    with psycopg2.connect(**db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(cur, "INSERT INTO users (id, allow_data_collection) VALUES %s", users)
        psycopg2.extras.execute_values(
            cur,
            "INSERT INTO health_records (user_id, record_type, data, prediction, confidence, model_version, "
            "verified_outcome, created_at) VALUES %s",
            [(u, t, d, "Low Risk", 0.8, "v1", None, c) for u, t, d, c in records],
            page_size=5000,
        )


def scalar(db: DatabaseUrl, sql: str):
    with psycopg2.connect(**db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def settings_for(settings: Settings, db: DatabaseUrl, password: str | None = None, **changes) -> Settings:
    url = dataclasses.replace(db, password=password or db.password).full_url()
    return dataclasses.replace(settings, database_url=url, **changes)


def make_project(tmp_path: Path, sources_yml: str, lookback_days: int = 30) -> Path:
    project = tmp_path / "sqlproject"
    project.mkdir(exist_ok=True)
    (project / "project.yml").write_text(f"vars:\n  lookback_days: {lookback_days}\n")
    (project / "sources.yml").write_text(sources_yml)
    return project


@pytest.fixture
def spread_db(empty_db: DatabaseUrl) -> DatabaseUrl:
    """3,000 records, one an hour before the run's end going back 125 days; every 5th user without consent."""
    users = [(u, u % 5 != 0) for u in range(1, 101)]
    records = [
        (1 + i % 100, "diabetes", f'{{"age": {20 + i % 60}}}', END - timedelta(hours=i + 1)) for i in range(3000)
    ]
    insert(empty_db, users, records)
    return empty_db


def test_snapshot_holds_exactly_the_consented_rows_of_the_window(spark, settings, spread_db, tmp_path) -> None:
    run_settings = settings_for(settings, spread_db, data_dir=tmp_path / "data")
    result = extract(run_settings, CTX, spark, vars_overrides={"lookback_days": 30})

    expected = scalar(
        spread_db,
        "SELECT count(*) FROM health_records r JOIN users u ON u.id = r.user_id WHERE u.allow_data_collection "
        f"AND r.created_at >= '{END - timedelta(days=30)}' AND r.created_at < '{END}'",
    )
    (snapshot,) = result.snapshots
    assert snapshot.rows == expected == 576  # 720 hours in the window, 4 of every 5 users consent
    frame = spark.read.parquet(snapshot.path)
    assert frame.count() == expected
    assert frame.where("user_id % 5 = 0").count() == 0
    assert [f.name for f in frame.schema] == list(load_sources(REPO_ROOT / "sql")["predictions"].columns)
    manifest = read_manifest(Path(snapshot.path))
    assert manifest["rows"] == expected
    assert manifest["window_start"] == (END - timedelta(days=30)).isoformat()
    assert (manifest["id_min"], manifest["id_max"]) == tuple(frame.selectExpr("min(id)", "max(id)").first())
    assert manifest["duration_seconds"] == snapshot.duration_seconds > 0
    assert Path(snapshot.path) == run_settings.run_folder(DS).snapshot("predictions")
    assert Path(snapshot.path) == tmp_path / "data" / "runs" / f"ds={DS}" / "raw" / "predictions"


def test_snapshot_values_are_postgresql_s_to_the_microsecond(spark, settings, empty_db, tmp_path) -> None:
    """Rows travel in binary (prepareThreshold=-1): timestamps, doubles, NULLs and text must arrive unchanged."""
    at = END - timedelta(days=1, microseconds=123457)
    records = [
        (1, "heart", '{"name": "Zoë 東京", "age": 42.5}', at),
        (1, "liver", None, END - timedelta(days=2, hours=3, microseconds=1)),
        (2, "diabetes", '{"age": "51"}', END - timedelta(days=29, seconds=59)),
    ]
    insert(empty_db, [(1, True), (2, True)], records)
    with psycopg2.connect(**empty_db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("UPDATE health_records SET confidence = NULL, model_version = NULL WHERE record_type = 'liver'")
        cur.execute(
            "UPDATE health_records SET confidence = 0.1::float8 + 0.2::float8, verified_outcome = 'positive' "
            "WHERE record_type = 'heart'"
        )
        cur.execute(
            "SELECT id, user_id, record_type, data, prediction, confidence, model_version, verified_outcome, "
            "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM health_records ORDER BY id"
        )
        expected = [tuple(row) for row in cur.fetchall()]

    result = extract(settings_for(settings, empty_db, data_dir=tmp_path / "data"), CTX, spark)
    (snapshot,) = result.snapshots
    actual = (
        spark.read.parquet(snapshot.path)
        .selectExpr(
            "id",
            "user_id",
            "record_type",
            "data",
            "prediction",
            "confidence",
            "model_version",
            "verified_outcome",
            "date_format(created_at, 'yyyy-MM-dd HH:mm:ss.SSSSSS')",
        )
        .orderBy("id")
        .collect()
    )
    assert [tuple(row) for row in actual] == expected
    assert expected[0][5] == 0.1 + 0.2 and expected[0][8].endswith(".876543")


def test_the_windows_are_probed_before_spark_is_needed(spark, settings, spread_db, tmp_path) -> None:
    """The commands start probing, then start Spark: PostgreSQL counts the window while the JVM boots."""
    run_settings = settings_for(settings, spread_db, data_dir=tmp_path / "data")
    extraction = Extraction.start(run_settings, CTX, vars_overrides={"lookback_days": 30})
    assert extraction.probes["predictions"].result(timeout=60).rows == 576  # no Spark session involved yet
    (snapshot,) = extraction.run(spark).snapshots
    assert snapshot.rows == spark.read.parquet(snapshot.path).count() == 576


def test_partitions_are_all_non_empty_on_spread_ids(spark, settings, spread_db) -> None:
    source = load_sources(REPO_ROOT / "sql")["predictions"]
    window = CTX.window(120)
    bounds = probe_bounds(spread_db, source, window)
    frame = read_source(spark, spread_db, source, window, bounds, num_partitions=6, fetchsize=100)
    sizes = frame.rdd.glom().map(len).collect()
    assert len(sizes) == 6
    assert sum(sizes) == bounds.rows
    assert min(sizes) > 0
    assert max(sizes) - min(sizes) <= bounds.rows / 6 * 0.1  # ids spread evenly: partitions within 10%


def test_rerun_gives_identical_output(spark, settings, spread_db, tmp_path) -> None:
    run_settings = settings_for(settings, spread_db, data_dir=tmp_path / "data")
    first = extract(run_settings, CTX, spark, vars_overrides={"lookback_days": 60})
    rows_first = sorted(spark.read.parquet(first.snapshots[0].path).collect())
    insert(spread_db, [], [(1 + i, "heart", "{}", END + timedelta(hours=i)) for i in range(1, 50)])  # after the window
    second = extract(run_settings, CTX, spark, vars_overrides={"lookback_days": 60})
    assert sorted(spark.read.parquet(second.snapshots[0].path).collect()) == rows_first
    raw = Path(second.snapshots[0].path).parent
    assert sorted(p.name for p in raw.iterdir()) == ["predictions"]  # no temporary or old copies left


def test_empty_window_is_nothing_new(spark, settings, spread_db, tmp_path) -> None:
    run_settings = settings_for(settings, spread_db, data_dir=tmp_path / "data")
    result = extract(run_settings, RunContext.for_ds("2020-01-01"), spark)
    assert result.nothing_new and result.rows == 0
    assert spark.read.parquet(result.snapshots[0].path).count() == 0


@pytest.fixture(scope="module")
def analyst(pg_cluster, pg: DatabaseUrl, pg_admin: DatabaseUrl) -> DatabaseUrl:
    """A role that must log in with a password full of URL-special characters, over TCP."""
    hba = Path(pg_cluster.data_dir) / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"host all {ANALYST} 127.0.0.1/32 scram-sha-256\n" + original)
    admin = pg_admin
    with psycopg2.connect(**admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {ANALYST}")
        cur.execute(f"CREATE ROLE {ANALYST} LOGIN PASSWORD %s", (PASSWORD,))
        cur.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ANALYST}")
        cur.execute("SELECT pg_reload_conf()")
    yield dataclasses.replace(pg, user=ANALYST, password=PASSWORD)
    hba.write_text(original)
    with psycopg2.connect(**admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_reload_conf()")


def test_password_with_special_characters_works_and_never_shows(
    spark, settings, spread_db, analyst, tmp_path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    run_settings = settings_for(settings, analyst, password=PASSWORD, data_dir=tmp_path / "data")
    result = extract(run_settings, CTX, spark, vars_overrides={"lookback_days": 30})
    assert result.rows == 576
    source = load_sources(REPO_ROOT / "sql")["predictions"]
    bounds = probe_bounds(analyst, source, CTX.window(30))
    frame = read_source(spark, analyst, source, CTX.window(30), bounds, 2, 100)
    plan = frame._jdf.queryExecution().toString()
    manifest = (Path(result.snapshots[0].path) / MANIFEST).read_text()
    for text in (caplog.text, plan, manifest, str(run_settings)):
        assert PASSWORD not in text and "p%40ss" not in text


def test_wrong_password_is_an_authentication_error(spark, settings, analyst, tmp_path) -> None:
    run_settings = settings_for(settings, analyst, password="wrong-secret", data_dir=tmp_path / "data")
    with pytest.raises(AuthenticationFailedError, match=f"rejected the credentials of user '{ANALYST}'") as info:
        extract(run_settings, CTX, spark)
    assert "wrong-secret" not in str(info.value)


def test_unreachable_database_names_host_and_port(spark, settings, tmp_path) -> None:
    port = free_port()
    run_settings = dataclasses.replace(
        settings, database_url=f"postgresql://u:s3cret@127.0.0.1:{port}/db", data_dir=tmp_path / "data"
    )
    with pytest.raises(DatabaseUnreachableError, match=f"Cannot reach PostgreSQL at 127.0.0.1:{port}") as info:
        extract(run_settings, CTX, spark)
    assert "s3cret" not in str(info.value)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.parquet"))


SOURCE_TEMPLATE = """
sources:
  - name: predictions
    {relation}
    partition_column: id
    window_column: created_at
    columns: {{id: bigint, created_at: timestamp{extra}}}
"""


@pytest.mark.parametrize(
    ("relation", "extra", "missing"),
    [
        ("table: no_such_table", "", "no_such_table"),
        ("table: health_records", ", no_such_column: string", "no_such_column"),
    ],
)
def test_missing_table_or_column(spark, settings, spread_db, tmp_path, relation, extra, missing) -> None:
    project = make_project(tmp_path, SOURCE_TEMPLATE.format(relation=relation, extra=extra))
    run_settings = settings_for(settings, spread_db, data_dir=tmp_path / "data")
    with pytest.raises(MissingRelationError, match=missing):
        extract(run_settings, CTX, spark, project_dir=project)
    assert not any((tmp_path / "data").rglob("*.parquet"))


def jvm_stderr() -> Path | None:
    """The file Spark's JVM (a child of this process) writes its stderr to, when it is one (pytest's capture)."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:
            continue
        comm, rest = text.split("(", 1)[1].rsplit(")", 1)
        if comm == "java" and int(rest.split()[1]) == os.getpid():
            target = stat_file.parent / "fd" / "2"
            return target if os.path.isfile(target) else None
    return None


@pytest.mark.postgres  # a cluster of its own
def test_database_killed_during_read_leaves_previous_snapshot(spark, settings, tmp_path) -> None:
    """Also: the console (the JVM's own stderr) shows no Java stack trace; Spark's log file has it."""
    console = jvm_stderr()
    console_start = console.stat().st_size if console else 0
    from jobs.postgres.embedded import EmbeddedPostgres

    cluster = EmbeddedPostgres(data_dir=tmp_path / "pg", port=free_port())
    cluster.start()
    try:
        db = cluster.database_url()
        if german_available():  # the server's words must not matter: it reports the failure in German
            speak(cluster, GERMAN)
        insert(
            cluster.admin_url(), [(1, True)], [(1, "liver", "{}", END - timedelta(minutes=i + 1)) for i in range(400)]
        )
        run_settings = settings_for(settings, db, data_dir=tmp_path / "data")
        good = extract(run_settings, CTX, spark)
        before = sorted(spark.read.parquet(good.snapshots[0].path).collect())

        # The same window, read slowly (10 ms a row), so the server can be killed in the middle of the read.
        slow = make_project(
            tmp_path,
            SOURCE_TEMPLATE.format(
                relation="query: SELECT r.id, r.created_at FROM health_records r, LATERAL (SELECT pg_sleep(0.01)) s",
                extra="",
            ),
            lookback_days=365,
        )

        def kill_when_reading() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if scalar(
                        db,
                        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.01)%' "
                        "AND pid <> pg_backend_pid() AND query NOT LIKE '%count(*)%'",
                    ):
                        cluster.stop(mode="immediate")
                        return
                except psycopg2.Error:
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_when_reading)
        killer.start()
        with pytest.raises(DatabaseUnreachableError) as info:
            extract(run_settings, CTX, spark, project_dir=slow)
        killer.join()
        message = str(info.value)
        assert message.startswith(f"Cannot reach PostgreSQL at 127.0.0.1:{db.port} while reading source 'predictions'")
        assert "An error occurred while calling" not in message and "\tat " not in message
        if console is not None:
            with open(console, encoding="utf-8", errors="replace") as stream:
                stream.seek(console_start)
                printed = stream.read()
            assert "\tat org." not in printed and "Exception" not in printed, printed[-3000:]
        log_file = spark_log_file()
        assert log_file is not None and "java.io.EOFException" in log_file.read_text(errors="replace")
        raw = run_settings.run_folder(DS).raw
        assert sorted(p.name for p in raw.iterdir()) == ["predictions"]
        assert sorted(spark.read.parquet(str(raw / "predictions")).collect()) == before
    finally:
        cluster.stop()
