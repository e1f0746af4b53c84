"""Airflow's REST API (v2), as ``retrain airflow trigger`` and ``retrain airflow set-token`` use it.

A given week is run by creating a DAG run with that week's exact data interval and, as its logical date, the week's
start, which is what the scheduled run of that week has: Airflow keeps one run per logical date, so a week cannot
run twice side by side, and asking for a week that has a run is answered with that run's name (:class:`WeekHasRun`)
rather than a database error. ``airflow dags trigger --logical-date`` cannot do this: it takes the data interval
from the moment it is called. Only ``requests`` is needed, not Airflow.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from jobs.errors import AirflowApiError
from jobs.scheduling.week import Week

log = logging.getLogger(__name__)

DAG_ID = "model_retraining"
FINISHED = frozenset({"success", "failed"})
#: the DAG's tasks in their order, to list a run's tasks as the pipeline runs them (others after them)
TASK_ORDER = (
    "preflight",
    "extract_data",
    "has_new_data",
    "transform_data",
    "train_models",
    "validate_models",
    "should_deploy",
    "deploy_models",
    "notify",
)
TOKEN_VARIABLE = "ADMIN_JWT_TOKEN"  # the Airflow Variable (or secrets backend key) the tasks read the token from


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class DagRun:
    """One DAG run as the API reports it, with its tasks' states once asked for (:meth:`AirflowApi.run`)."""

    run_id: str
    state: str
    logical_date: str | None
    data_interval_start: str | None
    data_interval_end: str | None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> DagRun:
        return cls(
            run_id=body["dag_run_id"],
            state=str(body.get("state")),
            logical_date=body.get("logical_date"),
            data_interval_start=body.get("data_interval_start"),
            data_interval_end=body.get("data_interval_end"),
        )

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "state": self.state,
            "logical_date": self.logical_date,
            "data_interval_start": self.data_interval_start,
            "data_interval_end": self.data_interval_end,
            "tasks": self.tasks,
        }


class WeekHasRun(AirflowApiError):
    """The week asked for already has a run; ``run`` is that run."""

    def __init__(self, message: str, run: DagRun) -> None:
        super().__init__(message)
        self.run = run


