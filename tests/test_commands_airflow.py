"""`retrain airflow trigger` and `set-token` refuse what cannot work before, or without, asking Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobs.cli import main
from tests.conftest import free_port


def next_sunday() -> str:
    today = datetime.now(UTC).date()
    return (today + timedelta(days=(6 - today.weekday()) % 7 or 7)).isoformat()  # the next one, never today


@pytest.fixture
def no_airflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nothing listens on AIRFLOW_PORT, and AIRFLOW_HOME holds no generated password."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_PORT", str(free_port()))
    monkeypatch.delenv("AIRFLOW_PASSWORD", raising=False)
    monkeypatch.delenv("AIRFLOW_API_URL", raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("ds", "says"),
    [
        ("2026-11-23", "is a Monday; the DAG's weeks end on Sundays"),
        (next_sunday(), "is not over"),
        ("2026-13-01", "YYYY-MM-DD"),
    ],
)
def test_a_week_that_cannot_run_is_refused_before_airflow_is_asked(no_airflow, caplog, ds: str, says: str) -> None:
    assert main(["airflow", "trigger", "--ds", ds]) == 2
    assert says in caplog.text


def test_without_a_password_the_message_names_where_it_looked(no_airflow: Path, caplog) -> None:
    assert main(["airflow", "trigger", "--ds", "2026-11-22"]) == 1
    assert str(no_airflow / "simple_auth_manager_passwords.json.generated") in caplog.text
    assert "AIRFLOW_PASSWORD" in caplog.text


def test_without_an_airflow_the_message_says_how_to_start_one(no_airflow: Path, caplog, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_PASSWORD", "pw-never-shown")
    assert main(["airflow", "trigger", "--ds", "2026-11-22"]) == 1
    assert "No Airflow API server answers at http://localhost:" in caplog.text and "make airflow" in caplog.text
    assert "pw-never-shown" not in caplog.text


def test_set_token_checks_a_token_without_importing_airflow(tmp_path: Path) -> None:
    """Importing Airflow reads (and creates) an Airflow home of its own: ~/airflow, not the one the token goes to."""
    code = (
        "import sys; from jobs.cli import main; main(['airflow', 'set-token']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))"
    )
    env = {**os.environ, "HOME": str(tmp_path), "AIRFLOW_PORT": str(free_port())}
    env.pop("AIRFLOW_HOME", None)
    done = subprocess.run([sys.executable, "-c", code], input="not-a-jwt", env=env, capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr
    assert "not-a-jwt" not in done.stderr  # the refused token is not repeated
    assert not (tmp_path / "airflow").exists()


def test_the_run_unpausing_started_is_reported_once_the_triggered_one_ends() -> None:
    """`trigger --unpause --wait` exits with its own run's state, so the schedule's run is said in words."""
    from jobs.commands.airflow import scheduled_run_line
    from jobs.scheduling.api import DagRun
    from jobs.scheduling.week import week_ending

    week = week_ending("2026-11-29")

    def run(state: str) -> DagRun:
        body = {"dag_run_id": "scheduled__2026-11-22T02:00:00+00:00", "state": state}
        return DagRun.from_api(body)

    assert "has not started the week ending 2026-11-29 yet" in scheduled_run_line(week, None)
    assert scheduled_run_line(week, run("success")).startswith("The run scheduled__2026-11-22T02:00:00+00:00 of")
    running = scheduled_run_line(week, run("running"))
    assert "is running: follow it with `retrain airflow trigger --ds 2026-11-29 --wait`" in running
    assert scheduled_run_line(week, run("success")).endswith("2026-11-29 succeeded.")
    failed = scheduled_run_line(week, run("failed"))
    assert "2026-11-29 failed: see its report, runs/ds=2026-11-29/report.md" in failed
    assert "`retrain airflow trigger --ds 2026-11-29 --rerun-failed --wait`" in failed
