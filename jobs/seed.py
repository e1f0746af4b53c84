"""``retrain db seed``: generate the demo data and load it, replacing what the tables held.

The pieces: :mod:`jobs.seed_features` (clinical distributions and drifting outcomes), :mod:`jobs.seed_json`
(the JSON a backend logs, clean or dirty), :mod:`jobs.seed_generator` (the pure ``generate`` and the data contract)
and :mod:`jobs.seed_loader` (COPY into PostgreSQL).
"""

from __future__ import annotations

import logging
import time
from datetime import date

from jobs.dburl import DatabaseUrl
from jobs.embedded_pg import apply_schema
from jobs.seed_generator import DEFAULT_END_DATE, SeedData, SeedReport, generate
from jobs.seed_loader import LoadResult, load

__all__ = ["DEFAULT_END_DATE", "SeedData", "SeedReport", "generate", "load", "seed_database"]

log = logging.getLogger(__name__)


def seed_database(
    db: DatabaseUrl, rows: int, seed: int, end_date: date = DEFAULT_END_DATE
) -> tuple[SeedReport, LoadResult]:
    """Create the tables where missing, generate ``rows`` records and load them in place of the tables' contents."""
    apply_schema(db)
    started = time.perf_counter()
    data = generate(rows, seed, end_date)
    log.info("Generated %d health records of %d users (seed %d, ending %s) in %.1f s", data.report.records,
             data.report.users, seed, end_date.isoformat(), time.perf_counter() - started)  # fmt: skip
    return data.report, load(db, data)
