"""The logical date of a run and its data interval: the only notion of time the pipeline uses.

Nothing reads the wall clock, so re-running a logical date reads and writes exactly the same data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from jobs.errors import ConfigError


def parse_ds(ds: str) -> date:
    try:
        return date.fromisoformat(ds)
    except ValueError:
        raise ConfigError(f"--ds must be a date as YYYY-MM-DD. Got {ds!r} instead.") from None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class RunContext:
    """One run: its logical date ``ds`` and its data interval (Airflow's, or derived from ``ds``)."""

    ds: date
    data_interval_start: datetime
    data_interval_end: datetime

    @classmethod
    def for_ds(
        cls,
        ds: str | date,
        data_interval_end: datetime | None = None,
        data_interval_start: datetime | None = None,
    ) -> RunContext:
        """From the command line, the interval ends at ``ds`` 00:00 UTC and spans the week before."""
        day = parse_ds(ds) if isinstance(ds, str) else ds
        end = _utc(data_interval_end) if data_interval_end else datetime(day.year, day.month, day.day, tzinfo=UTC)
        start = _utc(data_interval_start) if data_interval_start else end - timedelta(days=7)
        if start > end:
            raise ConfigError(f"The data interval starts ({start}) after it ends ({end}).")
        return cls(ds=day, data_interval_start=start, data_interval_end=end)

    @property
    def ds_str(self) -> str:
        return self.ds.isoformat()

    def window(self, lookback_days: int) -> tuple[datetime, datetime]:
        """The extraction window ``[data_interval_end - lookback_days, data_interval_end)``."""
        if lookback_days < 1:
            raise ConfigError(f"The 'lookback_days' var must be at least 1. Got {lookback_days} instead.")
        return self.data_interval_end - timedelta(days=lookback_days), self.data_interval_end
