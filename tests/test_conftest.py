"""The markers by need: given from the fixtures a test uses, and enforced when a test starts a service unmarked."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import NEEDS, PROGRAMS, program


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-version"], "java"),
        (["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "start"], "pg_ctl"),
        ("spark-submit --version", "spark-submit"),
        (Path("/venv/bin/airflow"), "airflow"),
        (["/usr/bin/python3", "-m", "uvicorn"], "python3"),
    ],
)
def test_the_program_a_command_runs(args, name: str) -> None:
    assert program(args) == name


@pytest.mark.parametrize("args", [["java", "-version"], ["runuser", "-u", "postgres", "--", "initdb"], ["airflow"]])
def test_an_unmarked_test_that_starts_a_service_fails_before_it_starts(args: list[str]) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"starts \S+ but is not marked '(spark|postgres|airflow)'"):
        subprocess.run(args, capture_output=True)


def test_every_marker_by_need_is_declared(pytestconfig: pytest.Config) -> None:
    declared = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(NEEDS.values()) == set(PROGRAMS) <= declared
