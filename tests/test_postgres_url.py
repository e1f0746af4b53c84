"""DATABASE_URL parsing: every form users write, and the password kept out of every printable form."""

from __future__ import annotations

import re

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


# -- every form of the password is masked ---------------------------------------------------------------------------

SECRET = "p@ss:w/rd#1"
SECRET_ENCODED = "p%40ss%3Aw%2Frd%231"
#: each form the password may be written in, in any text the pipeline might quote
SECRET_FORMS = (SECRET, SECRET_ENCODED, SECRET_ENCODED.lower(), "p%40ss%3Aw/rd%231", "p%40ss:w/rd%231")


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://retrain:{SECRET_ENCODED}@db.example:5432/health",
        f"postgresql://retrain@db.example:5432/health?password={SECRET_ENCODED}",
        f"postgres://db.example/health?user=retrain&password={SECRET_ENCODED}&sslmode=require",
        f"postgresql://retrain:wrong@db.example/health?password={SECRET_ENCODED}",
    ],
)
def test_a_query_string_password_is_the_password_and_never_printed(url: str) -> None:
    db = DatabaseUrl.parse(url)
    assert db.password == SECRET and db.user == "retrain"
    assert db.psycopg_kwargs()["password"] == SECRET and "password" not in dict(db.params)
    for text in (db.redacted(), str(db), repr(db), db.jdbc_url):
        assert not any(form in text for form in SECRET_FORMS), text
    assert ":***@" in db.redacted()


def test_an_ssl_key_password_in_the_query_is_masked_too() -> None:
    db = DatabaseUrl.parse(f"postgresql://u@h/d?sslmode=verify-full&sslpassword={SECRET_ENCODED}")
    assert db.psycopg_kwargs()["sslpassword"] == SECRET
    assert "sslpassword=***" in db.redacted() and SECRET not in db.jdbc_url and SECRET_ENCODED not in db.jdbc_url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://retrain:Zq9@Xv:W7/Rk#1@127.0.0.1:5432/retrain",  # not encoded: '/' ends the host, '#' the URL
        "postgresql://retrain:Abc/Defgh@127.0.0.1:5432/retrain",
        "postgresql://retrain:12/Defgh@127.0.0.1:5432/retrain",  # '12' looks like a port, the rest like a path
        "postgresql://retrain:12#Defgh@127.0.0.1:5432/retrain",
        "postgresql://retrain:Zq9@Xv@h:99999/retrain",
        "postgresql://[retrain:Zq9@Xv@h/retrain",
    ],
)
def test_a_malformed_url_is_refused_without_quoting_any_of_it(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        DatabaseUrl.parse(url)
    message = str(info.value)
    assert "URL-encode" in message
    credentials = url.split("://", 1)[1].rsplit("@", 1)[0]
    pieces = {p for p in re.split(r"[:@/#\[]", credentials) if len(p) >= 2} - {"retrain"}
    assert not [p for p in pieces if p in message], message


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://retrain:{SECRET_ENCODED}@db.example:5432/health",
        f"postgresql://retrain@db.example:5432/health?password={SECRET_ENCODED}",
    ],
)
def test_settings_redact_every_form_of_the_password(tmp_path, url: str) -> None:
    settings = Settings.from_env(env={"DATABASE_URL": url}, root=tmp_path)
    text = " | ".join(
        [f"connecting to {url}", *(f"quoted {form}." for form in SECRET_FORMS), "password=" + SECRET_ENCODED]
    )
    masked = settings.redact(text)
    assert not any(form in masked for form in SECRET_FORMS), masked
    assert "connecting to postgresql://" in masked and "db.example" in masked


def test_settings_redact_the_credentials_of_a_url_they_cannot_parse(tmp_path) -> None:
    import dataclasses

    url = f"postgresql://retrain:{SECRET}@127.0.0.1:5432/retrain"
    settings = dataclasses.replace(Settings.from_env(env={}, root=tmp_path), database_url=url)
    masked = settings.redact(f"could not use {url}; the password was {SECRET} ({SECRET_ENCODED})")
    assert not any(form in masked for form in SECRET_FORMS), masked


def test_log_lines_and_tracebacks_have_the_password_masked(tmp_path) -> None:
    import io
    import logging

    from jobs.settings import RedactingFilter

    url = f"postgresql://retrain@db.example:5432/health?password={SECRET_ENCODED}"
    settings = Settings.from_env(env={"DATABASE_URL": url}, root=tmp_path)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(settings))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"could not connect to {url}")
        except RuntimeError:
            logger.exception("Connecting with %s failed (password %r)", url, SECRET)
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "Traceback" in output and "db.example" in output
    assert not any(form in output for form in SECRET_FORMS), output
