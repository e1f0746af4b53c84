"""What the Airflow DAG's tasks share: their time limits and retry policy, settings (the deploy token from an Airflow
Variable) and the run's context read when a task runs, and each failed task's error kept for ``notify``.

The DAG file (``dags/model_retraining.py``) then reads as the schedule: the tasks and their order. This module
needs Airflow's task SDK, but no scheduler: its tests call it with plain dictionaries as the task context.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pendulum
from airflow.sdk import RetryAction, RetryDecision, RetryPolicy, get_current_context, task

from jobs import errors
from jobs.errors import ConfigError
from jobs.run_context import RunContext
from jobs.scheduling.api import TOKEN_VARIABLE
from jobs.scheduling.timeouts import TIMEOUTS
from jobs.settings import Settings, redact_logs

log = logging.getLogger(__name__)

#: errors that the same run cannot fix by trying again: fail at once instead of waiting for retries
NOT_RETRYABLE: tuple[type[Exception], ...] = (
    errors.ConfigError,
    errors.SqlProjectError,
    errors.DataTestError,
    errors.AuthenticationFailedError,
    errors.MissingRelationError,
    errors.AdminTokenError,  # TokenRefusedError among them: the backend answered 401 or 403
)
RETRIES = 2
RETRY_DELAY = timedelta(minutes=5)  # the first retry's wait; each next one doubles it
MAX_RETRY_DELAY = timedelta(hours=1)


class StepRetryPolicy(RetryPolicy):
    """Fail at once on an error a retry cannot fix; retry the others after exactly 5 min, then 10 min.

    Airflow's own exponential back-off adds a jitter of up to the delay itself (5-10 min, then 10-20 min), so the
    waits an operator reads in the docs would not be the ones a run takes: the delay is set here instead. A task
    whose process dies without raising (killed, out of memory) is not seen by a policy; Airflow retries it after the
    task's ``retry_delay``, the same 5 min.
    """

    def __init__(
        self,
        not_retryable: tuple[type[Exception], ...] = NOT_RETRYABLE,
        first_delay: timedelta = RETRY_DELAY,
        max_delay: timedelta = MAX_RETRY_DELAY,
    ) -> None:
        self.not_retryable = not_retryable
        self.first_delay = first_delay
        self.max_delay = max_delay

    def delay(self, try_number: int) -> timedelta:
        """The wait after the ``try_number``-th try failed: 5 min, 10 min, 20 min, ... at most an hour."""
        return min(self.first_delay * 2 ** max(try_number - 1, 0), self.max_delay)

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int, context: Any = None) -> RetryDecision:
        name = type(exception).__name__
        if isinstance(exception, self.not_retryable):
            return RetryDecision.fail(reason=f"{name}: retrying cannot fix this error, so the task fails now")
        if 0 < max_tries < try_number:  # Airflow's own count fails it; 0 may mean unknown, so Airflow decides
            return RetryDecision(RetryAction.DEFAULT, reason=f"{name}: no retry left after {try_number} tries")
        wait = self.delay(try_number)
        return RetryDecision.retry(
            delay=wait, reason=f"{name}: try {try_number + 1} in {wait.total_seconds() / 60:g} min"
        )


RETRY_POLICY = StepRetryPolicy()
ERROR_KEY = "error"  # XCom key under which a failed task leaves its error message for notify
MESSAGE_LIMIT = 500  # characters of an error kept for the report

F = TypeVar("F", bound=Callable[..., Any])


def plain_utc(moment: datetime) -> datetime:
    """A standard-library UTC datetime: pendulum's lose their time zone in arithmetic once converted to UTC."""
    return datetime.fromtimestamp(moment.timestamp(), UTC)


def mask_in_task_log(settings: Settings) -> None:
    """Hide the settings' secrets in the task's log: Airflow's masker gets each in the spellings a URL gives it, and
    the log handlers of the task's process pass every line through ``Settings.redact`` too."""
    from urllib.parse import quote, quote_plus

    from airflow.sdk.log import mask_secret

    redact_logs(settings)
    for secret in settings.secrets():
        encoded = quote(secret, safe="")
        lower_hex = re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)
        for spelling in {secret, encoded, lower_hex, quote(secret), quote_plus(secret)}:
            mask_secret(spelling)


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


