"""The Spark Connect server that ``SPARK_REMOTE`` points the steps at, started and stopped on this machine.

It is the driver a classic step would start, kept running: the same ``spark-defaults.conf``, JDBC driver, fixed
heap and class archive (:func:`jobs.spark.session.spark_conf`), started once by ``spark-submit`` with Spark's own
``SparkConnectServer`` class (PySpark ships its jar). Its pid and log live under ``<DATA_DIR>/spark-connect/``.
It listens on the URL's host only, 127.0.0.1 by default: the server has no authentication of its own, so anyone who
reaches its port can read what the steps can (docs/security.md).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from jobs.errors import ConfigError, SparkConnectServerError
from jobs.settings import Settings
from jobs.spark.class_archive import spark_home
from jobs.spark.remote import DEFAULT_PORT, RemoteUrl, answers
from jobs.spark.session import fixed_heap_conf, quiet_console_conf, spark_conf

log = logging.getLogger(__name__)

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
APP_NAME = "retrain-spark-connect"
DEFAULT_URL = f"sc://127.0.0.1:{DEFAULT_PORT}"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: a cold start takes about 10 s on 2 cores; a loaded machine may take several times that
START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 30.0
CLIENT_VARIABLES = frozenset({"SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_LOCAL_REMOTE"})


@dataclass(frozen=True)
class ServerStatus:
    remote: RemoteUrl
    pid: int | None
    #: the server answers on its port (a process of another owner may, too: ``pid`` is None then)
    answering: bool
    log_file: Path

    @property
    def running(self) -> bool:
        return self.pid is not None and self.answering


class ConnectServer:
    """The server of ``SPARK_REMOTE`` (default ``sc://127.0.0.1:15002``), when that URL names this machine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.remote = settings.remote or RemoteUrl.parse(DEFAULT_URL)
        self.folder = settings.data_dir / "spark-connect"
        self.pid_file = self.folder / "server.pid"
        self.log_file = self.folder / "spark.log"
        self.console_file = self.folder / "console.log"

    def status(self) -> ServerStatus:
        return ServerStatus(self.remote, self._pid(), answers(self.remote, timeout=1.0) is None, self.log_file)

    def start(self) -> tuple[ServerStatus, float]:
        """Start the server and wait until a client session works; (its status, the seconds it took). A server of
        ours that already runs is left as it is (0 s)."""
        if self.remote.host not in LOCAL_HOSTS:
            raise ConfigError(
                f"SPARK_REMOTE names {self.remote.redacted}, on another machine: `retrain spark-connect start` starts "
                "a server on this one only. Start it there, or point SPARK_REMOTE at sc://127.0.0.1:<port>."
            )
        status = self.status()
        if status.running:
            return status, 0.0
        if status.answering:
            raise SparkConnectServerError(
                f"Port {self.remote.port} of {self.remote.host} is taken by a process this command did not start, "
                f"so no server can listen there. Stop that process, or choose another port in SPARK_REMOTE (e.g. "
                f"sc://127.0.0.1:{self.remote.port + 1})."
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        process = self._spawn()
        self.pid_file.write_text(f"{process.pid}\n", encoding="utf-8")
        try:
            self._wait_ready(process, started)
        except BaseException:
            self._terminate(process.pid)
            self.pid_file.unlink(missing_ok=True)
            raise
        return self.status(), time.monotonic() - started

    def stop(self) -> bool:
        """Stop our server; False when none of ours ran."""
        pid = self._pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        self._terminate(pid)
        return True

    def _spawn(self) -> subprocess.Popen:
        conf = spark_conf(self.settings)
        conf.update(fixed_heap_conf(conf))
        conf.update(quiet_console_conf(conf, self.log_file))
        conf["spark.connect.grpc.binding.address"] = self.remote.host
        conf["spark.connect.grpc.binding.port"] = str(self.remote.port)
        home = spark_home()
        command = [str(home / "bin" / "spark-submit"), "--class", SERVER_CLASS, "--name", APP_NAME]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        # spark-submit refuses to start a server while SPARK_REMOTE says to be a client of one.
        env = _without_client_variables()
        env["SPARK_HOME"] = str(home)
        if self.settings.java_home:
            env["JAVA_HOME"] = self.settings.java_home
        log.info("Starting the Spark Connect server at %s; its log: %s", self.remote.redacted, self.log_file)
        with self.console_file.open("ab") as console:
            return subprocess.Popen(  # noqa: S603 - our own argv, no shell
                command,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.folder,
                start_new_session=True,  # outlives this command, and is not stopped by its terminal's signals
            )

    def _wait_ready(self, process: subprocess.Popen, started: float) -> None:
        while answers(self.remote, timeout=1.0) is not None:
            if process.poll() is not None:
                raise SparkConnectServerError(
                    f"The Spark Connect server exited (code {process.returncode}) before it listened on "
                    f"{self.remote.redacted}: {self._last_error()}. Its output: {self.console_file}; Spark's log: "
                    f"{self.log_file}."
                )
            if time.monotonic() - started > START_TIMEOUT_SECONDS:
                raise SparkConnectServerError(
                    f"The Spark Connect server did not listen on {self.remote.redacted} within "
                    f"{START_TIMEOUT_SECONDS:.0f} s; it was stopped. Its output: {self.console_file}."
                )
            time.sleep(0.25)
        # A client session is opened in a child process: PySpark refuses one beside a classic session of this
        # process, and once one is open it marks the whole process a Connect client (SPARK_CONNECT_MODE_ENABLED).
        env = _without_client_variables()
        env["SPARK_REMOTE"] = self.remote.url  # not in argv, which others may read: the URL may hold a token
        check = subprocess.run(  # noqa: S603 - our own argv, no shell
            [sys.executable, "-m", "jobs.spark.connect_server"],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_SECONDS,
        )
        if check.returncode != 0:
            said = [line for line in check.stderr.splitlines() if line.strip()]
            raise SparkConnectServerError(
                f"The Spark Connect server listens on {self.remote.redacted} but a client session failed: "
                f"{said[-1] if said else 'no answer'}. Its log: {self.log_file}."
            )

    def _last_error(self) -> str:
        """The console's last line that is not a stack frame: the JVM's reason for stopping, usually."""
        try:
            lines = self.console_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "no output"
        told = [line.strip() for line in lines if line.strip() and not line.startswith(("\tat ", "\t..."))]
        return told[-1] if told else "no output"

    def _pid(self) -> int | None:
        """The pid in our pid file, when that process still runs."""
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    @staticmethod
    def _terminate(pid: int) -> None:
        """SIGTERM to the server's process group (spark-submit's shell and the JVM), then SIGKILL if it lingers."""
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_SECONDS), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if not _alive(pid):
                    return
                time.sleep(0.2)


def _without_client_variables() -> dict[str, str]:
    """This process's environment for a child, without what makes PySpark a Connect client (CLIENT_VARIABLES)."""
    return {k: v for k, v in os.environ.items() if k not in CLIENT_VARIABLES}


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reaps it when this process started it
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_client() -> None:
    """``python -m jobs.spark.connect_server``: open and close one client session of ``SPARK_REMOTE``'s server."""
    from jobs.spark.remote import RemoteUrl, connect_session

    connect_session(RemoteUrl.parse(os.environ["SPARK_REMOTE"]), "retrain-spark-connect-check").stop()


if __name__ == "__main__":
    _check_client()
