"""``make demo`` (``retrain demo run``): two weekly runs of the Airflow DAG with a week of traffic in between.

The story, on one machine: the embedded PostgreSQL is seeded with half a year of records ending on the first
Sunday; the reference backend starts with a fresh ``SECRET_KEY`` and an admin token minted for it; ``airflow dags
test`` runs the DAG for that Sunday (no model in production yet, so the gate compares each challenger with the
floor only); the backend then serves a week of requests with those models, logging each with its
``model_version``, and the outcomes confirmed during that week are recorded; the DAG runs for the next Sunday,
where the challengers trained on the newer verified records meet the first week's models as champions.

Everything lives under ``.local/demo/`` (data, model store, logs), replaced at each start, so the demo never
touches your own ``data/`` or ``model_store/``. The console gets progress lines and a summary; the output of each
command goes to log files, whose paths are printed.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from jobs.errors import ConfigError, DemoError
from jobs.settings import Settings

log = logging.getLogger(__name__)

FIRST_SUNDAY = date(2026, 11, 15)
RUN_HOUR = 2  # the DAG's schedule: Sundays at 02:00 (UTC unless SCHEDULE_TIMEZONE says otherwise)

Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoPaths:
    """The demo's own corner of the project: ``.local/demo/``."""

    home: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def model_store(self) -> Path:
        return self.home / "model_store"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"


def sunday_run(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, RUN_HOUR, tzinfo=UTC)


@contextmanager
def step(say: Say, text: str) -> Iterator[None]:
    """One progress line: what is being done, then how long it took."""
    started = time.monotonic()
    say(f"- {text} ...")
    yield
    say(f"  done in {time.monotonic() - started:.0f}s")


