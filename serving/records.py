"""Every prediction is logged into ``health_records``: the demo's next week trains on what the backend served.

A small thread-safe connection pool; a semaphore makes a request wait for a free connection instead of failing
when all are busy. A connection that broke (server restart) is discarded, not returned to the pool.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from jobs.postgres.url import DatabaseUrl

log = logging.getLogger(__name__)
T = TypeVar("T")

#: the columns a prediction's record is written with (``created_at`` by the database's clock)
INSERT_COLUMNS = ("user_id", "record_type", "data", "prediction", "confidence", "model_version", "created_at")
INSERT = f"""
INSERT INTO health_records ({", ".join(INSERT_COLUMNS)})
VALUES ({", ".join(["%s"] * (len(INSERT_COLUMNS) - 1))}, now())
RETURNING id
"""
FOREIGN_KEY_VIOLATION = "23503"
#: may this backend's role log a record (each column, as the embedded database grants them): the readiness
#: check's one query, which writes nothing
CAN_INSERT = f"""
SELECT
  (SELECT bool_and(has_column_privilege(current_user, 'health_records', name, 'INSERT'))
   FROM unnest(ARRAY[{", ".join(repr(c) for c in INSERT_COLUMNS)}]) AS name),
  -- A serial id draws from its sequence with the inserting role's USAGE; an identity column needs none.
  (SELECT attidentity <> '' OR COALESCE(has_sequence_privilege(pg_get_serial_sequence('health_records', 'id'),
                                                                'USAGE'), true)
   FROM pg_attribute WHERE attrelid = 'health_records'::regclass AND attname = 'id'),
  pg_get_serial_sequence('health_records', 'id')
"""
#: seconds to wait for a connection when the URL sets no ``connect_timeout`` (libpq waits for ever)
CONNECT_TIMEOUT_SECONDS = 5


class UnknownUserError(Exception):
    """The request's user_id names no row of ``users``."""


class RecordLogUnavailable(Exception):
    """The database did not take the record; the message names the database without its password. ``reachable``:
    False when no connection could be made or it broke, True when the database refused the write (a missing
    table, a permission, a full disk)."""

    def __init__(self, message: str, *, reachable: bool = True) -> None:
        super().__init__(message)
        self.reachable = reachable


class RecordLog:
    """Inserts prediction records through a pool of at most ``max_connections`` connections."""

    def __init__(self, database: DatabaseUrl, max_connections: int = 8) -> None:
        self.database = database
        self.max_connections = max_connections
        self._pool: Any = None
        self._pool_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)

    def _get_pool(self) -> Any:
        with self._pool_lock:
            if self._pool is None:
                from psycopg2.pool import ThreadedConnectionPool

                kwargs = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **self.database.psycopg_kwargs()}
                self._pool = ThreadedConnectionPool(1, self.max_connections, **kwargs)
            return self._pool

    def check(self) -> None:
        """Raise :class:`RecordLogUnavailable` unless a record could be logged now: the database answers, and this
        role may insert into ``health_records``. Nothing is written."""
        self._execute(self._require_insert, failure="Could not check that a record can be logged in")

    def _require_insert(self, cur: Any) -> None:
        cur.execute(CAN_INSERT)
        columns, sequence_usage, sequence = cur.fetchone()
        grant = None
        if not columns:
            grant = f"GRANT INSERT ({', '.join(INSERT_COLUMNS)}) ON health_records"
        elif sequence_usage is False:
            grant = f"GRANT USAGE ON SEQUENCE {sequence}"
        if grant:
            raise RecordLogUnavailable(
                f"The role of {self.database.redacted()} may not insert into health_records: {grant} to it."
            )

    def insert(
        self,
        *,
        user_id: int | None,
        record_type: str,
        data: str,
        prediction: str,
        confidence: float,
        model_version: str,
    ) -> int:
        """Insert one record and return its id."""
        import psycopg2

        def insert(cur: Any) -> int:
            try:
                cur.execute(INSERT, (user_id, record_type, data, prediction, confidence, model_version))
            except psycopg2.Error as e:
                if e.pgcode == FOREIGN_KEY_VIOLATION:
                    raise UnknownUserError(f"user_id {user_id} is not a known user.") from e
                raise
            return int(cur.fetchone()[0])

        return self._execute(insert, failure="Could not log the record in")

    def _execute(self, work: Callable[[Any], T], *, failure: str) -> T:
        """``work(cursor)`` in one transaction on a pooled connection; a database error is
        :class:`RecordLogUnavailable` (``failure``, the database, the error), saying whether the database could be
        reached at all."""
        import psycopg2

        with self._slots:
            try:
                pool = self._get_pool()
                conn = pool.getconn()
            except psycopg2.Error as e:
                raise RecordLogUnavailable(
                    f"Cannot reach {self.database.redacted()}: {_first_line(e)}", reachable=False
                ) from e
            broken = False
            try:
                with conn, conn.cursor() as cur:
                    return work(cur)
            except psycopg2.Error as e:
                broken = isinstance(e, psycopg2.OperationalError | psycopg2.InterfaceError)
                raise RecordLogUnavailable(
                    f"{failure} {self.database.redacted()}: {_first_line(e)}", reachable=not broken
                ) from e
            finally:
                pool.putconn(conn, close=broken or bool(conn.closed))

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.closeall()
                self._pool = None


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
