"""``make airflow``: a local Airflow running this project's DAG, as an operator runs one.

Its API server, scheduler (LocalExecutor), DAG processor and triggerer run as ``airflow <component>`` processes,
each in its own process group with its output in ``<AIRFLOW_HOME>/logs/<component>.log``. Everything that names a
port derives from one setting, ``AIRFLOW_PORT``: the API server listens there, and the Execution API URL that tasks
call (``[api] base_url``, which Airflow otherwise takes to be ``http://localhost:8080`` whatever the port) and the
two log servers (the next two ports, instead of Airflow's fixed 8793 and 8794) follow it. Each port is checked free
before anything starts; a component that exits, or does not report healthy in time, stops the others and fails
with its name and the end of its log, instead of a banner saying all is well.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import requests

from jobs.errors import AirflowStartError
from jobs.postgres.secret import new_password, write_secret
from jobs.settings import Settings

log = logging.getLogger(__name__)

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: the health endpoint's name of each component that reports a heartbeat
HEARTBEATS = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
STOP_GRACE_SECONDS = 30.0


@dataclass(frozen=True)
class Ports:
    """The ports a local Airflow listens on, all derived from ``AIRFLOW_PORT``."""

    api: int

    @property
    def task_logs(self) -> int:
        """The scheduler's log server, which serves the task logs of LocalExecutor's workers (Airflow: 8793)."""
        return self.api + 1

    @property
    def triggerer_logs(self) -> int:
        """The triggerer's log server (Airflow: 8794)."""
        return self.api + 2

    def named(self) -> dict[str, int]:
        return {
            "the API server (AIRFLOW_PORT)": self.api,
            "the task log server (AIRFLOW_PORT + 1)": self.task_logs,
            "the triggerer's log server (AIRFLOW_PORT + 2)": self.triggerer_logs,
        }


