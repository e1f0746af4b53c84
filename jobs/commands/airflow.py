"""``retrain airflow start|trigger|set-token``: a local Airflow, a given week's run, and the deploy token."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.settings import Settings

if TYPE_CHECKING:
    from jobs.scheduling.api import AirflowApi, DagRun
    from jobs.scheduling.local import LocalAirflow
    from jobs.scheduling.week import Week

DEFAULT_WAIT_SECONDS = 4 * 3600  # longer than a run's tasks may take (their time limits add up to about 4 h)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "airflow", help="run a local Airflow (make airflow), trigger a given week, store the deploy token"
    )
    parser.set_defaults(handler=lambda settings, args: parser.print_help() or 2)
    commands = parser.add_subparsers(dest="airflow_command", metavar="SUBCOMMAND")

    start = commands.add_parser(
        "start",
        help="start Airflow's API server, scheduler, DAG processor and triggerer on AIRFLOW_PORT (make airflow)",
        description="Runs a local Airflow (LocalExecutor, SQLite in AIRFLOW_HOME, default .local/airflow) with this "
        "project's DAG until Ctrl-C. The API server listens on AIRFLOW_PORT (default 8080) and the log servers on "
        "the next two ports; each is checked free first. A component that exits stops the others.",
    )
    start.add_argument(
        "--ready-timeout", type=float, default=300.0, help="seconds to wait for every component (default 300)"
    )
    start.set_defaults(handler=run_start)

    trigger = commands.add_parser(
        "trigger",
        help="run the DAG for the week ending on a given Sunday, through Airflow's REST API",
        description="Creates the run of the week [D - 7 days, D) at 02:00 in SCHEDULE_TIMEZONE (which must be the "
        "DAG's: checked), with that exact "
        "data interval: the run the schedule would have made for it, writing data/runs/ds=D/. Talks to "
        "AIRFLOW_API_URL (default http://localhost:AIRFLOW_PORT) as AIRFLOW_USERNAME (default admin) with "
        "AIRFLOW_PASSWORD (default: the password `make airflow` generated in AIRFLOW_HOME).",
    )
    trigger.add_argument("--ds", required=True, help="the Sunday the week ends, YYYY-MM-DD (the run's ds)")
    again = trigger.add_mutually_exclusive_group()
    again.add_argument(
        "--rerun", action="store_true", help="when the week has a finished run, clear it so that it runs again"
    )
    again.add_argument(
        "--rerun-failed",
        action="store_true",
        help="when the week has a finished run, run again only its failed tasks and those they held back "
        "(e.g. deploy_models and notify after rotating a refused token)",
    )
    trigger.add_argument(
        "--unpause",
        action="store_true",
        help="unpause the DAG if it is paused (which also runs the latest complete week, unless it has a run)",
    )
    trigger.add_argument(
        "--full-refresh",
        action="store_true",
        help="the run reads every source's window whole and builds the incremental models from their sources",
    )
    trigger.add_argument("--wait", action="store_true", help="wait for the run to finish; exit 1 if it failed")
    trigger.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT_SECONDS, help="seconds --wait waits (default 4 h)"
    )
    trigger.add_argument("--json", action="store_true", help="print the run (and its tasks' states) as JSON")
    trigger.set_defaults(handler=run_trigger)

    set_token = commands.add_parser(
        "set-token",
        help="store the deploy token (read from standard input) in the Airflow Variable ADMIN_JWT_TOKEN",
        description="Reads an admin JWT from standard input, checks its claims as the DAG's preflight does, and "
        "stores it in the Airflow Variable ADMIN_JWT_TOKEN, which each task reads when it runs: rotating the "
        "token needs no restart. E.g.: retrain token --role admin --ttl 8d | retrain airflow set-token",
    )
    set_token.set_defaults(handler=run_set_token)


# -- start ------------------------------------------------------------------------------------------------------


def run_start(settings: Settings, args: argparse.Namespace) -> int:
    import os

    from jobs.errors import AirflowStartError
    from jobs.scheduling.local import LocalAirflow

    airflow = Path(sys.executable).with_name("airflow")
    if not airflow.is_file():
        raise AirflowStartError(
            f"No airflow command beside {sys.executable}: install the project's airflow extra "
            "(`pip install '.[airflow]'`; `make setup` does)."
        )
    local = LocalAirflow.from_settings(settings, airflow)
    signal.signal(signal.SIGTERM, _interrupt)  # stopped like Ctrl-C, so the components are stopped too
    print(f"Starting Airflow in {local.home} (its components' logs: {local.home / 'logs'}) ...", flush=True)
    try:
        local.start(os.environ, ready_timeout=args.ready_timeout)
        print(_banner(local, settings), flush=True)
        local.supervise()
    except KeyboardInterrupt:
        print("Stopped.", flush=True)
    finally:
        local.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the components' stop short
    raise KeyboardInterrupt


def _banner(local: LocalAirflow, settings: Settings) -> str:
    ports = local.ports
    return f"""
