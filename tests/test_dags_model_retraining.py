"""The Airflow DAG as Airflow users test theirs: it parses, its shape and schedule are right, it stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import REPO_ROOT

DAG_ID = "model_retraining"

#: task -> (downstream tasks, trigger rule)
EXPECTED_STRUCTURE = {
    "preflight": ({"extract_data"}, "all_success"),
    "extract_data": ({"has_new_data"}, "all_success"),
    "has_new_data": ({"transform_data"}, "all_success"),
    "transform_data": ({"train_models"}, "all_success"),
    "train_models": ({"validate_models"}, "all_success"),
    "validate_models": ({"should_deploy"}, "all_success"),
    "should_deploy": ({"deploy_models"}, "all_success"),
    "deploy_models": ({"notify"}, "all_success"),
    "notify": (set(), "all_done"),
}


@pytest.fixture(scope="module")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags[DAG_ID]


@pytest.fixture(scope="module")
def dag_module(airflow_home):
    """The DAG file as a module, for its helpers (Airflow puts the DAG folder on sys.path)."""
    import importlib

    sys.path.insert(0, str(REPO_ROOT / "dags"))
    try:
        return importlib.import_module("model_retraining")
    finally:
        sys.path.remove(str(REPO_ROOT / "dags"))


def test_dags_folder_parses_without_import_errors(dagbag, record_property, capsys):
    assert dagbag.import_errors == {}
    assert list(dagbag.dags) == [DAG_ID]
    (stat,) = dagbag.dagbag_stats
    record_property("dag_parse_seconds", stat.duration.total_seconds())
    with capsys.disabled():
        print(f"\n  {stat.file}: parsed in {stat.duration.total_seconds() * 1000:.0f} ms (in-process DagBag)")  # noqa: T201


def test_structure(dag):
    structure = {t.task_id: (set(t.downstream_task_ids), str(t.trigger_rule.value)) for t in dag.tasks}
    assert structure == EXPECTED_STRUCTURE


def test_dag_settings(dag):
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.start_date == datetime(2026, 1, 4, 2, tzinfo=UTC)
    assert set(dag.tags) == {"ml", "retraining", "weekly", "timezone:UTC"}
    assert "Weekly model retraining" in dag.doc_md
    for t in dag.tasks:
        assert t.retries == 2, t.task_id
        assert not t.retry_exponential_backoff, t.task_id  # the policy sets the delays; Airflow's would add jitter
        assert t.retry_delay == timedelta(minutes=5), t.task_id
        assert t.execution_timeout is not None and t.execution_timeout <= timedelta(hours=1), t.task_id
        assert t.retry_policy is not None, t.task_id


def test_errors_a_retry_cannot_fix_fail_at_once_and_the_others_wait_5_then_10_minutes(dag):
    from airflow.sdk import RetryAction

    from jobs.errors import (
        ConfigError,
        DatabaseUnreachableError,
        DataTestError,
        JdbcDriverNotFoundError,
        TokenRefusedError,
    )

    policy = dag.get_task("extract_data").retry_policy
    for error in (ConfigError("x"), JdbcDriverNotFoundError("x"), DataTestError("x"), TokenRefusedError("401")):
        assert policy.evaluate(error, try_number=1, max_tries=2).action is RetryAction.FAIL, error
    first, second = (policy.evaluate(DatabaseUnreachableError("x"), try_number=n, max_tries=2) for n in (1, 2))
    assert (first.action, first.retry_delay) == (RetryAction.RETRY, timedelta(minutes=5))
    assert (second.action, second.retry_delay) == (RetryAction.RETRY, timedelta(minutes=10))
    assert policy.evaluate(DatabaseUnreachableError("x"), try_number=3, max_tries=2).action is RetryAction.DEFAULT


def core_timetable(dag):
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(dag.timetable)


def test_a_scheduled_run_covers_exactly_the_week_before_sunday_2am(dag, dag_module):
    from airflow.timetables.base import DataInterval, TimeRestriction

    timetable = core_timetable(dag)
    assert timetable.summary == "0 2 * * 0"
    week = DataInterval(datetime(2026, 11, 15, 2, tzinfo=UTC), datetime(2026, 11, 22, 2, tzinfo=UTC))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=week,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    start, end = info.data_interval.start, info.data_interval.end
    assert (start, end) == (datetime(2026, 11, 22, 2, tzinfo=UTC), datetime(2026, 11, 29, 2, tzinfo=UTC))
    assert end - start == timedelta(days=7)
    assert info.run_after == end  # it runs when its week is over
    assert info.logical_date == start  # Airflow's logical date is the week's start: the run's ds is its end

    # The steps get that interval: the extract window ends exactly at its end, and the run's ds is that Sunday.
    ctx = dag_module.steps.run_context({"data_interval_start": start, "data_interval_end": end})
    assert ctx.ds_str == "2026-11-29"
    assert (ctx.data_interval_start, ctx.data_interval_end) == (start, end)
    assert ctx.window(365) == (end - timedelta(days=365), end)


def test_without_catchup_the_first_run_is_the_latest_full_week(dag):
    from airflow.timetables.base import TimeRestriction

    info = core_timetable(dag).next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=False),
    )
    start, end = info.data_interval.start, info.data_interval.end
    assert end - start == timedelta(days=7)
    assert (end.weekday(), end.hour, end.minute) == (6, 2, 0)  # a Sunday, 02:00
    assert end - timedelta(days=7) <= datetime.now(UTC) < end + timedelta(days=7)


def test_a_manual_run_of_a_sunday_covers_the_week_ending_then(dag, dag_module):
    """What `airflow dags test model_retraining 2026-11-22T02:00:00+00:00` (and the demo) runs."""
    interval = core_timetable(dag).infer_manual_data_interval(run_after=datetime(2026, 11, 22, 2, tzinfo=UTC))
    assert (interval.start, interval.end) == (
        datetime(2026, 11, 15, 2, tzinfo=UTC),
        datetime(2026, 11, 22, 2, tzinfo=UTC),
    )
    ctx = dag_module.steps.run_context({"data_interval_start": interval.start, "data_interval_end": interval.end})
    assert ctx.ds_str == "2026-11-22"


@pytest.fixture(scope="module")
def fresh_parse(airflow_home) -> dict:
    """Parse the DAG folder in a fresh interpreter, as the DAG processor does, with SCHEDULE_TIMEZONE=Europe/Paris
    and a SPARK_DEFAULTS_CONF that does not exist (the tasks' concern, not the parse's)."""
    code = (
        "import json, sys, time\n"
        "from datetime import datetime, UTC\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "from airflow.serialization.encoders import coerce_to_core_timetable\n"
        "started = time.perf_counter()\n"
        f"bag = DagBag(dag_folder={str(REPO_ROOT / 'dags')!r})\n"
        "seconds = time.perf_counter() - started\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'pyspark', 'sklearn', 'pandas'})\n"
        f"dag = bag.dags[{DAG_ID!r}]\n"
        "week = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval("
        "run_after=datetime(2026, 7, 5, 12, tzinfo=UTC))\n"
        "print(json.dumps({'seconds': seconds, 'errors': bag.import_errors, 'heavy': heavy, 'dags': list(bag.dags),"
        " 'week': [week.start.isoformat(), week.end.isoformat()], 'start_date': dag.start_date.isoformat()}))\n"
    )
    env = {"SCHEDULE_TIMEZONE": "Europe/Paris", "SPARK_DEFAULTS_CONF": "/nonexistent/spark-defaults.conf"}
    return json.loads(run_python(code, airflow_home, **env).strip().splitlines()[-1])


def test_importing_the_dag_file_loads_no_spark_sklearn_or_pandas(fresh_parse, record_property, capsys):
    """The DAG processor parses the file often: heavy libraries are imported inside the tasks only."""
    assert fresh_parse["errors"] == {}
    assert fresh_parse["dags"] == [DAG_ID]
    assert fresh_parse["heavy"] == []
    record_property("dag_folder_parse_seconds_fresh", fresh_parse["seconds"])
    with capsys.disabled():
        print(f"\n  DAG folder parsed in {fresh_parse['seconds'] * 1000:.0f} ms in a fresh interpreter")  # noqa: T201


def test_a_bad_setting_other_than_the_time_zone_does_not_break_the_parse(fresh_parse):
    """Airflow would show an import error and start no run; the run's first task reports the setting instead."""
    assert fresh_parse["errors"] == {}
    assert fresh_parse["dags"] == [DAG_ID]


def test_schedule_time_zone_is_a_setting(fresh_parse):
    """SCHEDULE_TIMEZONE=Europe/Paris moves the run to Sunday 02:00 Paris time (00:00 UTC in summer)."""
    assert fresh_parse["week"] == ["2026-06-28T00:00:00+00:00", "2026-07-05T00:00:00+00:00"]
    assert fresh_parse["start_date"] == "2026-01-04T01:00:00+00:00"


def run_python(code: str, env: dict[str, str], **extra: str) -> str:
    import os

    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
