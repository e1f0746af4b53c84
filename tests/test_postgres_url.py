"""DATABASE_URL parsing: every form users write, and the password kept out of every printable form."""

from __future__ import annotations

import pytest

from jobs.errors import ConfigError
from jobs.postgres.url import DatabaseUrl
from jobs.settings import Settings

PASSWORD = "p@ss:w%rd/1"
ENCODED = "p%40ss%3Aw%25rd%2F1"


def test_parses_encoded_credentials_port_and_params() -> None:
    db = DatabaseUrl.parse(
        f"postgresql://an%40alyst:{ENCODED}@db.example:6543/health?sslmode=require&application_name=x"
    )
    assert (db.host, db.port, db.database, db.user, db.password) == ("db.example", 6543, "health", "an@alyst", PASSWORD)
    assert db.params == (("sslmode", "require"), ("application_name", "x"))
    assert db.jdbc_url == "jdbc:postgresql://db.example:6543/health?sslmode=require&application_name=x"
    assert db.jdbc_properties() == {"user": "an@alyst", "password": PASSWORD, "driver": "org.postgresql.Driver"}
    assert db.psycopg_kwargs()["sslmode"] == "require"


def test_postgres_scheme_and_default_port() -> None:
    db = DatabaseUrl.parse("postgres://u@localhost/db")
    assert (db.port, db.password, db.jdbc_url) == (5432, "", "jdbc:postgresql://localhost:5432/db")
    assert "password" not in db.jdbc_properties()


def test_password_never_in_printable_forms() -> None:
    db = DatabaseUrl.parse(f"postgresql://u:{ENCODED}@h:1/d")
    for text in (db.jdbc_url, db.redacted(), str(db), repr(db)):
        assert PASSWORD not in text and ENCODED not in text
    assert db.redacted() == "postgresql://u:***@h:1/d"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@h/d", "must start with postgresql://"),
        ("postgresql://u:p@h:notaport/d", "not a valid URL"),
        ("postgresql://u:p@h:5432", "must name a host and a database"),
    ],
)
def test_invalid_urls_say_what_to_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        DatabaseUrl.parse(url)
    assert ":p@" not in str(info.value)


def test_settings_default_to_the_embedded_database(tmp_path) -> None:
    settings = Settings.from_env(env={}, root=tmp_path)
    assert settings.uses_embedded_database
    assert settings.database().port == 54329
    assert settings.data_dir == tmp_path / "data"
    assert settings.backend_url == "http://localhost:8000"


def test_settings_reject_bad_numbers(tmp_path) -> None:
    with pytest.raises(ConfigError, match="JDBC_FETCHSIZE setting must be a whole number of at least 1. Got 'many'"):
        Settings.from_env(env={"JDBC_FETCHSIZE": "many"}, root=tmp_path)
    with pytest.raises(ConfigError, match="JDBC_NUM_PARTITIONS setting must be a whole number of at least 1. Got 0"):
        Settings.from_env(env={"JDBC_NUM_PARTITIONS": "0"}, root=tmp_path)


def test_settings_repr_hides_secrets(tmp_path) -> None:
    settings = Settings.from_env(
        env={"DATABASE_URL": f"postgresql://u:{ENCODED}@h/d", "ADMIN_JWT_TOKEN": "tok.en.secret"}, root=tmp_path
    )
    assert ENCODED not in repr(settings) and "tok.en.secret" not in repr(settings)


def test_a_dead_spark_jvm_is_not_reported_as_an_unreachable_database() -> None:
    from py4j.protocol import Py4JNetworkError

    from jobs.errors import DatabaseUnreachableError, SparkDriverLostError
    from jobs.postgres.classify import classify

    db = DatabaseUrl.parse("postgresql://u:s3cret@db:5432/app")
    for error in (
        ConnectionRefusedError(111, "Connection refused"),
        Py4JNetworkError("Answer from Java side is empty"),
    ):
        assert isinstance(classify(error, db, "reading source 'x'"), SparkDriverLostError)
    refused = classify(
        Exception("Connection to db:5432 refused. Check that the hostname and port are correct"), db, "x"
    )
    assert isinstance(refused, DatabaseUnreachableError) and "s3cret" not in str(refused)
