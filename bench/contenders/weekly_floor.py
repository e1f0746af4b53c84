"""The weekly floor: the least any tool must read on a Sunday that builds on the previous one.

Two ``COPY (query) TO STDOUT`` into a sink that drops them: the rows of the window the previous Sunday did not have
(every column, the JSON included: ids above ``BENCH_NEW_ABOVE_ID``, the previous snapshot's highest), and the whole
window narrowly (id, verified_outcome, verified_at), since outcomes arrive late and records can leave the window.
"""

from __future__ import annotations

import os
import sys

import psycopg2

from bench.common import bench_database_url, detail, report, source_query
from bench.contenders.floor import NullSink

NEW_ABOVE_ID_ENV = "BENCH_NEW_ABOVE_ID"
REFRESH_COLUMNS = ("id", "verified_outcome", "verified_at")


def queries(window_query: str, new_above_id: int) -> tuple[str, str]:
    """The new rows in full, and the narrow refresh of the window, as PostgreSQL runs them."""
    new = f"SELECT * FROM ({window_query}) AS w WHERE id > {int(new_above_id)}"
    refresh = f"SELECT {', '.join(REFRESH_COLUMNS)} FROM ({window_query}) AS w"
    return new, refresh


def main(database_url: str, out_dir: str) -> None:
    new_query, refresh_query = queries(source_query(), int(os.environ[NEW_ABOVE_ID_ENV]))
    new, refresh = NullSink(), NullSink()
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.copy_expert(f"COPY ({new_query}) TO STDOUT", new, size=1 << 20)
        cur.copy_expert(f"COPY ({refresh_query}) TO STDOUT", refresh, size=1 << 20)
    detail(new_rows=new.lines, new_bytes=new.bytes, refresh_bytes=refresh.bytes)
    report(rows=refresh.lines)


if __name__ == "__main__":
    main(bench_database_url(), sys.argv[1])
