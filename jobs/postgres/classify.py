"""Turn PostgreSQL driver errors (psycopg2 and the JDBC driver behind Spark) into distinct, actionable errors.

Both drivers report the same situations with similar words; one classifier keeps the messages identical whichever
path failed. Messages are scrubbed of the password before they are shown.
"""

from __future__ import annotations

import re

from jobs.errors import (
    AuthenticationFailedError,
    DatabaseError,
    DatabaseUnreachableError,
    JdbcDriverNotFoundError,
    MissingRelationError,
    RetrainError,
    SparkDriverLostError,
)
from jobs.postgres.url import DatabaseUrl

_UNREACHABLE = re.compile(
    r"connection refused|connection to \S+ refused|could not connect|connection to server .* failed|"
    r"connection attempt failed|"
    r"could not translate host name|unknown host|name or service not known|timeout expired|"
    r"an i/o error occurred|connection has been closed|terminating connection|server closed the connection|"
    r"the connection attempt failed|this connection has been closed|EOFException",
    re.IGNORECASE,
)
_AUTH = re.compile(
    r"password authentication failed|no password supplied|authentication failed|"
    r"role \".*\" does not exist|the server requested .*password",
    re.IGNORECASE,
)
_MISSING = re.compile(r"(relation|column|table) \"?[^\"]*\"? does not exist|does not exist", re.IGNORECASE)
_NO_DRIVER = re.compile(r"ClassNotFoundException: org\.postgresql\.Driver|No suitable driver", re.IGNORECASE)


def scrub(text: str, db: DatabaseUrl) -> str:
    """Remove the password (raw and URL-encoded) from a driver message."""
    if db.password:
        from urllib.parse import quote

        for secret in {db.password, quote(db.password, safe="")}:
            text = text.replace(secret, "***")
    return text


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "Caused by", "JVM stacktrace")):
            return line[:500]
    return text[:500]


def _spark_jvm_gone(error: BaseException) -> bool:
    """py4j lost its socket to Spark's JVM: the JVM died (typically out of memory), not the database."""
    try:
        from py4j.protocol import Py4JNetworkError
    except ImportError:  # pragma: no cover - pyspark always brings py4j
        return isinstance(error, ConnectionError)
    return isinstance(error, Py4JNetworkError | ConnectionError)


def classify(error: BaseException, db: DatabaseUrl, what: str) -> RetrainError:
    """Map a driver exception to the project's error for it; ``what`` says what was being done."""
    if _spark_jvm_gone(error):
        return SparkDriverLostError(
            f"Spark's JVM stopped answering while {what} ({type(error).__name__}); it most likely ran out of memory. "
            "Raise spark.driver.memory in spark-defaults.conf, or lower JDBC_FETCHSIZE / raise JDBC_NUM_PARTITIONS. "
            "Nothing partial was kept."
        )
    text = scrub(str(error), db)
    where = f"{db.host}:{db.port}/{db.database}"
    detail = _first_line(text)
    if _NO_DRIVER.search(text):
        return JdbcDriverNotFoundError(
            f"Spark could not load the PostgreSQL JDBC driver while {what}. Set SPARK_JDBC_JAR to a PostgreSQL JDBC "
            "jar or install it with `apt-get install libpostgresql-jdbc-java` (see README, 'Prerequisites')."
        )
    if _AUTH.search(text):
        return AuthenticationFailedError(
            f"PostgreSQL at {where} rejected the credentials of user {db.user!r} while {what}: {detail}. "
            "Check the user and password in DATABASE_URL (URL-encode special characters, e.g. '@' as %40)."
        )
    if _UNREACHABLE.search(text):
        return DatabaseUnreachableError(
            f"Cannot reach PostgreSQL at {db.host}:{db.port} while {what}: {detail}. Check that the server is "
            "running and that host and port in DATABASE_URL are right (unset DATABASE_URL and run "
            "`retrain db start` to use the embedded database)."
        )
    if _MISSING.search(text):
        return MissingRelationError(
            f"A table or column is missing in {where} while {what}: {detail}. Check the source's table, query and "
            "columns in sql/sources.yml against the database schema."
        )
    return DatabaseError(f"PostgreSQL at {where} failed while {what}: {detail}")