class AirflowApi:
    """A logged-in client of one Airflow API server (``url``, e.g. ``http://localhost:8080``)."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def login(cls, url: str, username: str, password: str, timeout: float = 30.0) -> AirflowApi:
        """Log in with Airflow's ``POST /auth/token`` (the simple auth manager's users, as ``make airflow`` has)."""
        url = url.rstrip("/")
        response = _call(
            requests.post, f"{url}/auth/token", url, json={"username": username, "password": password}, timeout=timeout
        )
        if response.status_code in (401, 403):
            raise AirflowApiError(
                f"Airflow at {url} refused user {username!r} (HTTP {response.status_code}): check AIRFLOW_USERNAME "
                "and AIRFLOW_PASSWORD (`make airflow` prints where its generated password is)."
            )
        body = _json(response, f"POST {url}/auth/token")
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise AirflowApiError(f"Airflow at {url} answered POST /auth/token without an access_token.")
        return cls(url, token, timeout)

    # -- HTTP --------------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        url = f"{self.url}/api/v2{path}"
        response = _call(
            functools.partial(self._session.request, method), url, self.url, timeout=self.timeout, **kwargs
        )
        if response.status_code not in ok:
            raise AirflowApiError(
                f"{method} {url} answered HTTP {response.status_code}: {_detail(response)}", status=response.status_code
            )
        return _json(response, f"{method} {url}")

    # -- the DAG -----------------------------------------------------------------------------------------------

    def dag(self, dag_id: str = DAG_ID) -> dict[str, Any]:
        """The DAG's details (``tags``, ``is_paused``, its next interval); a DAG the API does not know is a clear
        error."""
        try:
            return self._request("GET", f"/dags/{dag_id}/details")
        except AirflowApiError as e:
            if e.status == 404:
                raise AirflowApiError(
                    f"Airflow at {self.url} has no DAG {dag_id!r} (yet): its DAG processor parses dags/ within a "
                    "minute of starting; check the DAG folder (AIRFLOW__CORE__DAGS_FOLDER) and import errors in the UI."
                ) from None
            raise

    def unpause(self, dag_id: str = DAG_ID) -> None:
        self._request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    # -- runs --------------------------------------------------------------------------------------------------

    def run_of_week(self, week: Week, dag_id: str = DAG_ID) -> DagRun | None:
        """The run whose logical date is the week's start (the scheduled run's, or one triggered for it)."""
        when = _iso(week.start)
        body = self._request(
            "GET", f"/dags/{dag_id}/dagRuns", params={"logical_date_gte": when, "logical_date_lte": when}
        )
        runs = [DagRun.from_api(r) for r in body.get("dag_runs", [])]
        return runs[0] if runs else None

    def trigger(
        self, week: Week, dag_id: str = DAG_ID, note: str | None = None, conf: Mapping[str, Any] | None = None
    ) -> DagRun:
        """Create the run of ``week``: its exact data interval, and the week's start as its logical date; ``conf``:
        the run's params (``{"full_refresh": true}``)."""
        existing = self.run_of_week(week, dag_id)
        if existing is not None:
            raise self._has_run(week, existing, dag_id)
        payload = {
            "dag_run_id": f"manual__{week.ds_str}",
            "logical_date": _iso(week.start),
            "data_interval_start": _iso(week.start),
            "data_interval_end": _iso(week.end),
            "conf": dict(conf or {}),
            "note": note,
        }
        try:
            body = self._request("POST", f"/dags/{dag_id}/dagRuns", ok=(200, 201), json=payload)
        except AirflowApiError as e:
            if e.status == 409:  # created between our look and our request, or a run id taken by another week
                found = self.run_of_week(week, dag_id)
                if found is not None:
                    raise self._has_run(week, found, dag_id) from None
            raise
        return DagRun.from_api(body)

    def _has_run(self, week: Week, run: DagRun, dag_id: str) -> WeekHasRun:
        return WeekHasRun(
            f"The week ending {week.ds_str} already has a run of {dag_id}: {run.run_id!r} ({run.state}, logical date "
            f"{run.logical_date}). A week runs once; to run it again, add --rerun (it clears that run, which then "
            "runs from its first task) or --rerun-failed (only its failed tasks and those they held back), or clear "
            "the run in Airflow's UI.",
            run,
        )

    def rerun(self, run: DagRun, dag_id: str = DAG_ID, *, only_failed: bool = False) -> DagRun:
        """Clear a finished run's tasks (``only_failed``: its failed and upstream-failed ones) so that the scheduler
        runs them again."""
        if not run.finished:
            raise AirflowApiError(
                f"Run {run.run_id!r} of {dag_id} is {run.state}: wait for it to finish before running its week again."
            )
        body = {"dry_run": False, "only_failed": only_failed}
        self._request("POST", f"/dags/{dag_id}/dagRuns/{run.run_id}/clear", json=body)
        return self.run(run.run_id, dag_id, with_tasks=False)

    def run(self, run_id: str, dag_id: str = DAG_ID, *, with_tasks: bool = True) -> DagRun:
        """A run's state, and its tasks' states and tries."""
        run = DagRun.from_api(self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}"))
        if not with_tasks:
            return run
        body = self._request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
        listed = sorted(body.get("task_instances", []), key=lambda t: _position(t["task_id"]))
        tasks = {t["task_id"]: {"state": t.get("state"), "try_number": t.get("try_number")} for t in listed}
        return DagRun(run.run_id, run.state, run.logical_date, run.data_interval_start, run.data_interval_end, tasks)

    def wait(
        self,
        run_id: str,
        dag_id: str = DAG_ID,
        *,
        timeout: float,
        poll: float = 5.0,
        on_change: Callable[[DagRun], None] | None = None,
    ) -> DagRun:
        """Poll the run until it has finished (success or failed); ``on_change`` sees each new set of states."""
        deadline = time.monotonic() + timeout
        seen: tuple = ()
        while True:
            run = self.run(run_id, dag_id)
            states = (run.state, tuple(sorted((t, v["state"]) for t, v in run.tasks.items())))
            if states != seen and on_change is not None:
                on_change(run)
            seen = states
            if run.finished:
                return run
            if time.monotonic() > deadline:
                raise AirflowApiError(
                    f"Run {run_id!r} of {dag_id} is still {run.state} after {timeout:g}s; it goes on in Airflow "
                    "(see its tasks in the UI)."
                )
            time.sleep(poll)

    # -- the deploy token --------------------------------------------------------------------------------------

    def set_variable(self, key: str, value: str, description: str) -> None:
        """Create or replace a Variable (the deploy token: read by each task when it runs)."""
        payload = {"key": key, "value": value, "description": description}
        try:
            self._request("PATCH", f"/variables/{key}", json=payload)
        except AirflowApiError as e:
            if e.status != 404:
                raise
            self._request("POST", "/variables", ok=(200, 201), json=payload)


def _position(task_id: str) -> tuple[int, str]:
    return (TASK_ORDER.index(task_id) if task_id in TASK_ORDER else len(TASK_ORDER), task_id)


def _call(send: Callable[..., requests.Response], url: str, base: str, **kwargs: Any) -> requests.Response:
    try:
        return send(url, **kwargs)
    except requests.ConnectionError:
        raise AirflowApiError(
            f"No Airflow API server answers at {base}: start one with `make airflow` (AIRFLOW_PORT sets its port), "
            "or point AIRFLOW_API_URL at yours."
        ) from None
    except requests.Timeout:
        raise AirflowApiError(f"Airflow at {base} did not answer {url} within {kwargs.get('timeout')}s.") from None


def _json(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AirflowApiError(f"{what} did not answer JSON (HTTP {response.status_code}).") from None


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return str(body.get("detail", body) if isinstance(body, dict) else body)[:300]
