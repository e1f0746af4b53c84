"""Every prediction is logged into ``health_records``: the demo's next week trains on what the backend served.

A small thread-safe connection pool; a semaphore makes a request wait for a free connection instead of failing
when all are busy. A connection that broke (server restart) is discarded, not returned to the pool.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from jobs.postgres.url import DatabaseUrl

log = logging.getLogger(__name__)

INSERT = """
INSERT INTO health_records (user_id, record_type, data, prediction, confidence, model_version, created_at)
VALUES (%s, %s, %s, %s, %s, %s, now())
RETURNING id
"""
FOREIGN_KEY_VIOLATION = "23503"


class UnknownUserError(Exception):
    """The request's user_id names no row of ``users``."""


class RecordLogUnavailable(Exception):
    """The database did not take the record; the message names the database without its password. ``reachable``:
    False when no connection could be made, True when the database refused the write (a missing table, a
    permission, a full disk)."""

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

                self._pool = ThreadedConnectionPool(1, self.max_connections, **self.database.psycopg_kwargs())
            return self._pool

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
                    cur.execute(INSERT, (user_id, record_type, data, prediction, confidence, model_version))
                    return int(cur.fetchone()[0])
            except psycopg2.Error as e:
                if e.pgcode == FOREIGN_KEY_VIOLATION:
                    raise UnknownUserError(f"user_id {user_id} is not a known user.") from e
                broken = isinstance(e, psycopg2.OperationalError | psycopg2.InterfaceError)
                raise RecordLogUnavailable(
                    f"Could not log the record in {self.database.redacted()}: {_first_line(e)}"
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
