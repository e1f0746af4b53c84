"""``make demo`` (``retrain demo run``): two weekly runs of the Airflow DAG a quarter apart, then a week of traffic
and the gate's judgement on the newest outcomes.

The story, on one machine, as it often goes in practice: the models are retrained, then left alone for a quarter
while the patients change. The embedded PostgreSQL is seeded with half a year of logged records whose true outcome
drifts, ending a week before the last Sunday; the reference backend starts with a fresh ``SECRET_KEY`` and an admin
token minted for it; ``airflow dags test`` runs the DAG for the first Sunday, twelve weeks before the last (no model
in production yet, so the gate checks each challenger against the absolute floors only); the records of the twelve
weeks after it are already in the seed (nobody retrained); the backend then serves the last week's requests with the
first Sunday's models, logging each with its ``model_version``, and the outcomes confirmed during that week are
recorded with their ``verified_at``; the DAG runs for the last Sunday, where the challengers, trained on the newest
verified records, meet the first Sunday's models on the newest weeks' outcomes of held-out patients. A quarter of
drift is clear to the gate; a single week's is often within noise (``retrain backtest``, run at the end, replays
every week in between).

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

LAST_SUNDAY = date(2026, 11, 22)
QUIET_WEEKS = 12  # between the two runs: production left alone for a quarter
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
    last_sunday: date = LAST_SUNDAY,
) -> dict[str, Any]:
    """Run the whole demo; returns what the summary shows. Stops the backend (and PostgreSQL, if it started it)."""
    from jobs.demo.seed import seed_database
    from jobs.demo.traffic import serve_week
    from jobs.ml.tokens import mint
    from jobs.postgres.embedded import EmbeddedPostgres

    if last_sunday.weekday() != 6:
        raise ConfigError(f"The demo's last run must be on a Sunday (the DAG's schedule). Got {last_sunday}.")
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
    weeks = [last_sunday - timedelta(weeks=QUIET_WEEKS), last_sunday]
    traffic_week = last_sunday - timedelta(weeks=1)
    say(f"Demo in {paths.home} (logs in {paths.logs})")

    cluster = EmbeddedPostgres.from_settings(settings)
    started_pg = not cluster.status().running
    backend: BackendProcess | None = None
    try:
        with step(say, f"Starting the embedded PostgreSQL on port {cluster.port}"):
            cluster.start()
        with step(say, f"Seeding {rows:,} records over the 182 days before {traffic_week}"):
            seed_database(cluster.admin_url(), rows, seed, traffic_week)

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
        say(f"  ... {QUIET_WEEKS} weeks without retraining: their records are in the seed ...")
        with step(say, f"A week of traffic: {requests:,} requests to /predict with {weeks[0]}'s models"):
            traffic = serve_week(  # writes the confirmed outcomes: the superuser's (the backend's role cannot)
                cluster.admin_url(), backend.url, start=sunday_run(traffic_week), requests_count=requests, seed=seed
            )
        say(
            f"  served {traffic.served:,} ({traffic.rejected} rejected); {traffic.verified:,} outcomes verified "
            "before the next Sunday"
        )
        run_week(weeks[1])
        with step(say, f"Backtest: every Sunday from {weeks[0]} to {traffic_week} replayed under three policies"):
            replay = backtest_summary(settings, str(weeks[1]), weeks[0], traffic_week)
    finally:
        if backend is not None:
            backend.stop()
        if started_pg:
            cluster.stop()
        say("Stopped the serving backend" + (" and the embedded PostgreSQL." if started_pg else "."))
    return {
        "weeks": [
            (str(day), {**_report(settings, str(day)), "_folder": str(settings.run_folder(str(day)).path)})
            for day in weeks
        ],
        "traffic": traffic.to_dict(),
        "reports": [str(settings.run_folder(str(day)).report_md) for day in weeks],
        "backtest": replay,
    }


def backtest_summary(settings: Settings, ds: str, start: date, end: date) -> dict[str, Any]:
    """``retrain backtest`` over the weeks between the demo's runs: each policy's mean metric, per model."""
    from jobs.ml.backtest import run_backtest, write

    result = run_backtest(settings, ds, start, end)
    paths = write(result, settings.run_folder(ds).path / "backtest")
    return {
        "means": {name: model["mean"] for name, model in result["models"].items()},
        "metric": next(iter(result["models"].values()))["metric"] if result["models"] else None,
        "deploys": {
            name: sum(w["gate_verdict"] == "deploy" for w in model["weeks"][1:])
            for name, model in result["models"].items()
        },
        "weeks": len(next(iter(result["models"].values()))["weeks"]) if result["models"] else 0,
        "table": str(paths["table"]),
    }


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The table a newcomer reads: per run, rows and quarantine, then per model the verdict and the gate's metric
    for production and the new model on the newest weeks; then the backtest's headline."""
    decisions = {ds: _decisions(report) for ds, report in result["weeks"]}

    def value(side: dict[str, Any] | None) -> str:
        return f"{side:.3f}" if isinstance(side, float) else "-"

    lines = [
        f"{'run (ds)':<12} {'extracted':>10} {'quarantined':>12}  {'model':<9} {'verdict':<13} "
        f"{'production':>10} {'new model':>10}  deployed version",
    ]
    for ds, report in result["weeks"]:
        extracted = (report.get("extract") or {}).get("rows")
        quarantined = (report.get("quarantine") or {}).get("rows")
        deployed = (report.get("deploy") or {}).get("deployed") or {}
        first = True
        for name, model in (report.get("models") or {}).items():
            comparison = (decisions[ds].get(name) or {}).get("comparison") or {}
            new = comparison.get("challenger", (decisions[ds].get(name) or {}).get("challenger_auc"))
            lead = f"{ds:<12} {extracted or 0:>10,} {quarantined or 0:>12,}" if first else " " * 36
            lines.append(
                f"{lead}  {name:<9} {model.get('verdict') or '-':<13} {value(comparison.get('champion')):>10} "
                f"{value(new):>10}  {deployed.get(name, '-')}"
            )
            first = False
        if report.get("failures"):
            lines.append(f"{ds:<12} FAILED: " + "; ".join(f"{k}: {v}" for k, v in report["failures"].items()))
    metric = next((d.get("metric") for ds in decisions for d in decisions[ds].values() if d.get("metric")), None)
    lines.append(f"(production and new model: {metric or 'the gate metric'} on the newest weeks' outcomes)")
    replay = result.get("backtest")
    if replay:
        lines.append("")
        lines.append(
            f"Backtest of the {replay['weeks']} Sundays between the runs ({replay['metric']} of production on the "
            "following week's outcomes, mean):"
        )
        for name, means in replay["means"].items():
            if means.get("gate") is None:
                continue
            lines.append(
                f"  {name:<9} gate {means['gate']:.4f}   never retrain {means['never']:.4f}   "
                f"always deploy {means['always']:.4f}   (the gate deployed {_times(replay['deploys'][name])})"
            )
        lines.append(f"  table: {replay['table']}")
    return lines


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _decisions(report: dict[str, Any]) -> dict[str, Any]:
    """decision.json's entries of a report's run (the report keeps a summary of them)."""
    folder = report.get("_folder")
    path = Path(folder) / "decision.json" if folder else None
    if path is None or not path.exists():
        return {}
    return (json.loads(path.read_text(encoding="utf-8")).get("models")) or {}