def run_logged(command: list[str], env: dict[str, str], log_path: Path, cwd: Path, what: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        done = subprocess.run(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise DemoError(f"{what} failed (exit code {done.returncode}); see {log_path}.")


class BackendProcess:
    """The serving backend (``python -m serving``) on a free port; :meth:`stop` ends this process only."""

    def __init__(self, env: dict[str, str], cwd: Path, log_path: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serving", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=cwd,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(f"The serving backend exited with code {self.process.returncode}; see {self.log_path}.")
            try:
                if requests.get(self.url + "/healthz", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.3)
        raise DemoError(f"The serving backend did not answer within {timeout:.0f}s; see {self.log_path}.")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def _report(settings: Settings, ds: str) -> dict[str, Any]:
    path = settings.run_folder(ds).report_json
    if not path.exists():
        raise DemoError(f"The run of {ds} wrote no report ({path}); see its log in {settings.run_folder(ds).logs}.")
    return json.loads(path.read_text(encoding="utf-8"))


def run_demo(
    settings: Settings,
    say: Say,
    *,
    rows: int = 200_000,
    seed: int = 42,
    requests: int = 8_000,
    first_sunday: date = FIRST_SUNDAY,
) -> dict[str, Any]:
    """Run the whole demo; returns what the summary shows. Stops the backend (and PostgreSQL, if it started it)."""
    from jobs.demo.seed import seed_database
    from jobs.demo.traffic import serve_week
    from jobs.ml.tokens import mint
    from jobs.postgres.embedded import EmbeddedPostgres

    if first_sunday.weekday() != 6:
        raise ConfigError(f"The demo's first run must be on a Sunday (the DAG's schedule). Got {first_sunday}.")
    if not settings.uses_embedded_database:
        raise ConfigError(
            "The demo seeds (replaces) the embedded PostgreSQL's tables and uses it only; DATABASE_URL is set. "
            "Unset it to run the demo."
        )
    paths = DemoPaths(settings.root / ".local" / "demo")
    if paths.home.exists():
        shutil.rmtree(paths.data, ignore_errors=True)
        shutil.rmtree(paths.model_store, ignore_errors=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    settings = replace(settings, data_dir=paths.data, model_store=paths.model_store)
    weeks = [first_sunday, first_sunday + timedelta(days=7)]
    say(f"Demo in {paths.home} (logs in {paths.logs})")

    cluster = EmbeddedPostgres.from_settings(settings)
    started_pg = not cluster.status().running
    backend: BackendProcess | None = None
    try:
        with step(say, f"Starting the embedded PostgreSQL on port {cluster.port}"):
            cluster.start()
        with step(say, f"Seeding {rows:,} records over the 182 days before {first_sunday}"):
            seed_database(settings.database(), rows, seed, first_sunday)

        secret_key = secrets.token_urlsafe(32)
        base_env = {k: v for k, v in os.environ.items() if k not in ("ADMIN_JWT_TOKEN", "SECRET_KEY", "DATABASE_URL")}
        pipeline_env = {
            **base_env,
            "RETRAIN_HOME": str(settings.root),
            "DATA_DIR": str(paths.data),
            "MODEL_STORE": str(paths.model_store),
        }
        with step(say, "Starting the serving backend with a fresh SECRET_KEY"):
            backend = BackendProcess(
                {**pipeline_env, "SECRET_KEY": secret_key}, settings.root, paths.logs / "backend.log"
            )
            backend.wait_ready()
        token = mint(secret_key, role="admin", ttl=timedelta(hours=12), subject="demo")
        airflow_env = {
            **pipeline_env,
            "BACKEND_URL": backend.url,
            "ADMIN_JWT_TOKEN": token,
            "AIRFLOW_HOME": str(paths.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.root / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        airflow = str(Path(sys.executable).with_name("airflow"))
        with step(say, "Preparing Airflow's database"):
            run_logged(
                [airflow, "db", "migrate"],
                airflow_env,
                paths.logs / "airflow-db.log",
                settings.root,
                "airflow db migrate",
            )

        def run_week(day: date) -> None:
            moment = sunday_run(day).isoformat()
            log_path = paths.logs / f"dags-test-{day}.log"
            with step(say, f"airflow dags test model_retraining {moment}   (log: {log_path.name})"):
                run_logged(
                    [airflow, "dags", "test", "model_retraining", moment],
                    airflow_env,
                    log_path,
                    settings.root,
                    f"The DAG run of {day}",
                )

        run_week(weeks[0])
        with step(say, f"A week of traffic: {requests:,} requests to /predict with week 1's models"):
            traffic = serve_week(
                settings.database(), backend.url, start=sunday_run(weeks[0]), requests_count=requests, seed=seed
            )
        say(
            f"  served {traffic.served:,} ({traffic.rejected} rejected); {traffic.verified:,} outcomes verified "
            "before the next Sunday"
        )
        run_week(weeks[1])
    finally:
        if backend is not None:
            backend.stop()
        if started_pg:
            cluster.stop()
        say("Stopped the serving backend" + (" and the embedded PostgreSQL." if started_pg else "."))
    return {
        "weeks": [(str(day), _report(settings, str(day))) for day in weeks],
        "traffic": traffic.to_dict(),
        "reports": [str(settings.run_folder(str(day)).report_md) for day in weeks],
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The table a newcomer reads: per week, rows and quarantine, then per model the verdict and accuracies."""

    def pct(side: dict[str, Any] | None) -> str:
        return f"{side['accuracy']:.3f}" if side and side.get("accuracy") is not None else "-"

    lines = [
        f"{'week (ds)':<12} {'extracted':>10} {'quarantined':>12}  {'model':<9} {'verdict':<13} "
        f"{'champion':>9} {'challenger':>11}  deployed version",
    ]
    for ds, report in result["weeks"]:
        extracted = (report.get("extract") or {}).get("rows")
        quarantined = (report.get("quarantine") or {}).get("rows")
        deployed = (report.get("deploy") or {}).get("deployed") or {}
        first = True
        for name, model in (report.get("models") or {}).items():
            lead = f"{ds:<12} {extracted or 0:>10,} {quarantined or 0:>12,}" if first else " " * 36
            lines.append(
                f"{lead}  {name:<9} {model.get('verdict') or '-':<13} {pct(model.get('champion')):>9} "
                f"{pct(model.get('challenger')):>11}  {deployed.get(name, '-')}"
            )
            first = False
        if report.get("failures"):
            lines.append(f"{ds:<12} FAILED: " + "; ".join(f"{k}: {v}" for k, v in report["failures"].items()))
    return lines
