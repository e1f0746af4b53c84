"""Turn PostgreSQL driver errors (psycopg2 and the JDBC driver behind Spark) into distinct, actionable errors.

Errors are told apart by code, not by wording, because the server words its messages in its ``lc_messages``
language: first the SQLSTATE (psycopg2's ``pgcode``; ``getSQLState()`` of every ``SQLException`` along the Java
cause chain of a Spark error), then the type of the Java exception (``java.net.ConnectException``, an
``EOFException`` when the server went away), and only then the text. The text is still needed for one case:
libpq keeps the SQLSTATE of a failure *while connecting* to itself, so psycopg2 reports a rejected password with
``pgcode`` ``None``; there, libpq's own words (English in our process) say whether the server was reached at all,
and a server that answered but refused the connection is reported as such, with its own (translated) words.
Messages are scrubbed of the password before they are shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

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
from jobs.spark.messages import strip_py4j
from jobs.spark.remote import server_gone, unavailable

# SQLSTATE codes and classes (PostgreSQL manual, appendix A).
_AUTH_CODES = {"28000", "28P01"}  # invalid_authorization_specification, invalid_password
_MISSING_CODES = {"42P01", "42703", "3D000", "3F000"}  # undefined table/column, no such database/schema
_GONE_CODES = {"57P01", "57P02", "57P03"}  # admin/crash shutdown, cannot connect now
_CONNECTION_CLASS = "08"  # connection_exception: refused, broken, failed

# Java exception types that mean the server could not be reached or went away.
_UNREACHABLE_TYPES = (
    "java.net.ConnectException",
    "java.net.NoRouteToHostException",
    "java.net.UnknownHostException",
    "java.net.SocketTimeoutException",
    "java.net.SocketException",
    "java.io.EOFException",
)
_NO_DRIVER_TYPES = ("java.lang.ClassNotFoundException",)

# Text fallbacks: libpq's own messages (not translated in our process) and, last, the server's English wording.
_LIBPQ_UNREACHABLE = re.compile(
    r"connection refused|could not connect|could not translate host name|no route to host|timeout expired|"
    r"server closed the connection unexpectedly|network is unreachable|could not receive data|"
    r"no such file or directory",
    re.IGNORECASE,
)
_LIBPQ_SERVER_ANSWERED = re.compile(r"connection to server .* failed: (FATAL|[A-Z]+):", re.IGNORECASE)
_UNREACHABLE = re.compile(
    r"connection refused|connection to \S+ refused|could not connect|connection attempt failed|"
    r"an i/o error occurred|connection has been closed|terminating connection|EOFException",
    re.IGNORECASE,
)
_AUTH = re.compile(
    r"password authentication failed|no password supplied|authentication failed|"
    r"role \".*\" does not exist|the server requested .*password",
    re.IGNORECASE,
)
_MISSING = re.compile(r"(relation|column|table|database) \"?[^\"]*\"? does not exist", re.IGNORECASE)
_NO_DRIVER = re.compile(r"ClassNotFoundException: org\.postgresql\.Driver|No suitable driver", re.IGNORECASE)


@dataclass(frozen=True)
class Cause:
    """One link of an error's cause chain, as far as classification cares: its type, SQLSTATE and message."""

    type_name: str
    sqlstate: str | None
    message: str


def scrub(text: str, db: DatabaseUrl) -> str:
    """Remove the password (raw and URL-encoded) from a driver message."""
    if db.password:
        from urllib.parse import quote

        for secret in {db.password, quote(db.password, safe="")}:
            text = text.replace(secret, "***")
    return text


def _first_line(text: str) -> str:
    for line in strip_py4j(text).splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "Caused by", "JVM stacktrace", "...")):
            return line[:500]
    return text[:500]


def _java_chain(throwable: object, limit: int = 20) -> Iterator[Cause]:
    """Walk a Java throwable (a py4j object) and its causes; ``SQLException`` links carry their SQLState."""
    from py4j.protocol import Py4JError

    seen = 0
    while throwable is not None and seen < limit:
        seen += 1
        try:
            type_name = throwable.getClass().getName()  # type: ignore[attr-defined]
            message = str(throwable.getMessage() or "")  # type: ignore[attr-defined]
        except Py4JError:
            return
        try:
            sqlstate = throwable.getSQLState()  # type: ignore[attr-defined]  # only SQLException has it
        except Py4JError:
            sqlstate = None
        yield Cause(type_name, str(sqlstate) if sqlstate else None, message)
        try:
            throwable = throwable.getCause()  # type: ignore[attr-defined]
        except Py4JError:
            return


