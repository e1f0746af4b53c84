"""Whole runs of the DAG with ``dag.test()``: a real Airflow, PostgreSQL, Spark session and serving backend.

Airflow runs the tasks in this process, so they share the test run's one Spark session (a task stops only a
session it started). The database holds 80,000 seeded records; each run takes about a minute.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, free_port
from tests.serving_helpers import Backend, assert_no_secrets

ROWS = 80_000  # the gate judges a model on >= 200 labelled held-out records of the last 4 weeks
SEED_END = date(2026, 11, 22)  # the seeded records end the day before
WEEK_1 = datetime(2026, 11, 22, 2, tzinfo=UTC)  # a Sunday: the week [11-15 02:00, 11-22 02:00)
WEEK_2 = datetime(2026, 11, 29, 2, tzinfo=UTC)
FAILED_WEEK = datetime(2026, 12, 6, 2, tzinfo=UTC)
EMPTY_WEEK = datetime(2026, 2, 1, 2, tzinfo=UTC)  # after the DAG's start date; the seeded data starts in May 2026
MODELS = {"diabetes", "heart", "liver"}


def database_url(pg) -> str:
    return pg.full_url()


@dataclass
class World:
    """What the runs share; the secrets stay out of its repr, so a failing test never prints them."""

    env: dict[str, str] = field(repr=False)
    backend: Backend
    root: Path
    secret_key: str = field(repr=False)


@pytest.fixture(scope="module")
def world(airflow_home, pg, pg_admin, spark, tmp_path_factory):
    """Seeded database, empty model store, the serving backend on it, and the settings the tasks will read."""
    from jobs.demo.seed import seed_database
    from jobs.ml.tokens import mint

    seed_database(pg_admin, ROWS, 42, SEED_END)  # the tables' owner seeds; the tasks and the backend use pg
    root = tmp_path_factory.mktemp("dag_run")
    secret_key = secrets.token_urlsafe(32)
    common = {"DATABASE_URL": database_url(pg), "MODEL_STORE": str(root / "model_store")}
    backend = Backend({**common, "SECRET_KEY": secret_key}, root / "backend.log")
    env = {
        **common,
        "DATA_DIR": str(root / "data"),
        "BACKEND_URL": backend.url,
        "ADMIN_JWT_TOKEN": mint(secret_key, role="admin", ttl=timedelta(hours=12), subject="dag-test"),
        "SPARK_MASTER": "local[2]",
        "RELOAD_TIMEOUT_SECONDS": "30",
    }
    yield World(env, backend, root, secret_key)
    backend.stop()


@pytest.fixture(scope="module")
def dag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO_ROOT / "dags")).dags["model_retraining"]
    for task in dag.tasks:
        task.retries = 0  # a failure must show at once, not after back-off delays
    return dag


def run(dag, logical_date: datetime, env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """One ``dag.test()`` run with ``env`` as the tasks' environment; returns (dag run, {task: state}, {task: xcom})."""
    from airflow.models import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    dag_run = dag.test(logical_date=logical_date)
    with create_session() as session:
        states = {ti.task_id: ti.state for ti in session.query(TaskInstance).filter_by(run_id=dag_run.run_id)}
        xcoms = {
            (x.task_id, x.key): x.value
            for x in session.query(XComModel).filter_by(run_id=dag_run.run_id, dag_id=dag.dag_id)
        }
    return dag_run, {t: str(s) for t, s in states.items()}, xcoms


def xcom(xcoms: dict, task_id: str, key: str = "return_value"):
    value = xcoms.get((task_id, key))
    return json.loads(value) if isinstance(value, str) else value


def folder(world, ds: str) -> Path:
    return Path(world.env["DATA_DIR"]) / "runs" / f"ds={ds}"


@pytest.fixture(scope="module")
def first_week(dag, world):
    with pytest.MonkeyPatch.context() as mp:
        return run(dag, WEEK_1, world.env, mp)


def test_a_first_run_deploys_every_model_to_the_backend(first_week, world):
    dag_run, states, xcoms = first_week
    assert str(dag_run.state) == "success", states
    assert set(states.values()) == {"success"}, states

    deployed = xcom(xcoms, "deploy_models")["deployed"]
    assert set(deployed) == MODELS
    served = world.backend.get("/models").json()["models"]
    assert {m: served[m]["version"] for m in MODELS} == deployed
    assert all(version.startswith("2026-11-22-") for version in deployed.values())

    report = json.loads((folder(world, "2026-11-22") / "report.json").read_text())
    assert report["status"] == "succeeded" and report["failures"] == {}


def test_the_extract_window_ends_at_the_data_interval_end(first_week, world):
    dag_run, _, xcoms = first_week
    assert dag_run.data_interval_end - dag_run.data_interval_start == timedelta(days=7)
    extracted = xcom(xcoms, "extract_data")
    assert extracted["ds"] == "2026-11-22" and extracted["rows"] > 0
    for snapshot in extracted["snapshots"]:
        assert datetime.fromisoformat(snapshot["window_end"]) == dag_run.data_interval_end
        manifest = json.loads((Path(snapshot["path"]) / "_manifest.json").read_text())
        assert manifest["window_end"] == snapshot["window_end"]


