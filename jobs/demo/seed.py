"""``retrain db seed``: generate the demo data and load it, replacing what the tables held.

The pieces: :mod:`jobs.demo.clinical` (clinical distributions and drifting outcomes), :mod:`jobs.demo.json_render`
(the JSON a backend logs, clean or dirty), :mod:`jobs.demo.generator` (the pure ``generate`` and the data contract)
and :mod:`jobs.demo.loader` (COPY into PostgreSQL).
"""

from __future__ import annotations

import logging
import time
from datetime import date

from jobs.demo.generator import DEFAULT_END_DATE, SeedData, SeedReport, generate
from jobs.demo.loader import LoadResult, load
from jobs.postgres.embedded import apply_schema
from jobs.postgres.url import DatabaseUrl

__all__ = ["DEFAULT_END_DATE", "SeedData", "SeedReport", "generate", "load", "seed_database"]

log = logging.getLogger(__name__)


def seed_database(
    db: DatabaseUrl, rows: int, seed: int, end_date: date = DEFAULT_END_DATE
) -> tuple[SeedReport, LoadResult]:
    """Create the tables where missing, generate ``rows`` records and load them in place of the tables' contents."""
    apply_schema(db)
    started = time.perf_counter()
    data = generate(rows, seed, end_date)
    log.info(
        "Generated %d health records of %d users (seed %d, ending %s) in %.1f s",
        data.report.records,
        data.report.users,
        seed,
        end_date.isoformat(),
        time.perf_counter() - started,
    )
    return data.report, load(db, data)
