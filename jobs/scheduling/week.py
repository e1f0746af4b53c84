"""The DAG's schedule and the week each run covers, without Airflow: what the trigger command asks for.

The DAG (``dags/model_retraining.py``) runs every Sunday at 02:00 in ``SCHEDULE_TIMEZONE`` on the week that just
ended; its timetable, ``CronDataIntervalTimetable(SCHEDULE)``, gives a run the interval
``[previous Sunday 02:00, this Sunday 02:00)``. A run's ``ds`` is the day its interval ends. :func:`week_ending`
gives the same interval for a ``ds``, so a run triggered for a week reads and writes exactly what the scheduled run
of that week would (``tests/test_scheduling_week.py`` compares the two).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jobs.errors import ConfigError
from jobs.run_context import parse_ds

SCHEDULE = "0 2 * * 0"  # Sundays at 02:00, in the schedule's time zone
#: the DAG's tag naming its time zone (``timezone:Europe/Paris``): Airflow's API reports every DAG's as UTC
TIMEZONE_TAG = "timezone:"
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


def latest_ended_week(now: datetime, timezone: str = "UTC") -> Week:
    """The latest week that has ended at ``now``: the one the schedule runs at once when the DAG is unpaused (it
    does not catch up on older weeks)."""
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    sunday = today - timedelta(days=(today.weekday() - SUNDAY) % 7)
    week = week_ending(sunday, timezone)
    return week if week.end <= now else week_ending(sunday - timedelta(days=7), timezone)


def check_schedule_zone(dag: Mapping[str, Any], timezone: str) -> None:
    """Fail when Airflow's DAG (its details, as the REST API gives them) schedules its weeks in another time zone than
    ``timezone``: a week triggered in one zone would cover other hours than the scheduled run of that week, and get
    another logical date, so a second run of the same ``ds``.

    Airflow's API reports every DAG's ``timezone`` as UTC, whatever its timetable's, so the DAG names its zone in a
    tag (:data:`TIMEZONE_TAG`). A DAG without that tag (an older DAG file) is checked on the one instant the
    scheduler computed, its next interval's end, which must be Sunday 02:00 in ``timezone``.
    """
    tags = [str(tag.get("name", "")) if isinstance(tag, Mapping) else str(tag) for tag in dag.get("tags") or ()]
    named = next((tag.removeprefix(TIMEZONE_TAG) for tag in tags if tag.startswith(TIMEZONE_TAG)), None)
    if named is not None:
        if named != timezone:
            raise ConfigError(
                f"Airflow's DAG schedules its weeks in {named} (its tag {TIMEZONE_TAG}{named}), and SCHEDULE_TIMEZONE "
                f"here is {timezone}: the week triggered would not be the scheduled run's. Set "
                f"SCHEDULE_TIMEZONE={named} here, as Airflow's components have it, then trigger again."
            )
        return
    scheduled_end = dag.get("next_dagrun_data_interval_end")
    if not scheduled_end:
        return
    try:
        end = datetime.fromisoformat(str(scheduled_end).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"Airflow's API gave the DAG's next interval end as {scheduled_end!r}, not a time.") from None
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
    day = end.astimezone(ZoneInfo(timezone)).date()
    if day.weekday() == SUNDAY and week_ending(day, timezone).end == end:
        return
    raise ConfigError(
        f"Airflow's DAG runs its weeks at {end:%A %H:%M} UTC ({scheduled_end}), which is not Sunday 02:00 in "
        f"SCHEDULE_TIMEZONE={timezone}, as set here: the week triggered would not be the scheduled run's. Set "
        "SCHEDULE_TIMEZONE here to the value Airflow's components run with, then trigger again."
    )