def test_xcom_carries_small_metadata_only(first_week, world):
    _, states, xcoms = first_week
    assert set(xcoms) == {(task_id, "return_value") for task_id in states if task_id != "preflight"}
    texts = [value if isinstance(value, str) else json.dumps(value) for value in xcoms.values()]
    assert max(len(text) for text in texts) < 20_000
    assert_no_secrets(texts, [world.env["ADMIN_JWT_TOKEN"], world.secret_key, world.env["DATABASE_URL"]])


def test_when_the_gate_approves_nothing_deploy_is_skipped_and_notify_says_why(first_week, dag, world, monkeypatch):
    """The next week holds no new records: each retrained model equals its champion, so none is promoted."""
    before = world.backend.get("/models").json()["models"]
    dag_run, states, xcoms = run(dag, WEEK_2, world.env, monkeypatch)

    assert str(dag_run.state) == "success", states
    assert states["should_deploy"] == "success" and states["deploy_models"] == "skipped", states
    assert states["notify"] == "success"
    verdicts = {m: v["verdict"] for m, v in xcom(xcoms, "validate_models")["models"].items()}
    assert set(verdicts) == MODELS and "deploy" not in verdicts.values(), verdicts
    assert world.backend.get("/models").json()["models"] == before

    report = json.loads((folder(world, "2026-11-29") / "report.json").read_text())
    assert report["status"] == "succeeded"
    markdown = (folder(world, "2026-11-29") / "report.md").read_text()
    for model in MODELS:
        assert model in markdown
    assert not (folder(world, "2026-11-29") / "deploy.json").exists()


def test_a_failed_extract_is_reported_by_notify_and_fails_the_run(dag, world, monkeypatch):
    unreachable = f"postgresql://retrain:pw-{secrets.token_hex(4)}@127.0.0.1:{free_port()}/retrain"
    dag_run, states, xcoms = run(dag, FAILED_WEEK, {**world.env, "DATABASE_URL": unreachable}, monkeypatch)

    assert str(dag_run.state) == "failed"
    assert states["preflight"] == "success" and states["extract_data"] == "failed", states
    assert {states[t] for t in ("transform_data", "train_models", "validate_models", "deploy_models")} == {
        "upstream_failed"
    }
    assert states["notify"] == "failed"  # it reported, then failed so that the run shows as failed

    report = json.loads((folder(world, "2026-12-06") / "report.json").read_text())
    assert report["status"] == "failed"
    assert set(report["failures"]) == {"extract_data"}
    assert "DatabaseUnreachableError" in report["failures"]["extract_data"]
    assert "127.0.0.1" in report["failures"]["extract_data"]
    assert "extract_data" in (folder(world, "2026-12-06") / "report.md").read_text()
    texts = [json.dumps(report), *(json.dumps(v, default=str) for v in xcoms.values())]
    assert_no_secrets(texts, [unreachable.split(":")[2].split("@")[0]])


def test_a_week_of_demo_traffic_is_served_by_the_deployed_versions(first_week, world, pg_admin):
    """The demo's generator: requests through /predict, logged with the answering version, outcomes verified later.

    Its week starts where WEEK_2's data interval ends, so no other run here reads these records.
    """
    import psycopg2

    from jobs.demo.traffic import serve_week

    _, _, xcoms = first_week
    deployed = xcom(xcoms, "deploy_models")["deployed"]
    db = pg_admin  # the outcomes are written by the tables' owner: the backend's role may only log predictions
    report = serve_week(db, world.backend.url, start=WEEK_2, requests_count=300, seed=3)

    assert report.served + report.rejected == 300 and report.served >= 290
    assert {m: set(v) for m, v in report.versions.items()} == {m: {deployed[m]} for m in MODELS}
    with psycopg2.connect(**db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT record_type, model_version, count(*), count(verified_outcome), min(created_at), max(created_at), "
            "count(verified_at), bool_and(verified_at >= created_at + interval '1 day' AND verified_at < %s) "
            "FROM health_records WHERE created_at >= %s GROUP BY 1, 2",
            (WEEK_2 + timedelta(days=7), WEEK_2),
        )
        rows = cur.fetchall()
    assert {(r[0], r[1]) for r in rows} == {(m, deployed[m]) for m in MODELS}
    assert sum(r[2] for r in rows) == report.served
    assert sum(r[3] for r in rows) == report.verified > 0
    assert all(r[4] >= WEEK_2 and r[5] < WEEK_2 + timedelta(days=7) for r in rows)
    # each outcome dated when it was confirmed: a day or more after the visit, before the week ended
    assert all(r[6] == r[3] and r[7] for r in rows)


def test_a_week_with_nothing_new_skips_training_and_deployment_but_reports(dag, world, monkeypatch):
    """A week before the seeded data starts: every extraction window is empty."""
    dag_run, states, xcoms = run(dag, EMPTY_WEEK, world.env, monkeypatch)

    assert str(dag_run.state) == "success", states
    assert xcom(xcoms, "extract_data")["nothing_new"] is True
    assert states["has_new_data"] == "success"
    skipped = ("transform_data", "train_models", "validate_models", "should_deploy", "deploy_models")
    assert {states[t] for t in skipped} == {"skipped"}, states
    assert states["notify"] == "success"
    report = json.loads((folder(world, "2026-02-01") / "report.json").read_text())
    assert report["status"] == "succeeded" and report["extract"]["rows"] == 0