def port_taken(port: int) -> bool:
    """Whether binding ``port`` on every interface fails, as Airflow's servers bind it (address reuse on, so a
    connection still closing does not count; a listener on any address does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def free_base_port(start: int = 8080, tries: int = 200) -> int | None:
    """The first ``AIRFLOW_PORT`` from ``start`` whose three ports are free, to suggest one."""
    for base in range(start, min(start + tries * 3, 65533), 3):
        if not any(port_taken(p) for p in Ports(base).named().values()):
            return base
    return None


def check_ports_free(ports: Ports) -> None:
    """Fail before anything starts when a port is taken, naming it, its role and what to do."""
    for role, port in ports.named().items():
        if port_taken(port):
            other = free_base_port(ports.api + 3)
            suggestion = f", e.g. `AIRFLOW_PORT={other} make airflow`" if other else ""
            raise AirflowStartError(
                f"Port {port}, for {role}, is in use by another process. Choose another AIRFLOW_PORT (a local Airflow "
                f"takes it and the next two){suggestion}, or stop what listens there (`ss -ltnp 'sport = :{port}'`)."
            )


@dataclass
class LocalAirflow:
    """One local Airflow: its home, its ports, the project whose DAG it runs, and the ``airflow`` it starts."""

    home: Path
    ports: Ports
    project_root: Path
    airflow: Path
    #: the one user (an admin): AIRFLOW_USERNAME, as whom `retrain airflow trigger` logs in
    username: str = "admin"
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, airflow: Path) -> LocalAirflow:
        return cls(
            settings.airflow_home,
            Ports(settings.airflow_port),
            settings.root,
            airflow,
            username=settings.airflow_username,
        )

    @property
    def url(self) -> str:
        return f"http://localhost:{self.ports.api}"

    @property
    def passwords_file(self) -> Path:
        """The simple auth manager's passwords (user :attr:`username`), generated before the API server starts."""
        return self.home / PASSWORDS_FILE

    def log_file(self, component: str) -> Path:
        return self.home / "logs" / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.home / f"{component}.pid"

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` (the caller's environment: the pipeline's settings reach the tasks through it) with Airflow's
        configuration for this local Airflow."""
        env = dict(base)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.project_root / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
                # the one user, with the password _make_private_home wrote: any other would be generated and printed
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
                "AIRFLOW__API__PORT": str(self.ports.api),
                "AIRFLOW__API__BASE_URL": self.url,  # the Execution API's URL that tasks call derives from it
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.ports.task_logs),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.ports.triggerer_logs),
                "RETRAIN_HOME": str(self.project_root),
                "PATH": f"{self.airflow.parent}{os.pathsep}{base.get('PATH', '')}",
            }
        )
        return env

    # -- starting -----------------------------------------------------------------------------------------------

    def start(self, base_env: Mapping[str, str], ready_timeout: float = 300.0) -> None:
        """Check the ports, migrate the database, start every component and wait until each reports healthy.

        On any failure the components already started are stopped before the error is raised.
        """
        check_ports_free(self.ports)
        self._make_private_home()
        env = self.environment(base_env)
        self._migrate(env)
        try:
            for component in COMPONENTS:
                self._spawn(component, env)
            self.wait_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise

    def _make_private_home(self) -> None:
        """The home readable by its owner only (it holds Airflow's keys, its database and the login), and the user's
        password generated here: the API server prints a password only when it generates one, into its log, so it
        finds one already and the log never holds it."""
        if not self.username or any(c in self.username for c in ",: "):
            raise AirflowStartError(
                f"AIRFLOW_USERNAME {self.username!r} cannot name the local Airflow's user: use letters, digits, '-' "
                "or '_' (the default is admin)."
            )
        try:
            (self.home / "logs").mkdir(parents=True, exist_ok=True)
            self.home.chmod(0o700)
            exposed = self.passwords_file.exists() and self.passwords_file.stat().st_mode & 0o077
            if exposed or generated_password(self.home, self.username) is None:
                if exposed:  # an earlier start let Airflow generate it, print it into its log and leave it readable
                    log.warning("A new password for %s: the one in %s was readable by others", self.username, self.home)
                write_secret(self.passwords_file, json.dumps({**_passwords(self.home), self.username: new_password()}))
        except PermissionError as e:
            raise AirflowStartError(
                f"Cannot make the Airflow home {self.home} private to you ({e.strerror}: {e.filename}): it holds "
                "Airflow's keys, its database and the login. Set AIRFLOW_HOME to a directory you own."
            ) from None

    def _migrate(self, env: Mapping[str, str]) -> None:
        """``airflow db migrate`` first, alone: it also writes ``airflow.cfg`` with the secrets (the API's JWT key)
        every component must share, which components started together would each generate differently."""
        log_path = self.log_file("db-migrate")
        with log_path.open("wb") as out:
            done = subprocess.run(
                [str(self.airflow), "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=600
            )
        if done.returncode != 0:
            raise AirflowStartError(
                f"`airflow db migrate` failed (exit {done.returncode}) for {self.home}:\n{tail(log_path)}\n"
                f"Its whole output: {log_path}."
            )

    def _spawn(self, component: str, env: Mapping[str, str]) -> None:
        out = self.log_file(component).open("wb")
        self._logs[component] = out
        self.processes[component] = subprocess.Popen(
            [str(self.airflow), component],
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: stopping it stops its workers and task processes too
            preexec_fn=_die_with_parent,
        )
        self.pid_file(component).write_text(f"{self.processes[component].pid}\n", encoding="utf-8")
        log.info("Started airflow %s (pid %d); its log: %s", component, self.processes[component].pid, out.name)

    def wait_ready(self, timeout: float) -> None:
        """Until the API answers and reports every heartbeat healthy; fails when a component exits or time runs out."""
        deadline = time.monotonic() + timeout
        health: dict = {}
        while time.monotonic() < deadline:
            self.check_running()
            try:
                health = requests.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
            except (requests.RequestException, ValueError):
                health = {}
            waiting = [c for c, key in HEARTBEATS.items() if (health.get(key) or {}).get("status") != "healthy"]
            if health and not waiting:
                return
            time.sleep(1.0)
        late = [c for c, key in HEARTBEATS.items() if (health.get(key) or {}).get("status") != "healthy"]
        component = late[0] if health else "api-server"
        raise AirflowStartError(
            f"Airflow's {component} did not report healthy within {timeout:g}s"
            + (f" (the API server's health: {health})" if health else f" (nothing answered at {self.url})")
            + f". The end of its log:\n{tail(self.log_file(component))}\nIts whole log: {self.log_file(component)}."
        )

    def check_running(self) -> None:
        """Fail, naming it, when a component has exited."""
        for component, process in self.processes.items():
            code = process.poll()
            if code is not None:
                raise AirflowStartError(
                    f"Airflow's {component} exited (code {code}). The end of its log:\n"
                    f"{tail(self.log_file(component))}\nIts whole log: {self.log_file(component)}."
                )

    def supervise(self, poll: float = 2.0) -> None:
        """Return only by an exception: a component that exits stops the others and fails with its name."""
        try:
            while True:
                self.check_running()
                time.sleep(poll)
        finally:
            self.stop()

    # -- stopping -----------------------------------------------------------------------------------------------

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM every component's process group, then SIGKILL what is left after ``grace`` seconds."""
        running = {c: p for c, p in self.processes.items() if p.poll() is None}
        for component, process in running.items():
            log.info("Stopping airflow %s (pid %d).", component, process.pid)
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in running.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for process in self.processes.values():  # the groups: workers and task processes outlive their parent
            _signal_group(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.wait()
        for component in self.processes:
            self.pid_file(component).unlink(missing_ok=True)
        for out in self._logs.values():
            out.close()
        self.processes.clear()
        self._logs.clear()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _die_with_parent() -> None:
    """In the child before it runs: SIGTERM it when the process that started it dies (Linux), so that a supervisor
    killed without a chance to stop its components leaves none behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def tail(path: Path, lines: int = 25) -> str:
    """The last lines of a log file, indented, for an error message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"    ({path} could not be read)"
    return "\n".join(f"    {line}" for line in text.splitlines()[-lines:]) or "    (empty)"


def generated_password(home: Path, username: str) -> str | None:
    """The password of ``username`` for the simple auth manager in ``home``, if this machine has it."""
    value = _passwords(home).get(username)
    return str(value) if value else None


def _passwords(home: Path) -> dict:
    """The simple auth manager's passwords file in ``home``, by user; empty when missing or unreadable."""
    try:
        passwords = json.loads((home / PASSWORDS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return passwords if isinstance(passwords, dict) else {}
