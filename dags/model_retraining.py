"""
### Weekly model retraining

Every Sunday at 02:00 (time zone: the `SCHEDULE_TIMEZONE` setting, UTC by default) this DAG retrains the screening
models on the week's data and deploys the ones that beat production:

`preflight` → `extract_data` → `has_new_data` → `transform_data` → `train_models` → `validate_models` →
`should_deploy` → `deploy_models` → `notify`

Each task calls one step function of the `jobs` package, exactly as `retrain <step> --ds <ds>` does on the
command line; this file adds scheduling, retries and visibility, not logic.

- **The week.** `CronDataIntervalTimetable` gives each run a data interval of exactly one week, ending at the
  Sunday 02:00 it runs. A run's `ds` is the day its interval ends (in the schedule's time zone): the scheduled run
  for the week ending 2026-11-22, `airflow dags test model_retraining 2026-11-22T02:00:00+00:00` and
  `retrain extract --ds 2026-11-22 --data-interval-end 2026-11-22T02:00:00+00:00` all read and write the same
  `data/runs/ds=2026-11-22/`.
- **Safe re-runs.** Everything a run writes is keyed by its `ds` and replaced atomically, so clearing a task and
  running it again gives the same result, and two runs never touch each other's files.
- **XCom** carries each step's `to_dict()`: paths, counts and verdicts, never data.
- **Preflight.** The deploy token (`ADMIN_JWT_TOKEN`) is checked before anything is extracted: a token that is
  missing, not an admin's or about to expire fails the run in seconds instead of after training.
- **Gates.** `has_new_data` skips everything up to `deploy_models` when extraction found nothing new (every
  window empty); `should_deploy` skips `deploy_models` when the gate approved no model. `notify` runs whatever
  happened, reports failed tasks with their error, and then fails itself when something upstream failed, so the
  run shows as failed.
- **Retries.** Two retries with exponential back-off (5 min, then 10 min); errors that a retry cannot fix (bad
  settings, SQL errors, failed data tests, rejected credentials, a bad token) fail at once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pendulum
from airflow.sdk import (
    CronDataIntervalTimetable,
    ExceptionRetryPolicy,
    RetryAction,
    RetryRule,
    TriggerRule,
    dag,
    get_current_context,
    task,
)

from jobs.settings import Settings, schedule_timezone

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = "0 2 * * 0"  # Sundays at 02:00

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

SCHEDULE_TIMEZONE = schedule_timezone()  # the one setting read at parse time; the tasks read the rest

F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    """The settings as the task's process sees them (read when the task runs, not when the file is parsed)."""
    return Settings.from_env(root=PROJECT_ROOT)


def run_context(context: Any):
    """The run's ``RunContext``: Airflow's data interval, and ``ds`` = the day the interval ends."""
    from jobs.errors import ConfigError
    from jobs.run_context import RunContext

    start, end = context["data_interval_start"], context["data_interval_end"]
    if start is None or end is None:
        raise ConfigError(
            "This run has no data interval (was it triggered by an asset?). Trigger it with a logical date, "
            "e.g. `airflow dags trigger model_retraining --logical-date 2026-11-22T02:00:00+00:00`."
        )
    ds = pendulum.instance(end).in_timezone(SCHEDULE_TIMEZONE).date()
    return RunContext.for_ds(ds, plain_utc(end), plain_utc(start))


def plain_utc(moment: datetime) -> datetime:
    """A standard-library UTC datetime: pendulum's lose their time zone in arithmetic once converted to UTC."""
    return datetime.fromtimestamp(moment.timestamp(), UTC)


def error_message(error: BaseException, settings_: Settings | None = None) -> str:
    """One line for the report: the error's own message (ours are written for people), secrets masked."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    message = f"{type(error).__name__}: {text}" if text else type(error).__name__
    if settings_ is not None:
        message = settings_.redact(message)
    return message[:500]


def records_error(fn: F) -> F:
    """Leave the task's error message in XCom (key ``error``) before failing, for ``notify`` to report."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BaseException as e:
            try:
                get_current_context()["ti"].xcom_push(key=ERROR_KEY, value=error_message(e, settings()))
            except Exception:  # never hide the task's own error behind a reporting problem
                log.warning("Could not record the error of this task for notify.", exc_info=True)
            raise

    return wrapper  # type: ignore[return-value]


def step_task(task_id: str, **kwargs: Any) -> Callable[[F], F]:
    """``@task`` with the task's time limit, and its error recorded for notify."""

    def decorate(fn: F) -> F:
        return task(
            task_id=task_id,
            execution_timeout=TIMEOUTS[task_id],
            multiple_outputs=False,  # one XCom per task: the step's to_dict(), not one per key
            **kwargs,
        )(records_error(fn))

    return decorate


