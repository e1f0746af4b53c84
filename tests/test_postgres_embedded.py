"""The embedded PostgreSQL: lifecycle, idempotence, a taken port, the schema, and the ``retrain db`` commands."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import stat
from pathlib import Path

import psycopg2
import pytest

from jobs.cli import main
from jobs.errors import ConfigError, EmbeddedPostgresError, PortInUseError
from jobs.postgres.embedded import EmbeddedPostgres, apply_schema
from jobs.postgres.secret import read_secret
from jobs.postgres.url import DatabaseUrl
from tests.conftest import free_port
from tests.serving_helpers import assert_no_secrets


def query(db, sql: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(**db.psycopg_kwargs())
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def test_session_cluster_runs_on_its_port_and_localhost_only(pg_cluster, pg):
    status = pg_cluster.status()
    assert status.running and status.pid and status.port == pg_cluster.port
    assert status.data_dir == pg_cluster.data_dir
    assert pg.redacted() == f"postgresql://retrain:***@127.0.0.1:{pg_cluster.port}/retrain"
    settings = dict(query(pg, "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'port')"))
    assert settings == {"listen_addresses": "127.0.0.1", "port": str(pg_cluster.port)}
    # unix_socket_directories is visible to superusers only: the socket file shows where it is.
    assert (pg_cluster.data_dir / f".s.PGSQL.{pg_cluster.port}").is_socket()
    assert query(pg, "SELECT current_user, current_database()") == [("retrain", "retrain")]


def test_start_is_idempotent(pg_cluster):
    pid = pg_cluster.status().pid
    pg_cluster.start()
    assert pg_cluster.status().pid == pid


def test_schema_has_the_backend_tables_columns_and_indexes(pg, pg_admin):
    columns = query(
        pg,
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    )
    assert columns == [
        ("health_records", "id", "bigint", "NO"),
        ("health_records", "user_id", "bigint", "YES"),
        ("health_records", "record_type", "text", "NO"),
        ("health_records", "data", "text", "YES"),
        ("health_records", "prediction", "text", "YES"),
        ("health_records", "confidence", "double precision", "YES"),
        ("health_records", "model_version", "text", "YES"),
        ("health_records", "verified_outcome", "text", "YES"),
        ("health_records", "created_at", "timestamp with time zone", "YES"),
        ("health_records", "verified_at", "timestamp with time zone", "YES"),
        ("users", "id", "bigint", "NO"),
        ("users", "allow_data_collection", "boolean", "NO"),
    ]
    indexes = {
        name: ddl for name, ddl in query(pg, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    }
    assert "(created_at)" in indexes["health_records_created_at_idx"]
    assert "(record_type)" in indexes["health_records_record_type_idx"]
    assert {"users_pkey", "health_records_pkey"} <= indexes.keys()
    fk = query(pg, "SELECT confrelid::regclass::text FROM pg_constraint WHERE conname = 'health_records_user_id_fkey'")
    assert fk == [("users",)]
    assert query(pg, "SELECT pg_get_serial_sequence('health_records', 'id') IS NOT NULL") == [(True,)]
    apply_schema(pg_admin)  # idempotent (the tables' owner applies it)
    assert len(query(pg, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")) == len(indexes)


def test_a_taken_port_is_a_clear_error(tmp_path: Path):
    port = free_port()
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))
        other.listen()
        with pytest.raises(PortInUseError) as info:
            EmbeddedPostgres(tmp_path / "pg", port).start()
    message = str(info.value)
    assert f"Port {port}" in message and "RETRAIN_PG_PORT" in message
    assert not (tmp_path / "pg").exists()  # nothing was created


def test_missing_binaries_say_how_to_install(tmp_path: Path):
    cluster = EmbeddedPostgres(tmp_path / "pg", free_port(), bin_dir=tmp_path / "no-postgres-here")
    with pytest.raises(EmbeddedPostgresError, match="apt-get install postgresql"):
        cluster.start()


@pytest.mark.postgres  # a cluster of its own
def test_stop_start_keeps_data_and_a_failed_start_shows_the_server_log(tmp_path_factory):
    cluster = EmbeddedPostgres(tmp_path_factory.mktemp("pg-lifecycle") / "cluster", free_port())
    try:
        cluster.start()
        db = cluster.database_url()
        conn = psycopg2.connect(**cluster.admin_url().psycopg_kwargs())
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO users VALUES (7, true)")
        conn.close()

        cluster.stop()
        assert not cluster.status().running
        cluster.stop()  # idempotent

        conf = cluster.data_dir / "postgresql.conf"
        good = conf.read_text()
        conf.write_text(good + "shared_buffers = 'plenty'\n")
        with pytest.raises(EmbeddedPostgresError) as info:
            cluster.start()
        assert "failed to start" in str(info.value)
        assert "server.log" in str(info.value) and "shared_buffers" in str(info.value)

        conf.write_text(good)
        cluster.start()
        assert cluster.status().running
        assert query(db, "SELECT id, allow_data_collection FROM users") == [(7, True)]
    finally:
        cluster.stop()


def test_db_commands_print_status_and_url(pg_cluster, monkeypatch, capsys, caplog):
    monkeypatch.setenv("RETRAIN_PG_DIR", str(pg_cluster.data_dir))
    monkeypatch.setenv("RETRAIN_PG_PORT", str(pg_cluster.port))
    assert main(["db", "status"]) == 0
    out = capsys.readouterr().out
    assert "running" in out and f"port: {pg_cluster.port}" in out and str(pg_cluster.data_dir) in out
    assert main(["db", "url"]) == 0
    assert capsys.readouterr().out.strip() == f"postgresql://retrain@127.0.0.1:{pg_cluster.port}/retrain"
    assert main(["db", "url", "--with-password"]) == 0
    full = capsys.readouterr().out.strip()
    assert full == f"postgresql://retrain:{pg_cluster.database_url().password}@127.0.0.1:{pg_cluster.port}/retrain"
    assert query(DatabaseUrl.parse(full), "SELECT current_user") == [("retrain",)]  # what psql "$(...)" would do
    assert main(["db", "start"]) == 0  # already running: nothing to do

    monkeypatch.setenv("RETRAIN_PG_DIR", str(pg_cluster.data_dir.parent / "never-started"))
    assert main(["db", "status"]) == 3
    assert "stopped" in capsys.readouterr().out
    assert main(["db", "url", "--with-password"]) == 1  # no cluster, no password file
    assert "retrain db start" in caplog.text


def connect_without_password(**where) -> str:
    try:
        psycopg2.connect(**where, connect_timeout=5).close()
    except psycopg2.OperationalError as e:
        return str(e)
    raise AssertionError(f"connected without a password: {where}")


def test_no_connection_without_the_password(pg_cluster, pg):
    for user, dbname in (("retrain", "retrain"), ("postgres", "postgres")):
        tcp = connect_without_password(host="127.0.0.1", port=pg_cluster.port, user=user, dbname=dbname)
        socket_ = connect_without_password(
            host=str(pg_cluster.data_dir), port=pg_cluster.port, user=user, dbname=dbname
        )
        assert "password" in tcp and "password" in socket_
    wrong = dataclasses.replace(pg, password="not-the-password")
    assert "password authentication failed" in connect_without_password(**wrong.psycopg_kwargs())
    rules = (pg_cluster.data_dir / "pg_hba.conf").read_text()
    active = [line.split() for line in rules.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert active and all(rule[-1] == "scram-sha-256" for rule in active)


def test_the_password_files_are_the_owners_alone(pg_cluster, pg, pg_admin):
    for path, db in ((pg_cluster.secret_file, pg), (pg_cluster.superuser_secret_file, pg_admin)):
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.geteuid()
        assert path.read_text().strip() == db.password and len(db.password) >= 40
        assert db.password not in repr(db) + str(db) + db.redacted() + repr(pg_cluster)
    assert pg.password != pg_admin.password


def test_a_readable_password_file_is_refused(tmp_path):
    path = tmp_path / "pg.password"
    path.write_text("secret\n")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_secret(path)


@pytest.mark.postgres  # a cluster of its own
def test_a_trusting_cluster_is_locked_when_it_starts(tmp_path_factory, caplog):
    """Clusters created before passwords existed trusted every local connection; the next start locks them."""
    cluster = EmbeddedPostgres(tmp_path_factory.mktemp("pg-legacy") / "cluster", free_port())
    try:
        cluster.start()
        cluster.stop()
        hba = cluster.data_dir / "pg_hba.conf"
        hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
        cluster.secret_file.unlink()
        cluster.superuser_secret_file.unlink()
        caplog.set_level(logging.DEBUG)
        cluster.start()
        db, admin = cluster.database_url(), cluster.admin_url()
        assert db.password and query(db, "SELECT current_user") == [("retrain",)]
        assert admin.password not in ("", db.password) and query(admin, "SELECT current_user") == [("postgres",)]
        assert "password" in connect_without_password(
            host="127.0.0.1", port=cluster.port, user="postgres", dbname="postgres"
        )
        assert "locking it with passwords" in caplog.text
        server_log = (cluster.data_dir / "server.log").read_text()
        assert_no_secrets([caplog.text, server_log], [db.password, admin.password])
    finally:
        cluster.stop()


# -- two roles: the superuser and the application role -------------------------------------------------------------


def login_refused(db: DatabaseUrl) -> str:
    """Why ``db``'s credentials do not log in (an assertion that never shows them when they do)."""
    try:
        psycopg2.connect(**db.psycopg_kwargs(), connect_timeout=5).close()
    except psycopg2.OperationalError as e:
        return str(e)
    raise AssertionError(f"{db.user} logged in to {db.host} with the password it was given")


