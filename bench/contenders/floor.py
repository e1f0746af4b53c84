"""The floor: PostgreSQL streams the same query with ``COPY (query) TO STDOUT`` into a sink that drops it.

No contender can read the rows faster than PostgreSQL can produce and send them.
"""

from __future__ import annotations

import sys

import psycopg2

from bench.common import bench_database_url, report, source_query


class NullSink:
    """A file that counts what it is given and keeps nothing."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0

    def write(self, data: bytes | str) -> int:
        self.bytes += len(data)
        self.lines += data.count(b"\n" if isinstance(data, bytes) else "\n")
        return len(data)


def main(database_url: str, out_dir: str) -> None:
    sink = NullSink()
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.copy_expert(f"COPY ({source_query()}) TO STDOUT", sink, size=1 << 20)
    report(rows=sink.lines)


if __name__ == "__main__":
    main(bench_database_url(), sys.argv[1])
