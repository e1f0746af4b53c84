"""Load generated demo data into PostgreSQL with COPY, replacing what the tables held.

Rows are formatted in chunks and streamed into one ``COPY ... FROM STDIN`` per table through a file-like reader,
so memory stays at one chunk of text however many rows there are. Everything happens in one transaction that
starts with ``TRUNCATE``: seeding twice with the same seed gives the same tables, and a failed load leaves the old
data in place. On the embedded cluster (``wal_level = minimal``) a COPY into a table truncated in the same
transaction also skips the WAL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jobs.demo.generator import SeedData
from jobs.postgres.url import DatabaseUrl

log = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
_RECORDS_COPY = (
    "COPY health_records (id, user_id, record_type, data, prediction, confidence, model_version, verified_outcome, "
    "created_at, verified_at) FROM STDIN"
)
_USERS_COPY = "COPY users (id, allow_data_collection) FROM STDIN"


@dataclass(frozen=True)
class LoadResult:
    users: int
    records: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else float("inf")


class ChunkReader:
    """A read-only file over an iterator of byte chunks, for ``cursor.copy_expert``."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._current = b""
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        while self._offset >= len(self._current):
            try:
                self._current, self._offset = next(self._chunks), 0
            except StopIteration:
                return b""
        end = len(self._current) if size is None or size < 0 else self._offset + size
        piece = self._current[self._offset : end]
        self._offset += len(piece)
        return piece

    def readline(self, size: int = -1) -> bytes:  # part of the file protocol; COPY only calls read()
        raise NotImplementedError


def _escape(text: str) -> str:
    """COPY's text format: backslash, tab and newlines must be escaped."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _nullable(values: list) -> list[str]:
    return ["\\N" if v is None else _escape(v) for v in values]


def _timestamps(column: pd.Series) -> list[str]:
    """UTC timestamps in COPY text format (whole seconds), ``\\N`` for NaT."""
    text = np.datetime_as_string(column.dt.tz_convert(None).to_numpy().astype("datetime64[s]"))
    return ["\\N" if t == "NaT" else f"{t}+00" for t in text.tolist()]


def record_chunks(records: pd.DataFrame, chunk_rows: int = CHUNK_ROWS) -> Iterator[bytes]:
    """``health_records`` rows in COPY text format, ``chunk_rows`` at a time."""
    for start in range(0, len(records), chunk_rows):
        part = records.iloc[start : start + chunk_rows]
        columns = zip(
            part["id"].tolist(),
            part["user_id"].tolist(),
            [_escape(v) for v in part["record_type"].tolist()],
            _nullable(part["data"].tolist()),
            _nullable(part["prediction"].tolist()),
            [repr(v) for v in part["confidence"].tolist()],
            _nullable(part["model_version"].tolist()),
            _nullable(part["verified_outcome"].tolist()),
            _timestamps(part["created_at"]),
            _timestamps(part["verified_at"]),
            strict=True,
        )
        lines = (f"{a}\t{b}\t{c}\t{d}\t{e}\t{f}\t{g}\t{h}\t{i}\t{j}\n" for a, b, c, d, e, f, g, h, i, j in columns)
        yield "".join(lines).encode()


def user_chunks(users: pd.DataFrame, chunk_rows: int = CHUNK_ROWS * 4) -> Iterator[bytes]:
    for start in range(0, len(users), chunk_rows):
        part = users.iloc[start : start + chunk_rows]
        pairs = zip(part["id"].tolist(), part["allow_data_collection"].tolist(), strict=True)
        yield "".join(f"{i}\t{'t' if c else 'f'}\n" for i, c in pairs).encode()


def load(db: DatabaseUrl, data: SeedData) -> LoadResult:
    """Replace the contents of ``users`` and ``health_records`` with ``data`` in one transaction."""
    import psycopg2

    from jobs.postgres.classify import classify

    started = time.perf_counter()
    try:
        conn = psycopg2.connect(**db.psycopg_kwargs())
        try:
            with conn, conn.cursor() as cur:
                cur.execute("TRUNCATE health_records, users RESTART IDENTITY CASCADE")
                cur.copy_expert(_USERS_COPY, ChunkReader(user_chunks(data.users)), size=1 << 20)
                cur.copy_expert(_RECORDS_COPY, ChunkReader(record_chunks(data.records)), size=1 << 20)
                # Later inserts by the backend (or tests) continue after the seeded ids.
                cur.execute(
                    "SELECT setval(pg_get_serial_sequence('health_records', 'id'), %s)", (int(len(data.records)),)
                )
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("ANALYZE users")
                cur.execute("ANALYZE health_records")
        finally:
            conn.close()
    except psycopg2.Error as e:
        raise classify(e, db, "loading the demo data") from e
    result = LoadResult(users=len(data.users), records=len(data.records), seconds=time.perf_counter() - started)
    log.info(
        "Loaded %d users and %d health records into %s in %.1f s (%.0f rows/s)",
        result.users,
        result.records,
        db.redacted(),
        result.seconds,
        result.rows_per_second,
    )
    return result


def existing_records(db: DatabaseUrl) -> int:
    """How many health records the database holds (0 when the table does not exist yet)."""
    import psycopg2

    from jobs.postgres.classify import classify

    try:
        conn = psycopg2.connect(**db.psycopg_kwargs())
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('health_records') IS NOT NULL")
                if not cur.fetchone()[0]:
                    return 0
                cur.execute("SELECT count(*) FROM health_records")
                return int(cur.fetchone()[0])
        finally:
            conn.close()
    except psycopg2.Error as e:
        raise classify(e, db, "counting existing health records") from e