def causes(error: BaseException) -> list[Cause]:
    """Everything known about ``error``'s causes: psycopg2's pgcode, the Java chain of a py4j error, Python's chain."""
    found: list[Cause] = []
    current: BaseException | None = error
    while current is not None and len(found) < 40:
        pgcode = getattr(current, "pgcode", None)
        found.append(Cause(f"python:{type(current).__module__}.{type(current).__name__}", pgcode, str(current)))
        java = getattr(current, "java_exception", None)
        if java is not None:
            found.extend(_java_chain(java))
        current = current.__cause__ or current.__context__
    return found


def _spark_jvm_gone(error: BaseException) -> bool:
    """py4j lost its socket to Spark's JVM: the JVM died (typically out of memory), not the database."""
    try:
        from py4j.protocol import Py4JNetworkError
    except ImportError:  # pragma: no cover - pyspark always brings py4j
        return isinstance(error, ConnectionError)
    return isinstance(error, Py4JNetworkError | ConnectionError)


def _kind(chain: list[Cause], text: str) -> str:
    """``auth``, ``missing``, ``unreachable``, ``refused``, ``driver`` or ``other``: codes first, text last."""
    codes = [c.sqlstate for c in chain if c.sqlstate]
    for code in codes:
        if code in _AUTH_CODES:
            return "auth"
        if code in _MISSING_CODES:
            return "missing"
        if code.startswith(_CONNECTION_CLASS) or code in _GONE_CODES:
            return "unreachable"
    types = [c.type_name for c in chain]
    if any(t in _NO_DRIVER_TYPES for t in types) or _NO_DRIVER.search(text):
        return "driver"
    if any(t in _UNREACHABLE_TYPES for t in types):
        return "unreachable"
    if codes:
        return "other"  # a server error with a code we do not single out
    # No code at all: psycopg2 failing to connect (libpq keeps the SQLSTATE of connection failures to itself).
    if _LIBPQ_UNREACHABLE.search(text):
        return "unreachable"
    if _AUTH.search(text):
        return "auth"
    if _MISSING.search(text):
        return "missing"
    if _UNREACHABLE.search(text):
        return "unreachable"
    if _LIBPQ_SERVER_ANSWERED.search(text):
        return "refused"
    return "other"


def classify(error: BaseException, db: DatabaseUrl, what: str) -> RetrainError:
    """Map a driver exception to the project's error for it; ``what`` says what was being done."""
    gone = server_gone(error)
    if gone is not None:
        return unavailable(None, gone, what)
    if _spark_jvm_gone(error):
        return SparkDriverLostError(
            f"Spark's JVM stopped answering while {what} ({type(error).__name__}); it most likely ran out of memory. "
            "Raise spark.driver.memory in spark-defaults.conf, or lower JDBC_FETCHSIZE / raise JDBC_NUM_PARTITIONS. "
            "Nothing partial was kept."
        )
    chain = causes(error)
    text = scrub("\n".join(c.message for c in chain), db)
    where = f"{db.host}:{db.port}/{db.database}"
    # The most specific message: that of the deepest link with a SQLSTATE, else the first line of the error.
    coded = [c for c in chain if c.sqlstate]
    detail = _first_line(scrub(coded[-1].message if coded else str(error), db)).rstrip(".")
    kind = _kind(chain, text)
    if kind == "driver":
        return JdbcDriverNotFoundError(
            f"Spark could not load the PostgreSQL JDBC driver while {what}. Set SPARK_JDBC_JAR to a PostgreSQL JDBC "
            "jar or install it with `apt-get install libpostgresql-jdbc-java` "
            "(see docs/operations.md, 'Prerequisites')."
        )
    if kind == "auth":
        return AuthenticationFailedError(
            f"PostgreSQL at {where} rejected the credentials of user {db.user!r} while {what}: {detail}. "
            "Check the user and password in DATABASE_URL (URL-encode special characters, e.g. '@' as %40)."
        )
    if kind == "refused":
        return AuthenticationFailedError(
            f"PostgreSQL at {where} refused the connection of user {db.user!r} while {what}: {detail}. "
            "Check the user, password and database name in DATABASE_URL (URL-encode special characters)."
        )
    if kind == "unreachable":
        return DatabaseUnreachableError(
            f"Cannot reach PostgreSQL at {db.host}:{db.port} while {what}: {detail}. Check that the server is "
            "running and that host and port in DATABASE_URL are right (unset DATABASE_URL and run "
            "`retrain db start` to use the embedded database)."
        )
    if kind == "missing":
        return MissingRelationError(
            f"A table or column is missing in {where} while {what}: {detail}. Check the source's table, query and "
            "columns in sql/sources.yml against the database schema."
        )
    return DatabaseError(f"PostgreSQL at {where} failed while {what}: {detail}")
