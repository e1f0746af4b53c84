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
  for the week ending 2026-11-22, `retrain airflow trigger --ds 2026-11-22` (the way to run a given week),
  `airflow dags test model_retraining 2026-11-22T02:00:00+00:00` and
  `retrain extract --ds 2026-11-22 --data-interval-end 2026-11-22T02:00:00+00:00` all read and write the same
  `data/runs/ds=2026-11-22/`. Unpausing the DAG runs the latest complete week at once.
- **Safe re-runs.** Everything a run writes is keyed by its `ds` and replaced atomically, so clearing a task and
  running it again gives the same result, and two runs never touch each other's files.
- **Incremental.** Each week `extract_data` reads only the rows its previous snapshot lacks in full, and
  `transform_data` builds the incremental models on the previous run's output. Trigger with the param
  `full_refresh: true` to read and build everything again (`retrain airflow trigger` or the UI's form).
- **XCom** carries each step's `to_dict()`: paths, counts and verdicts, never data.
- **Preflight.** The run's week and the deploy token are checked before anything is extracted: a run without a data
  interval, or a token that is missing, not an admin's or about to expire, fails the run in seconds instead of
  after training. The token is read when each task runs: the Airflow Variable `ADMIN_JWT_TOKEN`, else the
  environment's `ADMIN_JWT_TOKEN`, so rotating it needs no restart.
- **Gates.** `has_new_data` skips everything up to `deploy_models` when extraction found nothing new (every
  window empty); `should_deploy` skips `deploy_models` when the gate approved no model. `notify` runs whatever
  happened, reports failed tasks with their error, and then fails itself when something upstream failed, so the
  run shows as failed.
- **Retries.** Two retries, after exactly 5 min, then 10 min; errors that a retry cannot fix (bad settings, SQL
  errors, failed data tests, rejected credentials, a bad token or one the backend refuses) fail at once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, get_current_context

from jobs.airflow_tasks import (
    MAX_RETRY_DELAY,
    RETRIES,
    RETRY_DELAY,
    RETRY_POLICY,
    StepTasks,
    failed_tasks,
)
from jobs.scheduling.timeouts import TOKEN_VALID_FOR
from jobs.scheduling.week import SCHEDULE, TIMEZONE_TAG
from jobs.settings import schedule_timezone

log = logging.getLogger(__name__)

SCHEDULE_TIMEZONE = schedule_timezone()  # the one setting read at parse time; the tasks read the rest
steps = StepTasks(project_root=Path(__file__).resolve().parents[1], timezone=SCHEDULE_TIMEZONE)


@dag(
    dag_id="model_retraining",
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone=SCHEDULE_TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 4, 2, tz=SCHEDULE_TIMEZONE),  # a Sunday
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "ml-platform",
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,  # the policy doubles it per try; Airflow uses it alone for a killed task
        "max_retry_delay": MAX_RETRY_DELAY,
        "retry_policy": RETRY_POLICY,
    },
    tags=["ml", "retraining", "weekly", f"{TIMEZONE_TAG}{SCHEDULE_TIMEZONE}"],  # the API reports every zone as UTC
    params={
        "full_refresh": Param(
            False,
            type="boolean",
            description="Read every source's window whole and build the incremental models from their sources "
            "(dbt's --full-refresh), e.g. after changing how stg_predictions parses a value.",
        )
    },
    doc_md=__doc__,
)
def model_retraining():
    @steps.step("preflight")
    def preflight() -> None:
        """Check the run's week and the deploy token's claims before spending an hour on extraction and training."""
        from jobs.deploy import check_admin_token

        ctx = steps.run_context()  # a run without a data interval fails here, at once
        start, end = ctx.data_interval_start, ctx.data_interval_end
        log.info("The week [%s, %s), ds=%s; the deploy token from %s.", start, end, ctx.ds_str, steps.token_source())
        check_admin_token(steps.settings(), valid_for=TOKEN_VALID_FOR)

    @steps.step("extract_data")
    def extract_data() -> dict[str, Any]:
        from jobs.extract import Extraction
        from jobs.spark.session import task_spark_session

        s, ctx = steps.settings(), steps.run_context()
        extraction = Extraction.start(s, ctx, full_refresh=steps.full_refresh())  # probes while Spark starts
        log_file = s.run_folder(ctx.ds_str).logs / "spark-extract.log"
        with task_spark_session(s, f"retrain-extract-{ctx.ds_str}", log_file=log_file) as spark:
            return extraction.run(spark).to_dict()

    @steps.short_circuit("has_new_data")
    def has_new_data(extracted: dict[str, Any]) -> bool:
        """Train only when extraction found rows: an empty week skips training and deployment, not the report."""
        if extracted.get("nothing_new"):
            log.info("Extraction found nothing new: skipping training and deployment.")
            return False
        return True

    @steps.step("transform_data")
    def transform_data() -> dict[str, Any]:
        from jobs.spark.session import task_spark_session
        from jobs.transform import transform

        s, ctx = steps.settings(), steps.run_context()
        log_file = s.run_folder(ctx.ds_str).logs / "spark-transform.log"
        with task_spark_session(s, f"retrain-transform-{ctx.ds_str}", log_file=log_file) as spark:
            return transform(s, ctx, spark, full_refresh=steps.full_refresh()).to_dict()

    @steps.step("train_models")
    def train_models() -> dict[str, Any]:
        from jobs.train import train

        return train(steps.settings(), steps.run_context()).to_dict()  # reads Parquet, no Spark

    @steps.step("validate_models")
    def validate_models() -> dict[str, Any]:
        from jobs.validate import validate

        return validate(steps.settings(), steps.run_context()).to_dict()

    @steps.short_circuit("should_deploy")
    def should_deploy() -> bool:
        """Deploy only when the gate approved at least one model (``decision.json``, read as deploy reads it)."""
        from jobs.deploy import approved_versions

        decision = steps.settings().run_folder(steps.run_context().ds_str).decision
        approved = approved_versions(decision)
        if not approved:
            log.info("Not deploying: validate_models approved no model (see %s).", decision)
            return False
        log.info("Deploying %s.", ", ".join(f"{m} {v}" for m, v in sorted(approved.items())))
        return True

    @steps.step("deploy_models")
    def deploy_models() -> dict[str, Any]:
        from jobs.deploy import deploy

        return deploy(steps.settings(), steps.run_context()).to_dict()

    @steps.step("notify", trigger_rule=TriggerRule.ALL_DONE)
    def notify() -> dict[str, Any]:
        """Report the run whatever happened; fail afterwards when an upstream task failed, so the run shows it."""
        from airflow.sdk.exceptions import AirflowFailException

        from jobs.notify import notify as notify_step

        failures = failed_tasks(get_current_context())
        settings, ctx = steps.report_target(steps.settings())  # a run without a week reports in a folder of its own
        result = notify_step(settings, ctx, failures=failures)
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


model_retraining()
