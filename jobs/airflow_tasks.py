"""What the Airflow DAG's tasks share: their time limits and retry policy, settings and the run's context read when a
task runs, and each failed task's error kept for ``notify``.

The DAG file (``dags/model_retraining.py``) then reads as the schedule: the tasks and their order. This module
needs Airflow's task SDK, but no scheduler: its tests call it with plain dictionaries as the task context.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pendulum
from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule, get_current_context, task

from jobs.errors import ConfigError
from jobs.run_context import RunContext
from jobs.settings import Settings

log = logging.getLogger(__name__)

#: per-task time limits; the deploy token must stay valid for the time the tasks up to deploy_models may take
TIMEOUTS = {
    "preflight": timedelta(minutes=5),
    "extract_data": timedelta(hours=1),
    "transform_data": timedelta(hours=1),
    "train_models": timedelta(hours=1),
    "validate_models": timedelta(minutes=30),
    "has_new_data": timedelta(minutes=5),
    "should_deploy": timedelta(minutes=5),
    "deploy_models": timedelta(minutes=15),
    "notify": timedelta(minutes=10),
}
TOKEN_VALID_FOR = sum(
    (TIMEOUTS[t] for t in ("extract_data", "transform_data", "train_models", "validate_models", "deploy_models")),
    timedelta(),
)

#: errors that the same run cannot fix by trying again: fail at once instead of waiting for retries
NOT_RETRYABLE = [
    "jobs.errors.ConfigError",
    "jobs.errors.SqlProjectError",
    "jobs.errors.DataTestError",
    "jobs.errors.AuthenticationFailedError",
    "jobs.errors.MissingRelationError",
    "jobs.errors.AdminTokenError",
]
RETRY_POLICY = ExceptionRetryPolicy(
    rules=[RetryRule(exception=NOT_RETRYABLE, action=RetryAction.FAIL, reason="retrying cannot fix this error")]
)
ERROR_KEY = "error"  # XCom key under which a failed task leaves its error message for notify
MESSAGE_LIMIT = 500  # characters of an error kept for the report

F = TypeVar("F", bound=Callable[..., Any])


def plain_utc(moment: datetime) -> datetime:
    """A standard-library UTC datetime: pendulum's lose their time zone in arithmetic once converted to UTC."""
    return datetime.fromtimestamp(moment.timestamp(), UTC)


def error_message(error: BaseException, settings: Settings | None = None) -> str:
    """One line for the report: the error's own message (ours are written for people), secrets masked."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    message = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if settings is not None:
        message = settings.redact(message)
    return message[:MESSAGE_LIMIT]


def failed_tasks(context: Mapping[str, Any]) -> dict[str, str]:
    """``{task_id: message}`` of this run's failed tasks (the running one aside), with the error each recorded."""
    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    failures = {}
    for task_id, state in sorted(states.items()):
        if task_id != ti.task_id and state == "failed":
            failures[task_id] = ti.xcom_pull(task_ids=task_id, key=ERROR_KEY) or "failed (see the task's log)"
    return failures


class StepTasks:
    """How the DAG's tasks reach the steps: one per DAG file, for its project folder and schedule time zone.

    Settings are read when a task runs, in the task's own process, never when the DAG file is parsed: a bad
    setting then fails the run's first task with its own message instead of an import error that starts no run.
    """

    def __init__(self, project_root: Path, timezone: str) -> None:
        self.project_root = project_root
        self.timezone = timezone

    def settings(self) -> Settings:
        return Settings.from_env(root=self.project_root)

    def run_context(self, context: Mapping[str, Any] | None = None) -> RunContext:
        """The run's ``RunContext``: Airflow's data interval, and ``ds`` = the day the interval ends."""
        context = get_current_context() if context is None else context
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            raise ConfigError(
                "This run has no data interval (was it triggered by an asset, or without a logical date?). "
                "Trigger it for a given week with a logical date, e.g. "
                "`airflow dags test model_retraining 2026-11-22T02:00:00+00:00`."
            )
        ds = pendulum.instance(end).in_timezone(self.timezone).date()
        return RunContext.for_ds(ds, plain_utc(end), plain_utc(start))

    def records_error(self, fn: F) -> F:
        """Leave the task's error message in XCom (key ``error``) before failing, for ``notify`` to report."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except BaseException as e:
                try:
                    get_current_context()["ti"].xcom_push(key=ERROR_KEY, value=error_message(e, self.settings()))
                except Exception:  # never hide the task's own error behind a reporting problem
                    log.warning("Could not record the error of this task for notify.", exc_info=True)
                raise

        return wrapper  # type: ignore[return-value]

    def step(self, task_id: str, **kwargs: Any) -> Callable[[F], F]:
        """``@task`` with the task's time limit, and its error recorded for notify."""

        def decorate(fn: F) -> F:
            return task(
                task_id=task_id,
                execution_timeout=TIMEOUTS[task_id],
                multiple_outputs=False,  # one XCom per task: the step's to_dict(), not one per key
                **kwargs,
            )(self.records_error(fn))

        return decorate

    def short_circuit(self, task_id: str) -> Callable[[F], F]:
        """``@task.short_circuit`` that skips the tasks up to the next trigger rule, its error recorded too."""

        def decorate(fn: F) -> F:
            return task.short_circuit(
                task_id=task_id,
                execution_timeout=TIMEOUTS[task_id],
                ignore_downstream_trigger_rules=False,  # the skipped tasks' descendants follow their trigger rules
            )(self.records_error(fn))

        return decorate
