"""The DAG's schedule and the week each run covers, without Airflow: what the trigger command asks for.

The DAG (``dags/model_retraining.py``) runs every Sunday at 02:00 in ``SCHEDULE_TIMEZONE`` on the week that just
ended; its timetable, ``CronDataIntervalTimetable(SCHEDULE)``, gives a run the interval
``[previous Sunday 02:00, this Sunday 02:00)``. A run's ``ds`` is the day its interval ends. :func:`week_ending`
gives the same interval for a ``ds``, so a run triggered for a week reads and writes exactly what the scheduled run
of that week would (``tests/test_scheduling_week.py`` compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from jobs.errors import ConfigError
from jobs.run_context import parse_ds

SCHEDULE = "0 2 * * 0"  # Sundays at 02:00, in the schedule's time zone
RUN_TIME = time(2, 0)
SUNDAY = 6  # date.weekday()


@dataclass(frozen=True)
class Week:
    """One run's week: its ``ds`` (the Sunday it ends) and its data interval in UTC."""

    ds: date
    start: datetime
    end: datetime

    @property
    def ds_str(self) -> str:
        return self.ds.isoformat()


def _at_run_time(day: date, zone: ZoneInfo) -> datetime:
    """``day`` at 02:00 in ``zone``, in UTC, read as Airflow's cron timetable reads it on the days clocks change: a
    02:00 that happens twice is the later one, a 02:00 that is skipped is the instant the clocks jump at."""
    later = datetime.combine(day, RUN_TIME, tzinfo=zone).replace(fold=1)
    exists = later.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == later.replace(tzinfo=None, fold=0)
    return (later if exists else later.replace(fold=0)).astimezone(UTC)


def week_ending(ds: str | date, timezone: str = "UTC") -> Week:
    """The week the DAG's run for ``ds`` covers: ``[ds - 7 days, ds)`` at 02:00 in ``timezone``.

    ``ds`` must be a Sunday: the schedule's weeks end on Sundays, and a week ending on another day would overlap
    two scheduled runs.
    """
    day = parse_ds(ds) if isinstance(ds, str) else ds
    if day.weekday() != SUNDAY:
        previous = day - timedelta(days=(day.weekday() - SUNDAY) % 7)
        raise ConfigError(
            f"--ds {day.isoformat()} is a {day:%A}; the DAG's weeks end on Sundays at 02:00 ({timezone}). "
            f"Use the Sunday a week ends on: {(previous + timedelta(days=7)).isoformat()} (the week "
            f"{day.isoformat()} falls in) or {previous.isoformat()} (the week before)."
        )
    zone = ZoneInfo(timezone)
    return Week(day, _at_run_time(day - timedelta(days=7), zone), _at_run_time(day, zone))


def check_schedule_zone(scheduled_end: str | None, timezone: str) -> None:
    """Fail when the DAG's own schedule is not Sunday 02:00 in ``timezone``: a week triggered in another zone would
    cover other hours than the scheduled run of that week.

    ``scheduled_end``: an interval end the scheduler computed (Airflow's ``next_dagrun_data_interval_end``, or the
    DAG's ``start_date``), an ISO 8601 instant. Airflow's API reports the DAG's ``timezone`` as UTC whatever its
    timetable's, so the instants it computed are what is compared. None: nothing to compare, nothing checked.
    """
    if not scheduled_end:
        return
    end = datetime.fromisoformat(scheduled_end.replace("Z", "+00:00"))
    day = end.astimezone(ZoneInfo(timezone)).date()
    if day.weekday() == SUNDAY and week_ending(day, timezone).end == end:
        return
    raise ConfigError(
        f"Airflow's DAG runs its weeks at {end:%A %H:%M} UTC ({scheduled_end}), which is not Sunday 02:00 in "
        f"SCHEDULE_TIMEZONE={timezone}, as set here: the week triggered would not be the scheduled run's. Set "
        "SCHEDULE_TIMEZONE here to the value Airflow's components run with, then trigger again."
    )
