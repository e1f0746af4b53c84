"""The DAG's shared task code, without a scheduler: task contexts are plain dictionaries here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest

from jobs.airflow_tasks import (
    ERROR_KEY,
    StepTasks,
    error_message,
    failed_tasks,
    plain_utc,
    token_from_variable,
)
from jobs.errors import ConfigError
from jobs.scheduling.timeouts import TOKEN_VALID_FOR
from tests.conftest import REPO_ROOT

STEPS = StepTasks(project_root=REPO_ROOT, timezone="Europe/Paris")


class FakeTaskInstance:
    """The two calls ``failed_tasks`` makes of Airflow's task instance, answered from literals."""

    dag_id, run_id, task_id = "model_retraining", "scheduled__2026-11-15", "notify"

    def __init__(self, states: dict[str, str], errors: dict[str, str]) -> None:
        self.states, self.errors = states, errors

    def get_task_states(self, dag_id: str, run_ids: list[str]) -> dict[str, dict[str, str]]:
        assert (dag_id, run_ids) == (self.dag_id, [self.run_id])
        return {self.run_id: self.states}

    def xcom_pull(self, task_ids: str, key: str) -> str | None:
        assert key == ERROR_KEY
        return self.errors.get(task_ids)


def test_the_run_context_is_the_week_of_the_data_interval_and_ds_its_last_day_in_the_schedule_zone() -> None:
    start = pendulum.datetime(2026, 11, 14, 23, tz="UTC")  # Sunday 00:00 in Paris
    end = start + timedelta(days=7)
    ctx = STEPS.run_context({"data_interval_start": start, "data_interval_end": end})
    assert ctx.ds_str == "2026-11-22"
    assert (ctx.data_interval_start, ctx.data_interval_end) == (start, end)
    assert ctx.data_interval_end.tzinfo is UTC  # a standard-library UTC datetime, not pendulum's


@pytest.mark.parametrize("context", [{}, {"data_interval_start": None, "data_interval_end": None}])
def test_a_run_without_a_data_interval_is_a_config_error_that_says_how_to_run_a_week(context: dict) -> None:
    with pytest.raises(ConfigError, match="has no data interval") as caught:
        STEPS.run_context(context)
    assert "retrain airflow trigger --ds 2026-11-22" in str(caught.value)


def test_notify_of_a_run_without_a_week_reports_in_a_folder_of_its_own(tmp_path: Path) -> None:
    from jobs.settings import Settings

    settings = Settings.from_env(env={"DATA_DIR": str(tmp_path)}, root=tmp_path)
    dag_run = SimpleNamespace(run_id="manual__2026-12-06T20:24:04+00:00", run_after=pendulum.datetime(2026, 12, 6, 23))
    target, ctx = STEPS.report_target(settings, {"dag_run": dag_run, "data_interval_start": None})
    assert ctx.ds_str == "2026-12-07"  # the day it ran, in the schedule's zone (Paris)
    assert target.data_dir == tmp_path / "without_interval" / "manual__2026-12-06T20_24_04+00_00"
    week = {
        "data_interval_start": pendulum.datetime(2026, 11, 15, 2),
        "data_interval_end": pendulum.datetime(2026, 11, 22, 2),
    }
    assert STEPS.report_target(settings, {"dag_run": dag_run, **week})[0] is settings


def test_the_deploy_token_of_the_airflow_variable_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_JWT_TOKEN", "from-the-environment")
    assert StepTasks(REPO_ROOT, "UTC", token_lookup=lambda: "from-the-variable").settings().admin_jwt_token == (
        "from-the-variable"
    )
    fallback = StepTasks(REPO_ROOT, "UTC", token_lookup=lambda: None)
    assert fallback.settings().admin_jwt_token == "from-the-environment"
    assert fallback.token_source() == "the ADMIN_JWT_TOKEN environment variable"


def test_outside_a_task_the_variable_lookup_falls_back_to_the_environment() -> None:
    assert token_from_variable("RETRAIN_NO_SUCH_VARIABLE") is None


def test_the_preflights_advice_mints_a_token_that_passes(tmp_path: Path) -> None:
    from jobs.deploy import check_admin_token, ttl_that_passes
    from jobs.errors import AdminTokenError
    from jobs.ml.tokens import mint, parse_ttl
    from jobs.settings import Settings

    key = "k" * 32
    short = mint(key, role="admin", ttl=timedelta(hours=2))
    with pytest.raises(AdminTokenError, match="--ttl 5h") as caught:
        check_admin_token(Settings.from_env(env={"ADMIN_JWT_TOKEN": short}, root=tmp_path), valid_for=TOKEN_VALID_FOR)
    assert "Airflow Variable ADMIN_JWT_TOKEN" in str(caught.value)
    from jobs.commands.token import DEFAULT_TTL

    assert ttl_that_passes(TOKEN_VALID_FOR) == DEFAULT_TTL  # `retrain token` alone mints one that passes
    advised = mint(key, role="admin", ttl=parse_ttl(ttl_that_passes(TOKEN_VALID_FOR)))
    check_admin_token(Settings.from_env(env={"ADMIN_JWT_TOKEN": advised}, root=tmp_path), valid_for=TOKEN_VALID_FOR)


def test_plain_utc_keeps_the_instant() -> None:
    moment = pendulum.datetime(2026, 11, 22, 3, tz="Europe/Paris")
    assert plain_utc(moment) == datetime(2026, 11, 22, 2, tzinfo=UTC)
    assert type(plain_utc(moment)) is datetime


def test_an_error_message_is_its_first_line_with_the_type_and_the_secrets_masked(tmp_path: Path) -> None:
    from jobs.settings import Settings

    settings = Settings.from_env(env={"DATABASE_URL": "postgresql://app:s3cret-pw@db:5432/health"}, root=tmp_path)
    error = ConfigError("could not connect to postgresql://app:s3cret-pw@db:5432/health\nsecond line")
    message = error_message(error, settings)
    assert message.startswith("ConfigError: could not connect to ")
    assert "s3cret-pw" not in message and "second line" not in message
    assert error_message(RuntimeError()) == "RuntimeError"
    assert len(error_message(ValueError("x" * 2000))) == 500


def test_failed_tasks_lists_the_others_failures_with_their_recorded_errors() -> None:
    ti = FakeTaskInstance(
        states={"extract_data": "success", "transform_data": "failed", "train_models": "failed", "notify": "failed"},
        errors={"transform_data": "DataTestError: 3 rows failed not_null(age)"},
    )
    assert failed_tasks({"ti": ti}) == {
        "transform_data": "DataTestError: 3 rows failed not_null(age)",
        "train_models": "failed (see the task's log)",
    }


def test_the_deploy_token_must_outlive_the_tasks_before_deploy() -> None:
    assert timedelta(hours=3, minutes=45) == TOKEN_VALID_FOR


@pytest.mark.parametrize(("params", "expected"), [({}, False), ({"full_refresh": True}, True), (None, False)])
def test_a_run_is_incremental_unless_its_params_ask_for_a_full_refresh(params, expected: bool) -> None:
    assert STEPS.full_refresh({"params": params}) is expected


def test_a_full_refresh_param_that_is_no_boolean_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"full_refresh must be true or false\. Got 'yes'"):
        STEPS.full_refresh({"params": {"full_refresh": "yes"}})