NO_INTERVAL = (
    "This run has no data interval, so it has no week to retrain on: it was triggered without a logical date "
    "(a plain `airflow dags trigger`, the REST API with logical_date null) or by an asset. Run a given week with "
    "`retrain airflow trigger --ds 2026-11-22` (the Sunday the week ends; see docs/operations.md), or let the "
    "schedule run it."
)
WITHOUT_INTERVAL_DIR = "without_interval"  # under DATA_DIR: the reports of runs that have no week


def token_from_variable(name: str = TOKEN_VARIABLE) -> str | None:
    """The Airflow Variable ``name``, looked up as Airflow does (secrets backends, then its database), or None.

    Read by each task when it runs, so a token rotated there is used by the next task without restarting anything.
    """
    from airflow.sdk import Variable

    try:
        value = Variable.get(name, default=None)
    except Exception as e:  # noqa: BLE001 - no Airflow to ask (a plain process): the environment is the fallback
        log.debug("The Airflow Variable %s could not be read (%s).", name, type(e).__name__)
        return None
    return str(value) if value else None


class StepTasks:
    """How the DAG's tasks reach the steps: one per DAG file, for its project folder and schedule time zone.

    Settings are read when a task runs, in the task's own process, never when the DAG file is parsed: a bad
    setting then fails the run's first task with its own message instead of an import error that starts no run.
    """

    def __init__(
        self, project_root: Path, timezone: str, token_lookup: Callable[[], str | None] = token_from_variable
    ) -> None:
        self.project_root = project_root
        self.timezone = timezone
        self.token_lookup = token_lookup

    def settings(self) -> Settings:
        """The settings of the task's environment, with the deploy token of the Airflow Variable ADMIN_JWT_TOKEN
        when one is set (the ``ADMIN_JWT_TOKEN`` environment variable otherwise)."""
        settings = Settings.from_env(root=self.project_root)
        token = self.token_lookup()
        settings = replace(settings, admin_jwt_token=token) if token else settings
        mask_in_task_log(settings)
        return settings

    def token_source(self) -> str:
        """Where the deploy token comes from, for the task log (never the token itself)."""
        if self.token_lookup():
            return f"the Airflow Variable {TOKEN_VARIABLE}"
        return "the ADMIN_JWT_TOKEN environment variable" if self.settings().admin_jwt_token else "nowhere"

    def run_context(self, context: Mapping[str, Any] | None = None) -> RunContext:
        """The run's ``RunContext``: Airflow's data interval, and ``ds`` = the day the interval ends."""
        context = get_current_context() if context is None else context
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None:
            raise ConfigError(NO_INTERVAL)
        ds = pendulum.instance(end).in_timezone(self.timezone).date()
        return RunContext.for_ds(ds, plain_utc(end), plain_utc(start))

    def full_refresh(self, context: Mapping[str, Any] | None = None) -> bool:
        """The run's ``full_refresh`` param (dbt's ``--full-refresh``): read every source's window whole and build
        the incremental models from their sources. Off for scheduled runs; a manual trigger can set it."""
        context = get_current_context() if context is None else context
        value = (context.get("params") or {}).get("full_refresh", False)
        if not isinstance(value, bool):
            raise ConfigError(f"The run's param full_refresh must be true or false. Got {value!r} instead.")
        return value

    def report_target(
        self, settings: Settings, context: Mapping[str, Any] | None = None
    ) -> tuple[Settings, RunContext]:
        """Where ``notify`` reports: the run's folder; for a run without a data interval, which has no week and so
        no ``ds`` of its own, ``<DATA_DIR>/without_interval/<run_id>/runs/ds=<day it ran>/``, so that its report
        never replaces a week's."""
        context = get_current_context() if context is None else context
        try:
            return settings, self.run_context(context)
        except ConfigError:
            dag_run = context.get("dag_run")
            moment = getattr(dag_run, "run_after", None) or context.get("logical_date")
            if moment is None:
                raise
            run_id = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(getattr(dag_run, "run_id", None) or context.get("run_id")))
            ds = pendulum.instance(moment).in_timezone(self.timezone).date()
            data_dir = settings.data_dir / WITHOUT_INTERVAL_DIR / run_id
            return replace(settings, data_dir=data_dir), RunContext.for_ds(ds)

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
