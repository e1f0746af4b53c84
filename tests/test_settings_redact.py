"""No form of the database password appears anywhere a run writes: the redaction end to end.

The pipeline (extract -> transform -> train -> validate -> notify, as ``retrain`` runs them) reads a seeded database
as a role whose password is ``p@ss:w/rd#1``, given in each form ``DATABASE_URL`` accepts: percent-encoded in the
userinfo, as a ``?password=`` query parameter, and with ``?user=`` too under the ``postgres://`` scheme with
lower-case hex. A failed step's message quotes the URL, as a library's error may. Then every file the run wrote
(reports, summaries, manifests, Parquet, the model store, Spark's log), all console output (the process's file
descriptors, so the JVM's too), every log record and the webhook's body are searched for the password, decoded and
in every encoding. A malformed URL is refused without quoting a piece of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import REPO_ROOT
from tests.serving_helpers import ScriptedServer

PASSWORD = "p@ss:w/rd#1"
ROLE = "redact_probe"
DS = "2026-11-22"
ROWS = 20_000
#: the password as it may be spelled anywhere: decoded, percent-encoded in either case, partly encoded, and the
#: pieces an unparseable URL's error used to quote
FORMS = (
    PASSWORD,
    "p%40ss%3Aw%2Frd%231",
    "p%40ss%3aw%2frd%231",
    "p%40ss%3Aw/rd%231",
    "p%40ss:w/rd#1",
    "ss:w/rd",
    "w/rd#1",
    "%3Aw%2Frd",
    "%3aw%2frd",
)


def urls(port: int) -> dict[str, str]:
    return {
        "userinfo": f"postgresql://{ROLE}:p%40ss%3Aw%2Frd%231@127.0.0.1:{port}/retrain",
        "query": f"postgresql://{ROLE}@127.0.0.1:{port}/retrain?password=p%40ss%3Aw%2Frd%231",
        "query_user_lower_hex": (
            f"postgres://127.0.0.1:{port}/retrain?user={ROLE}&password=p%40ss%3aw%2frd%231&application_name=retrain"
        ),
    }


@pytest.fixture(scope="module")
def probe_role(pg_admin, pg) -> Iterator[int]:
    """A seeded database and a throwaway role that logs in with the password, reading what extraction reads."""
    from jobs.demo.seed import seed_database

    admin = pg_admin  # the superuser: the application role may not create roles or load data
    seed_database(admin, ROWS, 42, date(2026, 11, 22))
    with psycopg2.connect(**admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {ROLE}")
        cur.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD %s", (PASSWORD,))
        cur.execute(f"GRANT SELECT ON users, health_records TO {ROLE}")
    yield pg.port
    with psycopg2.connect(**admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute(f"REVOKE ALL ON users, health_records FROM {ROLE}")
        cur.execute(f"DROP ROLE IF EXISTS {ROLE}")


def found(texts: dict[str, bytes]) -> list[str]:
    """Where a form of the password appears: ``"<where>: form #<n>"`` (never the form itself)."""
    return [
        f"{where}: form #{i}" for where, data in texts.items() for i, form in enumerate(FORMS) if form.encode() in data
    ]


def written_files(*roots: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for root in roots if root.exists() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("form", ["userinfo", "query", "query_user_lower_hex"])
def test_a_whole_run_writes_and_prints_no_form_of_the_password(
    spark, probe_role, tmp_path, monkeypatch, capfd, caplog, form: str
) -> None:
    import logging

    from jobs.cli import main
    from jobs.spark.session import spark_log_file

    url = urls(probe_role)[form]
    caplog.set_level(logging.DEBUG)
    with ScriptedServer() as webhook:
        env = {
            "DATABASE_URL": url,
            "DATA_DIR": str(tmp_path / "data"),
            "MODEL_STORE": str(tmp_path / "store"),
            "SPARK_MASTER": "local[2]",
            "NOTIFY_WEBHOOK_URL": webhook.url + "/hook",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        for step in ("extract", "transform", "train", "validate"):
            assert main([step, "--ds", DS]) == 0, step
        # A step whose error quotes the URL as given, as a driver's or a library's message may.
        failure = f"deploy_models=could not reach the database at {url} (password {PASSWORD})"
        assert main(["notify", "--ds", DS, "--failure", failure]) == 0
    snapshot = tmp_path / "data" / "runs" / f"ds={DS}" / "raw" / "predictions"
    assert (snapshot / "_manifest.json").exists() and (tmp_path / "data" / "runs" / f"ds={DS}" / "report.md").exists()
    report = (tmp_path / "data" / "runs" / f"ds={DS}" / "report.md").read_text()
    assert "could not reach the database at postgres" in report and "***" in report  # reported, masked
    out, err = capfd.readouterr()
    texts = written_files(tmp_path / "data", tmp_path / "store")
    spark_log = spark_log_file()
    if spark_log is not None and spark_log.exists():
        texts["spark log"] = spark_log.read_bytes()
    texts |= {"stdout": out.encode(), "stderr": err.encode(), "log records": caplog.text.encode()}
    texts |= {f"webhook post #{i}": r.body for i, r in enumerate(webhook.requests)}
    assert webhook.requests and len(texts) > 20
    assert found(texts) == []


def _retrain(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ADMIN_JWT_TOKEN", "SECRET_KEY")}
    return subprocess.run(
        [sys.executable, "-m", "jobs", *args],
        cwd=REPO_ROOT,
        env={**full, **env},
        capture_output=True,
        timeout=120,
    )


def test_the_console_of_retrain_shows_no_form_of_the_password(probe_role, tmp_path) -> None:
    """``retrain`` as a program: its own logging set-up, a failure quoting the URL, and a malformed URL."""
    env = {"DATA_DIR": str(tmp_path / "data"), "MODEL_STORE": str(tmp_path / "store")}
    outputs = {}
    for form, url in urls(probe_role).items():
        failure = f"extract_data=psycopg2.OperationalError: connection to {url} failed"
        run = _retrain(["notify", "--ds", DS, "--failure", failure], {**env, "DATABASE_URL": url})
        assert run.returncode == 0, run.stderr.decode()[-2000:]
        outputs[f"notify ({form})"] = run.stdout + run.stderr
    # Not encoded: '/' ends the host part and '#' starts a fragment, so the URL cannot be read.
    malformed = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{probe_role}/retrain"
    run = _retrain(["extract", "--ds", DS], {**env, "DATABASE_URL": malformed})
    assert run.returncode == 2 and b"URL-encode special characters" in run.stderr
    outputs["extract (malformed URL)"] = run.stdout + run.stderr
    outputs |= written_files(tmp_path / "data")
    assert found(outputs) == []
    assert b"'ss'" not in run.stderr and b"'w'" not in run.stderr  # no piece of the URL is quoted


def test_an_airflow_task_log_masks_every_spelling_of_the_password(airflow_home, tmp_path, monkeypatch) -> None:
    """A task reads its settings through ``StepTasks.settings``, which gives Airflow's masker each secret in the
    spellings a URL gives it; what the task logs passes through that masker."""
    from airflow.sdk.log import redact

    from jobs.airflow_tasks import StepTasks

    url = urls(5432)["query"]
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    StepTasks(REPO_ROOT, "UTC", token_lookup=lambda: None).settings()
    line = f"connecting to {url} with {PASSWORD} (p%40ss%3Aw%2Frd%231, p%40ss%3aw%2frd%231) failed"
    masked = redact(line)
    assert found({"task log": masked.encode()}) == [] and "connecting to" in masked