@dag(
    dag_id="model_retraining",
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone=SCHEDULE_TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 4, 2, tz=SCHEDULE_TIMEZONE),  # a Sunday
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "ml-platform",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(hours=1),
        "retry_policy": RETRY_POLICY,
    },
    tags=["ml", "retraining", "weekly"],
    doc_md=__doc__,
)
def model_retraining():
    @step_task("preflight")
    def preflight() -> None:
        """Check the deploy token's claims before spending an hour on extraction and training."""
        from jobs.deploy import check_admin_token

        check_admin_token(settings(), valid_for=TOKEN_VALID_FOR)

    @step_task("extract_data")
    def extract_data() -> dict[str, Any]:
        from jobs.extract import Extraction
        from jobs.spark.session import task_spark_session

        s, ctx = settings(), run_context(get_current_context())
        extraction = Extraction.start(s, ctx)  # probes PostgreSQL while Spark starts
        with task_spark_session(s, f"retrain-extract-{ctx.ds_str}") as spark:
            return extraction.run(spark).to_dict()

    @step_task("transform_data")
    def transform_data() -> dict[str, Any]:
        from jobs.spark.session import task_spark_session
        from jobs.transform import transform

        s, ctx = settings(), run_context(get_current_context())
        with task_spark_session(s, f"retrain-transform-{ctx.ds_str}") as spark:
            return transform(s, ctx, spark).to_dict()

    @step_task("train_models")
    def train_models() -> dict[str, Any]:
        from jobs.train import train

        return train(settings(), run_context(get_current_context()), None).to_dict()  # reads Parquet, no Spark

    @step_task("validate_models")
    def validate_models() -> dict[str, Any]:
        from jobs.validate import validate

        return validate(settings(), run_context(get_current_context()), None).to_dict()

    @task.short_circuit(
        task_id="has_new_data",
        execution_timeout=TIMEOUTS["has_new_data"],
        ignore_downstream_trigger_rules=False,  # skip transform_data; the rest follow their trigger rules
    )
    @records_error
    def has_new_data(extracted: dict[str, Any]) -> bool:
        """Train only when extraction found rows: an empty week skips training and deployment, not the report."""
        if extracted.get("nothing_new"):
            log.info("Extraction found nothing new: skipping training and deployment.")
            return False
        return True

    @task.short_circuit(
        task_id="should_deploy",
        execution_timeout=TIMEOUTS["should_deploy"],
        ignore_downstream_trigger_rules=False,  # skip deploy_models only: notify keeps its own trigger rule
    )
    @records_error
    def should_deploy() -> bool:
        """Deploy only when the gate approved at least one model (``decision.json``, read as deploy reads it)."""
        from jobs.deploy import approved_versions

        s, ctx = settings(), run_context(get_current_context())
        approved = approved_versions(s.run_folder(ctx.ds_str).decision)
        if not approved:
            log.info("Not deploying: validate_models approved no model (see %s).", s.run_folder(ctx.ds_str).decision)
            return False
        log.info("Deploying %s.", ", ".join(f"{m} {v}" for m, v in sorted(approved.items())))
        return True

    @step_task("deploy_models")
    def deploy_models() -> dict[str, Any]:
        from jobs.deploy import deploy

        return deploy(settings(), run_context(get_current_context()), None).to_dict()

    @step_task("notify", trigger_rule=TriggerRule.ALL_DONE)
    def notify() -> dict[str, Any]:
        """Report the run whatever happened; fail afterwards when an upstream task failed, so the run shows it."""
        from airflow.sdk.exceptions import AirflowFailException

        from jobs.notify import notify as notify_step

        context = get_current_context()
        failures = failed_tasks(context)
        result = notify_step(settings(), run_context(context), None, failures=failures)
        if failures:
            raise AirflowFailException(
                f"Reported the failure of {', '.join(sorted(failures))}; failing so that the run shows as failed."
            )
        return result.to_dict()

    extracted = extract_data()
    gate = should_deploy()
    preflight() >> extracted
    has_new_data(extracted) >> transform_data() >> train_models() >> validate_models() >> gate
    gate >> deploy_models() >> notify()


def failed_tasks(context: Any) -> dict[str, str]:
    """``{task_id: message}`` of this run's failed tasks, with the error each one recorded."""
    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    failures = {}
    for task_id, state in sorted(states.items()):
        if task_id != ti.task_id and state == "failed":
            failures[task_id] = ti.xcom_pull(task_ids=task_id, key=ERROR_KEY) or "failed (see the task's log)"
    return failures


model_retraining()
