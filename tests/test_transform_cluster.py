"""The same steps on a Spark standalone cluster (a master and two workers on loopback, started from the installed
PySpark) give the same outputs as local mode.

The cluster run happens in subprocesses (`python -m jobs extract|transform` with ``SPARK_MASTER=spark://...``): a
second SparkSession cannot live beside the session fixture in this process. Its Parquet is then read back with the
fixture's session and compared with a local-mode run of the same steps on the same rows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobs.run_context import RunContext
from jobs.spark.class_archive import spark_home
from tests.conftest import REPO_ROOT, extract_and_transform, free_port, seeded_database

pytestmark = pytest.mark.spark  # the cluster's JVMs, started here (PostgreSQL comes with the pg_cluster fixture)

ROWS, SEED = 3_000, 5
CTX = RunContext.for_ds("2026-11-22")
OUTPUTS = ("diabetes_features", "heart_features", "liver_features", "quarantine")
START_TIMEOUT_SECONDS = 90


class StandaloneCluster:
    """A master and ``workers`` workers (1 core, 1 GiB each), all on 127.0.0.1, stopped by :meth:`stop`."""

    def __init__(self, work_dir: Path, workers: int = 2) -> None:
        self.work_dir = work_dir
        self.port, self.webui_port = free_port(), free_port()
        self.workers = workers
        self.processes: list[subprocess.Popen] = []
        self.env = {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(work_dir / "logs"),
            "SPARK_NO_DAEMONIZE": "1",
        }

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _spawn(self, name: str, *args: str) -> None:
        log = open(self.work_dir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        self.processes.append(
            subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() kills the JVM with the launcher script
            )
        )

    def start(self) -> None:
        self._spawn(
            "master",
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--webui-port",
            str(self.webui_port),
        )
        # A worker started before the master listens retries only after about ten seconds.
        self._wait(lambda: self._state() is not None, "the master did not answer")
        for i in range(self.workers):
            work = self.work_dir / f"worker-{i}"
            work.mkdir(parents=True, exist_ok=True)
            self._spawn(
                f"worker-{i}",
                "org.apache.spark.deploy.worker.Worker",
                self.master_url,
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--webui-port",
                str(free_port()),
                "--work-dir",
                str(work),
            )
        self._wait(lambda: self.alive_workers() == self.workers, f"{self.workers} workers did not register")

    def _wait(self, ready: Callable[[], bool], failure: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"A cluster process exited early; see the logs in {self.work_dir}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{failure} within {START_TIMEOUT_SECONDS}s; see the logs in {self.work_dir}")

    def _state(self) -> dict | None:
        """The master's status page as JSON, or None while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.webui_port}/json/", timeout=2) as response:
                return json.load(response)
        except OSError:
            return None

    def alive_workers(self) -> int:
        return int((self._state() or {}).get("aliveworkers", 0))

    def stop(self) -> None:
        for p in reversed(self.processes):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture(scope="module")
def database(pg_cluster) -> Iterator[str]:
    with seeded_database(pg_cluster, ROWS, SEED) as url:
        yield url


@pytest.fixture(scope="module")
def local_run(spark, settings, database, tmp_path_factory) -> Path:
    """extract + transform in local mode, on the session fixture."""
    return extract_and_transform(
        spark, dataclasses.replace(settings, database_url=database), CTX.ds_str, tmp_path_factory.mktemp("local")
    )


@pytest.fixture(scope="module")
def cluster_run(database, tmp_path_factory) -> Path:
    """extract + transform as two commands against a standalone master with two workers."""
    work = tmp_path_factory.mktemp("cluster")
    data_dir = work / "data"
    cluster = StandaloneCluster(work)
    try:
        cluster.start()
        env = {
            **os.environ,
            **cluster.env,
            "SPARK_MASTER": cluster.master_url,
            "DATABASE_URL": database,
            "DATA_DIR": str(data_dir),
            "RETRAIN_HOME": str(REPO_ROOT),
        }
        for step in ("extract", "transform"):
            done = subprocess.run(
                [sys.executable, "-m", "jobs", step, "--ds", CTX.ds_str],
                env=env,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, f"{step} on the cluster failed:\n{done.stdout}\n{done.stderr[-3000:]}"
        apps = list((work / "worker-0").iterdir()) + list((work / "worker-1").iterdir())
        assert apps, "no executor ran on the workers: the steps did not use the cluster"
    finally:
        cluster.stop()
    return data_dir / "runs" / f"ds={CTX.ds_str}"


def test_the_cluster_runs_the_steps_on_both_workers(cluster_run) -> None:
    summary = json.loads((cluster_run / "transform.json").read_text())
    assert {m["name"] for m in summary["models"]} >= set(OUTPUTS)
    assert summary["data_tests"] and all(t["status"] != "error" for t in summary["data_tests"])


@pytest.mark.parametrize("output", ["raw/predictions", *(f"features/{name}" for name in OUTPUTS)])
def test_cluster_outputs_equal_local_outputs(spark, local_run, cluster_run, output) -> None:
    from chispa import assert_df_equality

    local = spark.read.parquet(str(local_run / output))
    remote = spark.read.parquet(str(cluster_run / output))
    assert local.count() > 0
    assert_df_equality(local, remote, ignore_row_order=True)
