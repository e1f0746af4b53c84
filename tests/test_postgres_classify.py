"""PostgreSQL errors are classified by SQLSTATE and exception type, so a server speaking German is understood."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import psycopg2
import pytest

from jobs.errors import AuthenticationFailedError, DatabaseUnreachableError, MissingRelationError
from jobs.postgres.classify import classify
from jobs.postgres.jdbc import probe_bounds
from jobs.postgres.url import DatabaseUrl
from jobs.run_context import RunContext
from jobs.spark.messages import strip_py4j
from jobs.sqlproject.config import Source
from tests.conftest import GERMAN, NO_GERMAN, free_port, german_available, speak

WINDOW = RunContext.for_ds("2026-06-01").window(30)


def source(relation: str = "health_records", column: str = "id") -> Source:
    return Source(
        name="s",
        path=None,
        table=relation,
        partition_column=column,
        window_column="created_at",
        columns={column: "bigint", "created_at": "timestamp"},
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def german(tmp_path_factory) -> Iterator[DatabaseUrl]:
    """A cluster of its own that answers in German."""
    if not german_available():
        pytest.skip(NO_GERMAN)
    from jobs.postgres.embedded import EmbeddedPostgres

    cluster = EmbeddedPostgres(tmp_path_factory.mktemp("pg-de") / "cluster", free_port())
    cluster.start()
    try:
        speak(cluster, GERMAN)
        yield cluster.database_url()
    finally:
        cluster.stop()


@pytest.mark.postgres  # german: a cluster of its own
def test_the_server_really_answers_in_german(german) -> None:
    conn = psycopg2.connect(**german.psycopg_kwargs())
    try:
        with pytest.raises(psycopg2.Error) as info, conn.cursor() as cur:
            cur.execute("SELECT * FROM no_such_table")
    finally:
        conn.close()
    assert "existiert nicht" in str(info.value) and info.value.pgcode == "42P01"


@pytest.mark.postgres
@pytest.mark.parametrize(("relation", "column"), [("no_such_table", "id"), ("health_records", "no_such_column")])
def test_psycopg2_errors_by_pgcode(german, relation, column) -> None:
    with pytest.raises(MissingRelationError, match="existiert nicht"):
        probe_bounds(german, source(relation, column), WINDOW)


@pytest.mark.postgres
def test_psycopg2_refused_connection_in_german(german) -> None:
    """libpq keeps a connection failure's SQLSTATE to itself: the server's refusal is reported with its words."""
    wrong = dataclasses.replace(german, password="not-the-password")
    with pytest.raises(AuthenticationFailedError, match="refused the connection of user 'retrain'") as info:
        probe_bounds(wrong, source(), WINDOW)
    assert "fehlgeschlagen" in str(info.value) and "not-the-password" not in str(info.value)


def jdbc_error(spark, db: DatabaseUrl, table: str = "health_records") -> BaseException:
    reader = spark.read.format("jdbc").options(url=db.jdbc_url, dbtable=table, **db.jdbc_properties())
    try:
        reader.load().count()
    except Exception as e:  # noqa: BLE001 - the error is what the test looks at
        return e
    raise AssertionError("the JDBC read did not fail")


def test_jdbc_errors_by_sqlstate_along_the_java_cause_chain(spark, german) -> None:
    wrong = dataclasses.replace(german, password="not-the-password")
    auth = classify(jdbc_error(spark, wrong), wrong, "reading")
    assert isinstance(auth, AuthenticationFailedError) and "not-the-password" not in str(auth)
    missing = classify(jdbc_error(spark, german, "no_such_table"), german, "reading")
    assert isinstance(missing, MissingRelationError) and "existiert nicht" in str(missing)
    assert "An error occurred while calling" not in str(auth) + str(missing)


def test_jdbc_unreachable_by_exception_type(spark) -> None:
    nowhere = DatabaseUrl.parse(f"postgresql://u:pw@127.0.0.1:{free_port()}/db")
    error = classify(jdbc_error(spark, nowhere), nowhere, "reading")
    assert isinstance(error, DatabaseUnreachableError) and "An error occurred while calling" not in str(error)


def test_py4j_wording_is_stripped() -> None:
    assert strip_py4j("An error occurred while calling o74.parquet.\n: java.sql.SQLException: x") == (
        "java.sql.SQLException: x"
    )
