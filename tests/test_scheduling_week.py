"""The week a run covers, computed without Airflow for `retrain airflow trigger`, is the DAG timetable's week."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from jobs.errors import ConfigError
from jobs.scheduling.week import SCHEDULE, check_schedule_zone, latest_ended_week, week_ending


def test_the_week_ending_on_a_sunday_is_the_seven_days_before_it_at_2am() -> None:
    week = week_ending("2026-11-22")
    assert (week.start, week.end) == (datetime(2026, 11, 15, 2, tzinfo=UTC), datetime(2026, 11, 22, 2, tzinfo=UTC))
    assert week.ds_str == "2026-11-22"


def test_another_day_is_refused_with_the_sundays_around_it() -> None:
    with pytest.raises(ConfigError, match="is a Monday") as caught:
        week_ending("2026-11-23")
    assert "2026-11-29 (the week 2026-11-23 falls in) or 2026-11-22 (the week before)" in str(caught.value)
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        week_ending("22/11/2026")


def test_days_the_clocks_change_read_02_00_as_airflow_does() -> None:
    """Paris: 02:00 happens twice on 2026-10-25 (the later one counts) and not at all on 2026-03-29."""
    assert week_ending("2026-10-25", "Europe/Paris").end == datetime(2026, 10, 25, 1, tzinfo=UTC)
    assert week_ending("2026-11-01", "Europe/Paris").start == datetime(2026, 10, 25, 1, tzinfo=UTC)
    assert week_ending("2026-03-29", "Europe/Paris").end == datetime(2026, 3, 29, 1, tzinfo=UTC)
    assert week_ending("2026-07-05", "Europe/Paris").end == datetime(2026, 7, 5, 0, tzinfo=UTC)


def test_the_latest_ended_week_is_the_one_unpausing_runs() -> None:
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert latest_ended_week(monday).ds == date(2026, 11, 29)
    sunday = datetime(2026, 11, 29, tzinfo=UTC)
    assert latest_ended_week(sunday + timedelta(hours=1, minutes=59)).ds == date(2026, 11, 22)  # not over until 02:00
    assert latest_ended_week(sunday + timedelta(hours=2)).ds == date(2026, 11, 29)
    # 01:30 UTC on Sunday is 02:30 in Paris: that week has ended there, not in UTC.
    assert latest_ended_week(sunday + timedelta(hours=1, minutes=30), "Europe/Paris").ds == date(2026, 11, 29)
    # Late on Saturday in UTC is already Sunday 03:00 in Auckland, whose week ended an hour before.
    assert latest_ended_week(datetime(2026, 11, 28, 14, 0, tzinfo=UTC), "Pacific/Auckland").ds == date(2026, 11, 29)


def test_a_schedule_zone_that_differs_from_airflows_is_refused_before_a_week_is_triggered() -> None:
    """Airflow's API reports a DAG's timezone as UTC whatever its timetable's: the DAG's tag names it."""
    paris = {"timezone": "UTC", "tags": [{"name": "ml"}, {"name": "timezone:Europe/Paris"}]}
    check_schedule_zone(paris, "Europe/Paris")
    with pytest.raises(ConfigError, match="schedules its weeks in Europe/Paris .* SCHEDULE_TIMEZONE here is UTC") as e:
        check_schedule_zone(paris, "UTC")
    assert "Set SCHEDULE_TIMEZONE=Europe/Paris here" in str(e.value)
    # London and UTC agree in winter: the tag tells them apart where an instant could not.
    london = {"tags": [{"name": "timezone:Europe/London"}], "next_dagrun_data_interval_end": "2026-12-06T02:00:00Z"}
    with pytest.raises(ConfigError, match="Europe/London"):
        check_schedule_zone(london, "UTC")


def test_a_dag_without_the_tag_is_checked_on_its_next_interval() -> None:
    paris_end = {"next_dagrun_data_interval_end": "2026-12-06T01:00:00Z"}  # Sunday 02:00 in Paris
    check_schedule_zone(paris_end, "Europe/Paris")
    check_schedule_zone({"next_dagrun_data_interval_end": "2026-03-29T01:00:00Z"}, "Europe/Paris")  # clocks jump
    check_schedule_zone({"next_dagrun_data_interval_end": "2026-12-06T02:00:00+00:00"}, "UTC")
    check_schedule_zone({"next_dagrun_data_interval_end": None}, "UTC")  # nothing computed yet: nothing to compare
    with pytest.raises(ConfigError, match="Sunday 01:00 UTC .* not Sunday 02:00 in SCHEDULE_TIMEZONE=UTC") as e:
        check_schedule_zone(paris_end, "UTC")
    assert "Set SCHEDULE_TIMEZONE here to the value Airflow's components run with" in str(e.value)
    with pytest.raises(ConfigError, match="not a time"):
        check_schedule_zone({"next_dagrun_data_interval_end": "soon"}, "UTC")


SUNDAYS = [date(2026, 1, 4) + timedelta(weeks=n) for n in range(52)]


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Paris", "America/New_York"])
def test_every_sunday_of_2026_gives_the_interval_of_the_dags_timetable(airflow_home, timezone: str) -> None:
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable

    timetable = coerce_to_core_timetable(CronDataIntervalTimetable(SCHEDULE, timezone=timezone))
    differ, empty = [], []
    for sunday in SUNDAYS:
        week = week_ending(sunday, timezone)
        interval = timetable.infer_manual_data_interval(run_after=week.end)
        # Airflow's timetable gives the Sunday whose 02:00 the clocks skip an empty interval; ours keeps the week.
        if interval.start == interval.end:
            empty.append(sunday)
        elif (interval.start, interval.end) != (week.start, week.end):
            differ.append(f"{sunday}: ours {week.start}..{week.end}, Airflow's {interval.start}..{interval.end}")
    assert differ == []
    assert len(empty) == (0 if timezone == "UTC" else 1), empty  # the one spring-forward Sunday