Airflow is up: API server, scheduler (LocalExecutor), DAG processor and triggerer.
  Web UI and API:  {local.url}
  Log in as:       {settings.airflow_username}, password in {local.passwords_file}
  Ports:           {ports.api} API server, {ports.task_logs} task logs, {ports.triggerer_logs} triggerer logs \
(AIRFLOW_PORT and the next two)
  Logs:            {local.home / "logs"}/<component>.log; task logs in the UI
  DAG:             model_retraining, paused until unpaused; unpausing also runs the latest complete week at once
  Run a week:      retrain airflow trigger --ds 2026-11-22 --unpause --wait
  Deploy token:    retrain token --role admin --ttl 8d | retrain airflow set-token   (on the backend's machine)
Stop with Ctrl-C.""".lstrip("\n")


# -- trigger ----------------------------------------------------------------------------------------------------


def _api(settings: Settings) -> AirflowApi:
    from jobs.errors import AirflowApiError
    from jobs.scheduling.api import AirflowApi
    from jobs.scheduling.local import PASSWORDS_FILE, generated_password

    password = settings.airflow_password or generated_password(settings.airflow_home, settings.airflow_username)
    if not password:
        raise AirflowApiError(
            f"No password for Airflow user {settings.airflow_username!r}: AIRFLOW_PASSWORD is not set and "
            f"{settings.airflow_home / PASSWORDS_FILE} (where `make airflow` keeps the one it generated) has none. "
            "Set AIRFLOW_PASSWORD, or AIRFLOW_HOME to the home of the Airflow you started."
        )
    return AirflowApi.login(settings.airflow_url, settings.airflow_username, password)


def run_trigger(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from jobs.errors import AirflowApiError, ConfigError
    from jobs.scheduling.api import WeekHasRun
    from jobs.scheduling.week import check_schedule_zone, latest_ended_week, week_ending

    week = week_ending(args.ds, settings.schedule_timezone)
    _ended(week)  # no Sunday, or a week not over: before anything is asked
    api = _api(settings)
    dag = api.dag()
    check_schedule_zone(dag, settings.schedule_timezone)
    try:
        conf = {"full_refresh": True} if args.full_refresh else {}
        run = api.trigger(week, note=f"retrain airflow trigger --ds {week.ds_str}", conf=conf)
        _say(args, f"Triggered {run.run_id}: the week [{week.start:%Y-%m-%d %H:%M}, {week.end:%Y-%m-%d %H:%M}) UTC.")
    except WeekHasRun as e:
        if not e.run.finished:  # queued or running: that is the week's run, followed instead of a second one
            run = e.run
            _say(args, f"The week ending {week.ds_str} already has run {run.run_id} ({run.state}): following it.")
        elif (args.rerun or args.rerun_failed) and args.full_refresh:
            raise ConfigError(
                f"The week ending {week.ds_str} has run {e.run.run_id}; a cleared run keeps the params it was "
                "triggered with, so --full-refresh cannot apply to it. Delete the run in the UI, then trigger "
                "again with --full-refresh."
            ) from None
        elif args.rerun or args.rerun_failed:
            run = api.rerun(e.run, only_failed=args.rerun_failed)
            what = "its failed tasks run" if args.rerun_failed else "it runs"
            _say(args, f"Cleared {run.run_id} (was {e.run.state}): {what} again for the week ending {week.ds_str}.")
        else:
            raise
    scheduled = None  # the week the schedule starts by being unpaused, when it is not this one
    if dag.get("is_paused"):
        if args.unpause:
            api.unpause()
            latest = latest_ended_week(datetime.now(UTC), settings.schedule_timezone)
            scheduled = latest if latest.ds != week.ds else None
            also = (
                f" The schedule also runs the latest complete week, ending {latest.ds_str}, unless it has a run"
                f"{': --wait reports on it too' if args.wait else f'; follow it with {_follow(latest)}'}."
                if scheduled
                else ""
            )
            _say(args, f"Unpaused model_retraining.{also}")
        else:
            _say(
                args,
                "model_retraining is paused: this run starts when it is unpaused (in the UI, or with --unpause; "
                "unpausing also runs the latest complete week at once).",
            )
    if not args.wait:
        if args.json:
            print(json.dumps(run.to_dict(), indent=2))
        return 0
    final = api.wait(run.run_id, timeout=args.timeout, on_change=_progress(args))
    if args.json:
        print(json.dumps(final.to_dict(), indent=2))
    else:
        for task, info in final.tasks.items():
            print(f"  {task:<16} {info['state']}  (tries: {info['try_number']})")
        print(f"{final.run_id}: {final.state}. Its report: runs/ds={week.ds_str}/report.md under the tasks' DATA_DIR.")
    if scheduled:
        try:
            _say(args, scheduled_run_line(scheduled, api.run_of_week(scheduled)))
        except AirflowApiError as e:  # this command's answer is its own run's: the other one is told, not raised
            _say(args, f"Could not ask Airflow about the week ending {scheduled.ds_str}: {e}")
    return 0 if final.state == "success" else 1


def _follow(week: Week) -> str:
    return f"`retrain airflow trigger --ds {week.ds_str} --wait`"


def scheduled_run_line(week: Week, run: DagRun | None) -> str:
    """What became of the run that unpausing started, said once this command's own run has finished: its exit
    code is its own run's, so a failed scheduled run must be said in words."""
    if run is None:
        return f"The schedule has not started the week ending {week.ds_str} yet; follow it with {_follow(week)}."
    its = f"The run {run.run_id} of the week ending {week.ds_str}"  # the schedule's, or one triggered before
    if not run.finished:
        return f"{its} is {run.state}: follow it with {_follow(week)}."
    if run.state == "success":
        return f"{its} succeeded."
    return (
        f"{its} {run.state}: see its report, "
        f"runs/ds={week.ds_str}/report.md, then rerun its failed tasks with "
        f"`retrain airflow trigger --ds {week.ds_str} --rerun-failed --wait`."
    )


def _ended(week: Week) -> None:
    """A week that has not ended yet has no complete data: the schedule runs it when it ends."""
    from datetime import UTC, datetime

    from jobs.errors import ConfigError

    if week.end > datetime.now(UTC):
        raise ConfigError(
            f"The week ending {week.ds_str} is not over: it ends at {week.end:%Y-%m-%d %H:%M} UTC, and the schedule "
            "runs it then. Give the Sunday of a week that has ended."
        )


def _say(args: argparse.Namespace, line: str) -> None:
    print(line, file=sys.stderr if args.json else sys.stdout, flush=True)


def _progress(args: argparse.Namespace):
    seen: dict[str, str] = {}

    def show(run: DagRun) -> None:
        for task, info in run.tasks.items():
            state = str(info.get("state"))
            if seen.get(task) != state and state not in ("None", "scheduled", "queued"):
                _say(args, f"  {task}: {state}")
            seen[task] = state

    return show


# -- set-token --------------------------------------------------------------------------------------------------


def run_set_token(settings: Settings, args: argparse.Namespace) -> int:
    import getpass
    from dataclasses import replace
    from datetime import UTC, datetime

    import jwt

    from jobs.deploy import check_admin_token
    from jobs.scheduling.api import TOKEN_VARIABLE
    from jobs.scheduling.timeouts import TOKEN_VALID_FOR

    token = (getpass.getpass("Admin JWT: ") if sys.stdin.isatty() else sys.stdin.read()).strip()
    check_admin_token(replace(settings, admin_jwt_token=token), valid_for=TOKEN_VALID_FOR)
    expires = datetime.fromtimestamp(jwt.decode(token, options={"verify_signature": False})["exp"], UTC)
    _api(settings).set_variable(
        TOKEN_VARIABLE, token, description=f"the deploy token (admin JWT), expires {expires:%Y-%m-%d %H:%M} UTC"
    )
    print(
        f"Stored in the Airflow Variable {TOKEN_VARIABLE} (expires {expires:%Y-%m-%d %H:%M} UTC); "
        "the next task that runs reads it."
    )
    return 0