def refused(db: DatabaseUrl, sql: str, *, autocommit: bool = False) -> str:
    """The SQLSTATE with which ``db``'s role is refused ``sql`` (the transaction is rolled back either way)."""
    conn = psycopg2.connect(**db.psycopg_kwargs())
    conn.autocommit = autocommit  # CREATE DATABASE refuses to run in a transaction
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    except psycopg2.Error as e:
        return e.pgcode
    finally:
        conn.rollback()
        conn.close()
    raise AssertionError(f"{db.user} was allowed: {sql}")


def test_the_printed_password_does_not_log_in_as_the_superuser(pg_cluster, pg_admin, monkeypatch, capsys):
    monkeypatch.setenv("RETRAIN_PG_DIR", str(pg_cluster.data_dir))
    monkeypatch.setenv("RETRAIN_PG_PORT", str(pg_cluster.port))
    assert main(["db", "url", "--with-password"]) == 0
    printed = DatabaseUrl.parse(capsys.readouterr().out.strip())
    assert query(printed, "SELECT current_user") == [("retrain",)]
    for host in ("127.0.0.1", str(pg_cluster.data_dir)):  # TCP and the unix socket
        as_superuser = dataclasses.replace(printed, host=host, user="postgres", database="postgres")
        assert "password authentication failed" in login_refused(as_superuser)
    assert query(pg_admin, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == [(True,)]


def test_the_application_role_may_only_read_and_log_predictions(pg, pg_admin):
    from serving.records import RecordLog

    attributes = "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles"
    assert query(pg, f"{attributes} WHERE rolname = 'retrain'") == [(False,) * 5]
    owners = query(pg, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == [("postgres",)] and query(
        pg, "SELECT datdba::regrole::text FROM pg_database WHERE datname = 'retrain'"
    ) == [("postgres",)]
    user = 990_001
    with psycopg2.connect(**pg_admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO users VALUES (%s, true) ON CONFLICT DO NOTHING", (user,))
    records = RecordLog(pg, max_connections=1)
    try:  # what the backend does, with its own code
        record = records.insert(
            user_id=user, record_type="tiny", data="{}", prediction="Low Risk", confidence=0.9, model_version="v"
        )
    finally:
        records.close()
    assert query(pg, "SELECT user_id, verified_outcome FROM health_records WHERE id = %s", (record,)) == [(user, None)]
    assert query(pg, "SELECT count(*) FROM users WHERE id = %s", (user,)) == [(1,)]  # what extraction reads
    denied = "42501"  # insufficient_privilege
    for sql in (
        "INSERT INTO health_records (user_id, record_type, verified_outcome) VALUES (NULL, 'x', 'positive')",
        f"UPDATE health_records SET verified_outcome = 'positive' WHERE id = {record}",
        f"DELETE FROM health_records WHERE id = {record}",
        "TRUNCATE health_records CASCADE",
        "INSERT INTO users VALUES (990002, true)",
        "UPDATE users SET allow_data_collection = true",
        "DROP TABLE health_records CASCADE",
        "ALTER TABLE health_records ADD COLUMN x int",
        "CREATE TABLE public.x (a int)",
        "CREATE ROLE y",
        "SELECT pg_read_file('postgresql.conf')",
        "COPY health_records TO '/tmp/out'",
    ):
        assert refused(pg, sql) == denied, sql
    assert refused(pg, "CREATE DATABASE y", autocommit=True) == denied
    with psycopg2.connect(**pg_admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM health_records WHERE id = %s", (record,))
        cur.execute("DELETE FROM users WHERE id = %s", (user,))


@pytest.mark.postgres  # a cluster of its own
def test_a_cluster_whose_superuser_shared_the_password_is_separated_when_it_starts(tmp_path_factory, caplog):
    """Clusters made before the superuser had its own password: one password for both roles, the application role
    owning the database and the tables. The next start gives the superuser its own and takes the ownership back."""
    cluster = EmbeddedPostgres(tmp_path_factory.mktemp("pg-shared") / "cluster", free_port())
    try:
        cluster.start()
        db = cluster.database_url()
        with psycopg2.connect(**cluster.admin_url().psycopg_kwargs()) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO users VALUES (7, true)")
            cur.execute("ALTER ROLE postgres PASSWORD %s", (db.password,))  # as an older version left it
            cur.execute("ALTER ROLE retrain CREATEDB")
            cur.execute("ALTER DATABASE retrain OWNER TO retrain")
            cur.execute("ALTER TABLE users OWNER TO retrain")
            cur.execute("ALTER TABLE health_records OWNER TO retrain")
        cluster.superuser_secret_file.unlink()
        assert query(dataclasses.replace(db, user="postgres"), "SELECT current_user") == [("postgres",)]
        cluster.stop()
        caplog.set_level(logging.DEBUG)
        cluster.start()
        db, admin = cluster.database_url(), cluster.admin_url()
        assert db.password == cluster.secret_file.read_text().strip()  # the pipeline's URL did not change
        assert admin.password not in ("", db.password) and "it has its own now" in caplog.text
        assert "password authentication failed" in login_refused(
            dataclasses.replace(db, user="postgres", database="postgres")
        )
        assert query(db, "SELECT id FROM users") == [(7,)]
        assert query(db, "SELECT rolcreatedb FROM pg_roles WHERE rolname = 'retrain'") == [(False,)]
        assert query(db, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'") == [("postgres",)]
        assert refused(db, "TRUNCATE users CASCADE") == "42501"
        assert_no_secrets([caplog.text, (cluster.data_dir / "server.log").read_text()], [db.password, admin.password])
    finally:
        cluster.stop()
