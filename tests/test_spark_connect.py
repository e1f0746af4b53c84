"""The steps as clients of a Spark Connect server (``SPARK_REMOTE``): `retrain spark-connect start|stop|status`, the
same outputs as a classic driver, and a server that is missing or lost mid-step reported as such.

The server and the clients run in subprocesses (the server as `retrain spark-connect start` leaves it; the steps as
`python -m jobs ...`): a Connect client in this process would turn PySpark's session fixture into a client too.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.errors import ConfigError
from jobs.run_context import RunContext
from jobs.settings import Settings
from jobs.spark.remote import OutageBudget, RemoteUrl, redact
from tests.conftest import REPO_ROOT, extract_and_transform, free_port, seeded_database

ROWS, SEED = 2_000, 11
CTX = RunContext.for_ds("2026-11-22")
OUTPUTS = ("stg_predictions", "diabetes_features", "heart_features", "liver_features", "quarantine")
TOKEN = "sekrit-connect-token"


def retrain(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# The URL, without a server.


def test_the_url_names_host_and_port_and_its_token_is_masked() -> None:
    remote = RemoteUrl.parse(f"sc://127.0.0.1:15099/;token={TOKEN};user_id=etl")
    assert (remote.host, remote.port) == ("127.0.0.1", 15099)
    assert remote.secrets == [TOKEN]
    assert TOKEN not in remote.redacted and TOKEN not in repr(remote)
    assert RemoteUrl.parse("sc://localhost").port == 15002
    assert RemoteUrl.parse("sc://[::1]:15003").host == "::1"


@pytest.mark.parametrize("url", ["http://127.0.0.1:15002", "127.0.0.1:15002", "sc://", "sc://host:99999"])
def test_a_url_that_is_not_spark_connect_is_refused_with_the_form_to_use(url: str) -> None:
    with pytest.raises(ConfigError, match=r"sc://host\[:port\]|not a TCP port"):
        Settings.from_env(env={"SPARK_REMOTE": f"{url};token={TOKEN}"}, root=REPO_ROOT)
    assert TOKEN not in redact(f"{url};token={TOKEN}")


def test_the_token_is_one_of_the_secrets_logs_never_show() -> None:
    settings = Settings.from_env(env={"SPARK_REMOTE": f"sc://127.0.0.1:15099/;token={TOKEN}"}, root=REPO_ROOT)
    assert TOKEN in settings.secrets()
    assert TOKEN not in settings.redact(f"connecting to {settings.spark_remote}")


@pytest.mark.spark
def test_one_outage_is_retried_for_its_budget_over_every_call_and_a_later_one_again() -> None:
    """PySpark's own clean-up of a call that gave up would otherwise retry as long again."""
    now = [0.0]
    budget = OutageBudget(seconds=17.0, clock=lambda: now[0])
    for at in (0.0, 0.05, 0.25, 1.05, 4.3):  # the first call's failures, its backoffs apart
        now[0] = at
        assert budget.allows_retry()
    now[0] = 17.2  # its last failure, then its clean-up's first: the outage has lasted the budget
    assert not budget.allows_retry()
    assert not budget.allows_retry()
    now[0] = 60.0  # long after: another outage, with a budget of its own
    assert budget.allows_retry()


def test_a_step_fails_at_once_when_no_server_answers(tmp_path: Path) -> None:
    url = f"sc://127.0.0.1:{free_port()}/;token={TOKEN}"
    env = {**os.environ, "SPARK_REMOTE": url, "DATA_DIR": str(tmp_path), "RETRAIN_HOME": str(REPO_ROOT)}
    done = retrain(env, "check", timeout=120)  # analyses every model with Spark, reads no data
    assert done.returncode == 1, done.stderr
    assert "did not answer while starting the step: Connection refused" in done.stderr
    assert "retrain spark-connect start" in done.stderr and "unset SPARK_REMOTE" in done.stderr
    assert "Traceback" not in done.stderr and TOKEN not in done.stderr + done.stdout


# A server, started as an operator would.


@pytest.fixture(scope="module")
def database(pg_cluster) -> Iterator[str]:
    with seeded_database(pg_cluster, ROWS, SEED) as url:
        yield url


@pytest.fixture(scope="module")
def server_env(tmp_path_factory, class_archive) -> Iterator[dict[str, str]]:
    """The environment of an operator whose SPARK_REMOTE names a server on a free port; the server is stopped at
    the end whatever happened to it."""
    env = {
        **os.environ,
        "SPARK_REMOTE": f"sc://127.0.0.1:{free_port()}",
        "DATA_DIR": str(tmp_path_factory.mktemp("connect") / "data"),
        "RETRAIN_HOME": str(REPO_ROOT),
    }
    yield env
    retrain(env, "spark-connect", "stop", timeout=60)


