"""The week between two Sundays, written into the bench's PostgreSQL as a backend would have written it.

- New records: the demo generator's rows (the same generator that seeded the window), their times compressed from
  the generator's span into the week, under ids and users above the existing ones. Their outcomes keep their delay
  after the record; one that would arrive on or after the second Sunday is not there yet (NULL).
- Late outcomes: a share of the earlier records still without an outcome get one, dated inside the week.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

log = logging.getLogger(__name__)

_RECORDS_COPY = (
    "COPY health_records (id, user_id, record_type, data, prediction, confidence, model_version, verified_outcome, "
    "created_at, verified_at) FROM STDIN"
)
_USERS_COPY = "COPY users (id, allow_data_collection) FROM STDIN"


@dataclass(frozen=True)
class WeekChange:
    """What the week added: the second Sunday's new rows are those with an id above ``new_above_id``."""

    new_above_id: int
    new_records: int
    late_outcomes: int
    earlier_records: int

    def to_dict(self) -> dict[str, int]:
        return {
            "new_above_id": self.new_above_id,
            "new_records": self.new_records,
            "late_outcomes": self.late_outcomes,
            "earlier_records": self.earlier_records,
        }


def into_week(records: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """``records`` (the generator's, over any span) with ``created_at`` mapped linearly into ``[start, end)`` in
    whole seconds; an outcome keeps its delay and is dropped (NULL) when it would arrive at or after ``end``.

    The map is monotonic and deterministic, so a duplicate submission (same ``created_at`` as its original) stays a
    duplicate and ids still increase with time.
    """
    created = records["created_at"].astype("int64") // 10**9
    first, last = int(created.min()), int(created.max())
    width = int((end - start).total_seconds())
    scale = (width - 1) / max(1, last - first)
    new_created = int(start.timestamp()) + ((created - first) * scale).astype("int64")
    delay = records["verified_at"].astype("int64") // 10**9 - created
    new_verified = new_created + delay
    known = records["verified_outcome"].notna() & records["verified_at"].notna() & (new_verified < end.timestamp())
    out = records.copy()
    out["created_at"] = pd.to_datetime(new_created, unit="s", utc=True)
    out["verified_at"] = pd.Series(pd.to_datetime(new_verified.where(known, 0), unit="s", utc=True)).where(known)
    out["verified_outcome"] = records["verified_outcome"].where(known, None)
    return out


def add_week(database_url: str, week_rows: int, start: datetime, late_share: float, seed: int) -> WeekChange:
    """Insert ``week_rows`` records created in the week ``[start, start + 7 days)`` and give ``late_share`` of the
    earlier records (those still without an outcome) an outcome dated in that week."""
    import psycopg2

    from jobs.demo.generator import generate
    from jobs.demo.loader import ChunkReader, record_chunks, user_chunks

    end = start + timedelta(days=7)
    data = generate(week_rows, seed, end.date())
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT max(id), count(*) FROM health_records")
            max_id, earlier = cur.fetchone()
            cur.execute("SELECT max(id) FROM users")
            (max_user,) = cur.fetchone()
            records = into_week(data.records, start, end)
            records["id"] += max_id
            records["user_id"] += max_user
            users = data.users.assign(id=data.users["id"] + max_user)
            cur.copy_expert(_USERS_COPY, ChunkReader(user_chunks(users)), size=1 << 20)
            cur.copy_expert(_RECORDS_COPY, ChunkReader(record_chunks(records)), size=1 << 20)
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('health_records', 'id'), %s)", (int(records["id"].max()),)
            )
            late = round(earlier * late_share)
            cur.execute(
                """UPDATE health_records AS r
                   SET verified_outcome = CASE WHEN r.id %% 2 = 0 THEN 'positive' ELSE 'negative' END,
                       verified_at = %s::timestamptz + make_interval(secs => r.id %% 604799)
                   FROM (SELECT id FROM health_records WHERE verified_outcome IS NULL AND id <= %s
                         ORDER BY md5(id::text) LIMIT %s) AS chosen
                   WHERE r.id = chosen.id""",
                (start.isoformat(), max_id, late),
            )
            late = cur.rowcount
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE health_records")
            cur.execute("VACUUM ANALYZE users")
    finally:
        conn.close()
    change = WeekChange(new_above_id=max_id, new_records=len(records), late_outcomes=late, earlier_records=earlier)
    log.info("The week added %s", change.to_dict())
    return change
