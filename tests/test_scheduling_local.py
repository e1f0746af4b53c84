"""A local Airflow as an operator runs it: ports derived from AIRFLOW_PORT, and the real scheduler running the DAG.

The scheduler test runs ``AIRFLOW_PORT=<a free port> make airflow`` (API server, scheduler with LocalExecutor, DAG
processor and triggerer, in a throwaway AIRFLOW_HOME) against the real PostgreSQL and serving backend, then drives it
with the project's commands only: ``retrain airflow set-token`` and ``retrain airflow trigger``. Its week is the
latest complete one, which unpausing the DAG would otherwise run at once as well. Every process it starts is
stopped by process group at the end, and the test checks that none is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from jobs.errors import AirflowStartError
from jobs.scheduling.local import (
    COMPONENTS,
    LocalAirflow,
    Ports,
    check_ports_free,
    generated_password,
    port_taken,
)
from tests.conftest import REPO_ROOT, free_port
from tests.serving_helpers import Backend, assert_no_secrets

ROWS = 80_000  # the gate judges a model on >= 200 labelled held-out records of the last 4 weeks
MODELS = {"diabetes", "heart", "liver"}
RETRAIN = Path(sys.executable).with_name("retrain")
START_TIMEOUT = 420  # make airflow's set-up (nothing to do after make test's) and four components on a busy machine
RUN_TIMEOUT = 600
TASKS = (
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
SCREENSHOTS = REPO_ROOT / ".local" / "screenshots"  # git-ignored; kept after the run to be looked at


# -- ports and environment, without starting anything -------------------------------------------------------------


def test_every_port_follows_airflow_port(tmp_path: Path) -> None:
    local = LocalAirflow(tmp_path, Ports(18480), REPO_ROOT, Path("/venv/bin/airflow"))
    env = local.environment({"PATH": "/usr/bin", "DATABASE_URL": "postgresql://x"})
    assert env["AIRFLOW__API__PORT"] == "18480"
    assert env["AIRFLOW__API__BASE_URL"] == "http://localhost:18480"  # Airflow's default is :8080 whatever the port
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://localhost:18480/execution/"
    assert (env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"], env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]) == (
        "18481",
        "18482",
    )  # not Airflow's fixed 8793 and 8794, which AIRFLOW_PORT=8794 used to collide with
    assert env["PATH"].startswith("/venv/bin") and env["DATABASE_URL"] == "postgresql://x"


def test_a_taken_port_is_named_before_anything_starts() -> None:
    base = free_three_ports()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", base + 2))
        listener.listen()
        assert port_taken(base + 2)
        with pytest.raises(AirflowStartError, match=rf"Port {base + 2}, for the triggerer's log server") as caught:
            check_ports_free(Ports(base))
    assert "AIRFLOW_PORT=" in str(caught.value)
    check_ports_free(Ports(base))  # free again


def test_the_trigger_command_reads_the_password_make_airflow_generated(tmp_path: Path) -> None:
    (tmp_path / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "s3cret"}')
    assert generated_password(tmp_path, "admin") == "s3cret"
    assert generated_password(tmp_path, "someone") is None
    assert generated_password(tmp_path / "nowhere", "admin") is None


def test_the_home_is_private_and_the_password_is_made_before_airflow_could_print_it(tmp_path: Path) -> None:
    """The API server prints a password into its log only when it has to generate one: it never has to."""
    home = tmp_path / "airflow"
    local = LocalAirflow(home, Ports(8080), REPO_ROOT, Path("airflow"))
    local._make_private_home()
    password = generated_password(home, "admin")
    assert password and len(password) >= 16
    assert home.stat().st_mode & 0o777 == 0o700 and local.passwords_file.stat().st_mode & 0o777 == 0o600
    local.passwords_file.write_text('{"viewer": "v", "admin": ""}')  # someone else's user kept, admin's filled in
    local._make_private_home()
    assert generated_password(home, "viewer") == "v" and generated_password(home, "admin")
    again = generated_password(home, "admin")
    local._make_private_home()
    assert generated_password(home, "admin") == again  # an existing password is kept
    local.passwords_file.chmod(0o644)  # as Airflow left it, after printing the password it generated into its log
    local._make_private_home()
    assert generated_password(home, "admin") != again and local.passwords_file.stat().st_mode & 0o777 == 0o600
    env = local.environment({})
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"  # no other user to generate one for
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(local.passwords_file)
    with pytest.raises(AirflowStartError, match="AIRFLOW_USERNAME 'a:b' cannot name"):
        LocalAirflow(home, Ports(8080), REPO_ROOT, Path("airflow"), username="a:b")._make_private_home()


def free_three_ports() -> int:
    for _ in range(50):
        base = free_port()
        if base < 65533 and not any(port_taken(p) for p in (base, base + 1, base + 2)):
            return base
    raise AssertionError("no three consecutive free ports")


# -- the real scheduler -------------------------------------------------------------------------------------------


def latest_complete_week(now: datetime) -> date:
    """The Sunday of the latest week whose end (Sunday 02:00 UTC) has passed: what unpausing would run."""
    sunday = now.date() - timedelta(days=(now.weekday() + 1) % 7)
    return (
        sunday
        if now >= datetime.combine(sunday, datetime.min.time(), UTC) + timedelta(hours=2)
        else sunday - (timedelta(days=7))
    )


@dataclass
class Operator:
    """What an operator has: a shell with the pipeline's settings, and `make airflow` running in it."""

    env: dict[str, str] = field(repr=False)
    home: Path
    data_dir: Path
    port: int
    process: subprocess.Popen
    output: Path
    backend: Backend
    secret_key: str = field(repr=False)

    def retrain(
        self, *args: str, stdin: str | None = None, timeout: float = RUN_TIMEOUT
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(RETRAIN), *args], env=self.env, input=stdin, capture_output=True, text=True, timeout=timeout
        )

    def trigger(self, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
        done = self.retrain("airflow", "trigger", *args, "--json", "--timeout", str(RUN_TIMEOUT))
        return done, (json.loads(done.stdout) if done.stdout.strip() else {})

    def set_token(self, token: str) -> None:
        done = self.retrain("airflow", "set-token", stdin=token, timeout=120)
        assert done.returncode == 0, done.stderr

    def folder(self, ds: date) -> Path:
        return self.data_dir / "runs" / f"ds={ds.isoformat()}"

    def task_logs(self) -> list[Path]:
        return sorted((self.home / "logs" / "dag_id=model_retraining").rglob("*.log"))


def start_make_airflow(env: dict[str, str], output: Path) -> subprocess.Popen:
    with output.open("wb") as out:
        return subprocess.Popen(
            ["make", "--no-print-directory", "airflow"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make, the script and `retrain airflow start`: one group to stop
        )


def wait_until_up(process: subprocess.Popen, output: Path) -> float:
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT:
        text = output.read_text(errors="replace")
        if "Airflow is up" in text:
            return time.monotonic() - started
        if process.poll() is not None:
            raise AssertionError(f"make airflow exited with {process.returncode}:\n{text[-5000:]}")
        time.sleep(1)
    raise AssertionError(f"make airflow was not up within {START_TIMEOUT}s:\n{output.read_text()[-5000:]}")


def component_groups(home: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in home.glob("*.pid")}


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(process: subprocess.Popen, groups: dict[str, int]) -> None:
    """SIGTERM make's group (the supervisor stops its components), then SIGKILL any group still there."""
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=90)
    deadline = time.monotonic() + 30
    while any(group_alive(g) for g in groups.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pgid in [process.pid, *groups.values()]:
        if group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def operator(pg, pg_admin, tmp_path_factory):
    """Seeded records up to the latest complete week, the serving backend, and `make airflow` on a free port."""
    from jobs.demo.seed import seed_database

    now = datetime.now(UTC)
    week = latest_complete_week(now)
    next_week_ends = datetime.combine(week + timedelta(days=7), datetime.min.time(), UTC) + timedelta(hours=2)
    if next_week_ends - now < timedelta(minutes=15):  # the scheduler would start that week's run during the test
        time.sleep((next_week_ends - now).total_seconds() + 5)
        week += timedelta(days=7)
    seed_database(pg_admin, ROWS, 42, week)  # loading data is the tables' owner's; the tasks only read
    root = tmp_path_factory.mktemp("airflow_scheduler")
    secret_key = secrets.token_urlsafe(32)
    common = {"DATABASE_URL": pg.full_url(), "MODEL_STORE": str(root / "model_store")}
    backend = Backend({**common, "SECRET_KEY": secret_key}, root / "backend.log")
    port = free_three_ports()
    # Not the test run's own Airflow, token, or the outer make's flags (make test runs pytest).
    inherited = ("ADMIN_JWT_TOKEN", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k not in inherited}
    env.update(
        common,
        AIRFLOW_HOME=str(root / "airflow"),
        AIRFLOW_PORT=str(port),
        DATA_DIR=str(root / "data"),
        BACKEND_URL=backend.url,
        SPARK_MASTER="local[2]",
        RELOAD_TIMEOUT_SECONDS="30",
        SCHEDULE_TIMEZONE="UTC",
    )
    output = root / "make-airflow.log"
    process = start_make_airflow(env, output)
    groups: dict[str, int] = {}
    try:
        seconds = wait_until_up(process, output)
        groups = component_groups(root / "airflow")
        print(f"\n  make airflow up on port {port} in {seconds:.0f} s", file=sys.stderr)  # noqa: T201
        yield Operator(env, root / "airflow", root / "data", port, process, output, backend, secret_key), week
    finally:
        groups = groups or component_groups(root / "airflow")
        stop(process, groups)
        backend.stop()
        left = [name for name, pgid in groups.items() if group_alive(pgid)]
        assert not left, f"still running after the test: {left}"
        assert process.poll() is not None


@pytest.mark.airflow
@pytest.mark.spark
def test_make_airflow_then_the_trigger_command_runs_a_given_week_under_the_scheduler(operator) -> None:
    """A refused token fails the run at deploy_models at once (no retry) and notify reports it; after the token is
    rotated in the Variable, no restart, the failed tasks run again and the week completes."""
    from jobs.ml.tokens import mint

    op, week = operator
    assert "Airflow is up" in op.output.read_text() and f"localhost:{op.port}" in op.output.read_text()

    forged = mint("not-the-backends-signing-key-0123456789abcdef", role="admin", ttl=timedelta(hours=8))
    op.set_token(forged)
    started = time.monotonic()
    done, run = op.trigger("--ds", week.isoformat(), "--unpause", "--full-refresh", "--wait")
    refused_seconds = time.monotonic() - started
    assert done.returncode == 1 and "tasks" in run, done.stdout + done.stderr
    assert "Unpaused model_retraining." in done.stderr
    assert "The schedule" not in done.stderr  # the week unpausing runs is this one: no second run to report
    tasks = run["tasks"]
    assert run["state"] == "failed" and run["run_id"] == f"manual__{week.isoformat()}", run
    assert run["data_interval_end"] == f"{week.isoformat()}T02:00:00Z"
    before_deploy = ("preflight", "extract_data", "has_new_data", "transform_data", "train_models", "validate_models")
    assert {tasks[t]["state"] for t in (*before_deploy, "should_deploy")} == {"success"}, tasks
    assert tasks["deploy_models"] == {"state": "failed", "try_number": 1}, tasks  # refused: failed at once
    assert tasks["notify"]["state"] == "failed", tasks  # it reported, then failed so that the run shows it
    report = json.loads((op.folder(week) / "report.json").read_text())
    assert report["status"] == "failed" and set(report["failures"]) == {"deploy_models"}
    assert (
        "TokenRefusedError" in report["failures"]["deploy_models"] and "HTTP 401" in report["failures"]["deploy_models"]
    )
    deployed = json.loads((op.folder(week) / "deploy.json").read_text())
    assert deployed["status"] == "rolled_back" and deployed["attempts"] == 1
    snapshot = json.loads((op.folder(week) / "raw" / "predictions" / "_manifest.json").read_text())
    assert snapshot["full_read_reason"].startswith("a full refresh was asked for")  # the run's param reached it

    # The same week again, without saying what to do: a message naming the run, not a traceback.
    again = op.retrain("airflow", "trigger", "--ds", week.isoformat())
    assert again.returncode == 1 and f"manual__{week.isoformat()}" in again.stderr and "--rerun" in again.stderr
    assert "Traceback" not in again.stderr

    # Rotate the token where the tasks read it, then run the failed tasks again: the week completes.
    op.set_token(mint(op.secret_key, role="admin", ttl=timedelta(hours=8), subject="airflow-scheduler-test"))
    done, run = op.trigger("--ds", week.isoformat(), "--rerun-failed", "--wait")
    assert done.returncode == 0 and "tasks" in run, done.stdout + done.stderr
    assert run["state"] == "success" and {t["state"] for t in run["tasks"].values()} == {"success"}, run
    assert list(run["tasks"]) == list(TASKS)

    folder = op.folder(week)
    for name in ("transform.json", "train.json", "decision.json", "deploy.json", "report.md", "report.json"):
        assert (folder / name).is_file(), name
    assert (folder / "raw" / "predictions" / "_manifest.json").is_file()
    assert (folder / "features" / "quarantine").is_dir()
    assert (folder / "logs" / "spark-extract.log").stat().st_size > 0  # Spark's log in the run's folder
    assert (folder / "logs" / "spark-transform.log").stat().st_size > 0
    deployed = json.loads((folder / "deploy.json").read_text())
    assert deployed["status"] == "deployed" and set(deployed["deployed"]) == MODELS and deployed["attempts"] == 1
    served = op.backend.get("/models").json()["models"]
    assert {m: served[m]["version"] for m in MODELS} == deployed["deployed"]
    report = json.loads((folder / "report.json").read_text())
    assert report["status"] == "succeeded" and report["failures"] == {}

    # What the task logs show: the JVM's notice at its level, and no secret anywhere.
    logs = [path.read_text(errors="replace") for path in op.task_logs()]
    notices = [json.loads(line) for text in logs for line in text.splitlines() if "Using incubator modules" in line]
    assert notices and {n["level"] for n in notices} == {"warning"}, notices
    components = [op.home / "logs" / f"{name}.log" for name in COMPONENTS]
    assert_no_secrets(
        [
            *logs,
            *(path.read_text(errors="replace") for path in components),
            op.output.read_text(),
            op.backend.output(),
            json.dumps(report),
        ],
        [
            forged,
            op.secret_key,
            op.env["DATABASE_URL"].split(":")[2].split("@")[0],
            generated_password(op.home, "admin"),
        ],
    )
    assert op.home.stat().st_mode & 0o777 == 0o700  # Airflow's keys, database and login are the owner's only
    print(f"\n  the refused run took {refused_seconds:.0f} s", file=sys.stderr)  # noqa: T201


@pytest.mark.airflow
@pytest.mark.spark
def test_a_run_without_a_data_interval_fails_at_once_and_notify_reports_it(operator) -> None:
    """A plain trigger (REST, logical_date null) has no week: preflight fails without a retry, notify reports."""
    import requests

    from jobs.scheduling.api import AirflowApi

    op, _ = operator
    password = generated_password(op.home, "admin")
    url = f"http://localhost:{op.port}"
    api = AirflowApi.login(url, "admin", password)
    token = requests.post(f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30).json()
    created = requests.post(
        f"{url}/api/v2/dags/model_retraining/dagRuns",
        json={"logical_date": None},
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    run = api.wait(created.json()["dag_run_id"], timeout=RUN_TIMEOUT, poll=2)
    assert run.state == "failed"
    assert run.tasks["preflight"] == {"state": "failed", "try_number": 1}, run.tasks  # not retried
    assert run.tasks["extract_data"]["state"] == "upstream_failed" and run.tasks["notify"]["state"] == "failed"
    (report_path,) = (op.data_dir / "without_interval").rglob("report.json")
    report = json.loads(report_path.read_text())
    assert report["status"] == "failed" and set(report["failures"]) == {"preflight"}
    assert "has no data interval" in report["failures"]["preflight"]
    assert "retrain airflow trigger --ds" in report["failures"]["preflight"]


@pytest.mark.airflow
@pytest.mark.spark
def test_the_dags_graph_in_a_real_browser_shows_its_nine_tasks(operator, page) -> None:
    """Airflow's UI, logged in as an operator would: the DAG page's graph view, one box per task, and a screenshot."""
    op, week = operator
    password = generated_password(op.home, "admin")
    page.goto(f"http://localhost:{op.port}/dags/model_retraining/runs/manual__{week.isoformat()}")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(f"**/dags/model_retraining/runs/manual__{week.isoformat()}**", timeout=60_000)
    page.get_by_role("button", name="Show Graph (Press g)").click()
    page.wait_for_selector(".react-flow__node", timeout=60_000)
    page.wait_for_load_state("networkidle")
    nodes = page.locator(".react-flow__node")
    assert [nodes.nth(i).get_attribute("data-id") for i in range(nodes.count())] == list(TASKS)
    assert page.locator(".react-flow__edge").count() == len(TASKS) - 1  # one chain
    shot = SCREENSHOTS / "airflow-dag-graph.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    print(f"\n  the DAG's graph in Airflow's UI: {shot}", file=sys.stderr)  # noqa: T201