@pytest.fixture(scope="module")
def server(server_env) -> dict[str, str]:
    """Started in this process, as the bench starts one: the readiness check's client session must not leave this
    process marked a Connect client (PySpark's SPARK_CONNECT_MODE_ENABLED), or the session fixture's next use, and
    every step it starts, would turn into clients too."""
    from jobs.spark.connect_server import ConnectServer

    stopped = retrain(server_env, "spark-connect", "status", timeout=60)
    assert stopped.returncode == 3 and stopped.stdout.startswith("stopped"), stopped.stdout
    status, seconds = ConnectServer(Settings.from_env(env=server_env, root=REPO_ROOT)).start()
    assert status.running and seconds > 0
    assert "SPARK_CONNECT_MODE_ENABLED" not in os.environ and "SPARK_REMOTE" not in os.environ
    return server_env


@pytest.fixture(scope="module")
def connect_run(server, database) -> Path:
    """extract + transform as two commands, both clients of the server."""
    env = {**server, "DATABASE_URL": database}
    for step in ("extract", "transform"):
        done = retrain(env, step, "--ds", CTX.ds_str)
        assert done.returncode == 0, f"{step} over Spark Connect failed:\n{done.stdout}\n{done.stderr[-3000:]}"
        assert f"Using the Spark Connect server at {server['SPARK_REMOTE']}" in done.stderr
    return Path(server["DATA_DIR"]) / "runs" / f"ds={CTX.ds_str}"


@pytest.fixture(scope="module")
def local_run(spark, settings, database, tmp_path_factory) -> Path:
    """The same steps with a driver of their own (the session fixture's)."""
    return extract_and_transform(
        spark, dataclasses.replace(settings, database_url=database), CTX.ds_str, tmp_path_factory.mktemp("local")
    )


@pytest.mark.spark
def test_start_again_and_status_find_the_running_server(server) -> None:
    again = retrain(server, "spark-connect", "start", timeout=60)
    assert again.returncode == 0 and "already running" in again.stdout
    status = retrain(server, "spark-connect", "status", timeout=60)
    assert status.returncode == 0 and status.stdout.startswith("running (pid ")


@pytest.mark.spark
def test_the_steps_started_no_driver_of_their_own(connect_run) -> None:
    summary = json.loads((connect_run / "transform.json").read_text())
    assert {m["name"] for m in summary["models"]} >= set(OUTPUTS)
    assert all(t["status"] != "error" for t in summary["data_tests"])
    # A classic step logs its driver's output into the run's logs/; a client has no driver to log.
    assert not list((connect_run / "logs").glob("spark-*.log"))


@pytest.mark.spark
@pytest.mark.parametrize("output", ["raw/predictions", *(f"features/{name}" for name in OUTPUTS)])
def test_outputs_over_spark_connect_equal_a_drivers_own(spark, local_run, connect_run, output) -> None:
    from chispa import assert_df_equality

    local = spark.read.parquet(str(local_run / output))
    remote = spark.read.parquet(str(connect_run / output))
    assert local.count() > 0
    assert_df_equality(local, remote, ignore_row_order=True)


@pytest.mark.spark
def test_a_server_lost_mid_step_is_reported_as_such(server, connect_run) -> None:
    """Last of the module: the server is killed under a running task session (the DAG's way to Spark)."""
    pid = int((Path(server["DATA_DIR"]) / "spark-connect" / "server.pid").read_text())
    script = textwrap.dedent(
        f"""
        import os, signal
        from jobs.errors import SparkConnectUnavailableError
        from jobs.settings import Settings
        from jobs.spark.session import task_spark_session
        try:
            with task_spark_session(Settings.from_env(), "retrain-transform-test") as spark:
                assert spark.range(3).count() == 3
                os.kill({pid}, signal.SIGKILL)
                spark.range(3).count()
        except SparkConnectUnavailableError as e:
            print("REPORTED:", e)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=server, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert "REPORTED: The Spark Connect server of SPARK_REMOTE" in done.stdout, done.stderr[-3000:]
    assert "did not answer while running retrain-transform-test" in done.stdout
    assert "retrain spark-connect start" in done.stdout
    status = retrain(server, "spark-connect", "status", timeout=60)
    assert status.returncode == 3 and status.stdout.startswith("stopped")
