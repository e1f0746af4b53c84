"""The reference serving backend, for real: uvicorn in a subprocess on a loopback port, a real model store with
tiny fitted models, and predictions logged into the test PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from jobs.ml.tokens import mint
from serving.records import INSERT_COLUMNS
from tests.conftest import free_port
from tests.serving_helpers import SECRET_KEY, Stack, admin_token, assert_no_secrets, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg) -> Stack:
    stack = start_stack(tmp_path_factory.mktemp("serving"), pg)
    yield stack
    stack.backend.stop()


@pytest.fixture
def v1(stack: Stack, pg_admin) -> Stack:
    """Both models at v1 in the store and in the backend, and user 1 known to the database."""
    stack.promote(tiny="v1", other="v1")
    assert stack.reload().status_code == 200
    with psycopg2.connect(**pg_admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO users (id, allow_data_collection) VALUES (1, true) ON CONFLICT DO NOTHING")
    return stack


def test_healthz_and_models_list_the_loaded_versions_with_their_hashes(v1: Stack) -> None:
    assert v1.backend.get("/healthz").json() == {"status": "ok", "models": 2}
    ready = v1.backend.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "models": 2, "database": "ok"})
    models = v1.backend.get("/models").json()["models"]
    assert models["tiny"]["version"] == v1.versions["tiny"]["v1"]
    assert models["tiny"]["artifact_sha256"] == v1.store.artifact_sha256("tiny", v1.versions["tiny"]["v1"])


def test_a_prediction_is_served_and_logged_with_the_model_version(v1: Stack, pg) -> None:
    body = '{"x": "3", "color": " Red ", "user_id": 1}'
    answer = v1.backend.post("/predict/tiny", data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["prediction"] == "High Risk" and result["version"] == v1.versions["tiny"]["v1"]
    assert 0.5 <= result["confidence"] <= 1.0
    by_header = v1.backend.post("/predict/tiny", json={"x": -3, "color": "blue"}, headers={"X-User-Id": "1"}).json()
    assert by_header["prediction"] == "Low Risk"
    with psycopg2.connect(**pg.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT id, user_id, record_type, data, prediction, confidence, model_version, created_at, "
            "verified_outcome FROM health_records WHERE id IN (%s, %s) ORDER BY id",
            (result["record_id"], by_header["record_id"]),
        )
        first, second = cur.fetchall()
    assert first[1:7] == (
        1,
        "tiny",
        body,
        "High Risk",
        pytest.approx(result["confidence"], abs=1e-6),
        v1.versions["tiny"]["v1"],
    )
    assert abs(first[7] - datetime.now(UTC)) < timedelta(minutes=1) and first[8] is None
    assert second[1] == 1 and json.loads(second[3]) == {"x": -3, "color": "blue"} and second[4] == "Low Risk"


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/predict/tiny", '{"x": "abc", "color": "red"}', 422, "'x'"),
        ("/predict/tiny", '{"x": [1], "color": "red"}', 422, "'x'"),
        ("/predict/tiny", "not json", 422, "JSON object"),
        ("/predict/tiny", "[1, 2]", 422, "JSON object"),
        ("/predict/tiny", '{"x": 1, "user_id": "me"}', 422, "user_id"),
        ("/predict/tiny", '{"x": 1, "user_id": 424242}', 422, "424242 is not a known user"),
        ("/predict/nope", '{"x": 1}', 404, "Models in production: other, tiny"),
    ],
)
def test_bad_requests_are_refused_naming_the_problem(v1: Stack, path: str, body: str, status: int, words: str) -> None:
    answer = v1.backend.post(path, data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == status and words in answer.json()["detail"]


def test_missing_keys_nulls_and_unknown_categories_are_served(v1: Stack) -> None:
    for body in ({}, {"x": None, "color": None}, {"x": 2, "color": "ultraviolet"}):
        assert v1.backend.post("/predict/tiny", json=body).status_code == 200


def test_reload_needs_an_admin_token(v1: Stack) -> None:
    expired = mint(SECRET_KEY, role="admin", ttl=timedelta(seconds=1), now=datetime.now(UTC) - timedelta(hours=1))
    forged = mint("an-attacker-secret-key-0123456789abcdef", role="admin", ttl=timedelta(hours=1))
    cases = {
        None: 401,
        "Basic dXNlcjpwYXNz": 401,
        "Bearer not-a-jwt": 401,
        f"Bearer {expired}": 401,
        f"Bearer {forged}": 401,
        f"Bearer {admin_token(role='analyst')}": 403,
    }
    for header, status in cases.items():
        answer = v1.backend.post("/admin/reload_models", headers={"Authorization": header} if header else {})
        assert answer.status_code == status, (status, answer.text)
        if status == 401:
            assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert v1.reload().status_code == 200


def test_a_reload_serves_the_newly_promoted_version(v1: Stack) -> None:
    v1.promote(tiny="v2")
    answer = v1.reload()
    assert answer.status_code == 200
    v2 = v1.versions["tiny"]["v2"]
    assert answer.json()["models"]["tiny"] == {
        **answer.json()["models"]["tiny"],
        "version": v2,
        "artifact_sha256": v1.store.artifact_sha256("tiny", v2),
    }
    served = v1.backend.post("/predict/tiny", json={"x": 3, "color": "red"}).json()
    assert served["version"] == v2 and served["prediction"] == "Low Risk"  # v2 was fitted the other way round


def test_a_model_that_fails_to_load_leaves_the_whole_old_set_serving(v1: Stack) -> None:
    v1.promote(tiny="v2", other="broken")
    answer = v1.reload()
    assert answer.status_code == 409
    body = answer.json()
    assert body["model"] == "other" and "Could not load other" in body["detail"]
    assert v1.loaded() == {"other": v1.versions["other"]["v1"], "tiny": v1.versions["tiny"]["v1"]}  # not tiny v2
    assert v1.backend.get("/models").json()["last_error"]["model"] == "other"
    assert v1.backend.post("/predict/tiny", json={"x": 3}).json()["version"] == v1.versions["tiny"]["v1"]


def test_an_artifact_changed_after_promotion_is_refused(v1: Stack, tmp_path: Path) -> None:
    version = v1.versions["tiny"]["v2"]
    artifact = v1.store.path("tiny", version) / "model.joblib"
    pointer = v1.store.promote("tiny", version, reason="test", actor="tests")
    tampered = v1.store.root / "tiny" / "production.json"
    tampered.write_text(json.dumps({**pointer.to_dict(), "artifact_sha256": "0" * 64}), encoding="utf-8")
    answer = v1.reload()
    assert answer.status_code == 409 and "changed after promotion" in answer.json()["detail"]
    assert artifact.exists() and v1.loaded()["tiny"] == v1.versions["tiny"]["v1"]


def test_predictions_during_reloads_never_fail(v1: Stack) -> None:
    statuses: Counter[int] = Counter()
    versions: set[str] = set()
    stop = threading.Event()

    def client() -> None:
        import requests

        with requests.Session() as session:
            while not stop.is_set():
                r = session.post(v1.backend.url + "/predict/tiny", json={"x": 1, "color": "red"}, timeout=30)
                statuses[r.status_code] += 1
                versions.add(r.json().get("version"))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    reloads, deadline = 0, time.monotonic() + 60
    try:  # at least 6 reloads, and until 40 predictions overlapped them (the machine may be busy)
        while reloads < 6 or (sum(statuses.values()) < 40 and time.monotonic() < deadline):
            v1.promote(tiny="v2" if reloads % 2 == 0 else "v1")
            assert v1.reload().status_code == 200
            reloads += 1
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(statuses) == {200} and sum(statuses.values()) >= 40
    assert versions <= {v1.versions["tiny"]["v1"], v1.versions["tiny"]["v2"]}


def test_the_backend_output_shows_no_secret(stack: Stack) -> None:
    assert_no_secrets([stack.backend.output()], [SECRET_KEY, stack.pg.password, *stack.tokens])
    assert "Models reloaded" in stack.backend.output()  # it did log, just not the secrets


def test_a_database_it_cannot_reach_is_a_503_the_operator_can_find_in_the_log(tmp_path: Path, pg) -> None:
    password = "never-shown-0123456789"
    stack = start_stack(tmp_path, pg, database=f"postgresql://retrain:{password}@127.0.0.1:{free_port()}/retrain")
    try:
        sent = '{"x": "3", "color": "red", "user_id": 1}'
        answer = stack.backend.post("/predict/tiny", data=sent, headers={"Content-Type": "application/json"})
        assert answer.status_code == 503, answer.text
        body = answer.json()
        assert "cannot reach its database" in body["detail"] and "nothing was stored" in body["detail"]
        assert body["request_id"] == answer.headers["x-request-id"] and body["request_id"] in body["detail"]
        time.sleep(0.5)  # the log line is written as the answer is sent
        assert f"request id {body['request_id']}" in stack.backend.output()
        # Alive, but not ready: an orchestrator stops sending it traffic instead of restarting it.
        assert stack.backend.get("/healthz").status_code == 200
        ready = stack.backend.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] == "unreachable", ready.text
        assert ready.json()["reasons"] == ["the database cannot be reached: the backend's log says why"]
        assert_no_secrets([answer.text, ready.text, stack.backend.output()], [password])
    finally:
        stack.backend.stop()


def test_a_role_that_may_not_log_records_is_not_ready(tmp_path: Path, pg, pg_admin) -> None:
    import dataclasses

    password = "reader-0123456789"
    with psycopg2.connect(**pg_admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS records_reader")
        cur.execute(f"CREATE ROLE records_reader LOGIN PASSWORD '{password}'")
        cur.execute("GRANT SELECT ON health_records, users TO records_reader")
    reader = dataclasses.replace(pg, user="records_reader", password=password)
    stack = start_stack(tmp_path, pg, database=reader.full_url())
    try:
        for _ in range(3):  # a probe every few seconds: the log says it once
            ready = stack.backend.get("/readyz")
            assert ready.status_code == 503 and ready.json()["database"] == "refused", ready.text
        assert ready.json()["reasons"] == ["the database refuses to log records: the backend's log says why"]
        time.sleep(0.5)
        assert stack.backend.output().count("may not insert into health_records: GRANT INSERT (user_id,") == 1
        # Its columns, but not the id's sequence: a prediction would still fail, so still not ready.
        with psycopg2.connect(**pg_admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
            cur.execute(f"GRANT INSERT ({', '.join(INSERT_COLUMNS)}) ON health_records TO records_reader")
        assert stack.backend.get("/readyz").status_code == 503
        time.sleep(0.5)
        assert "GRANT USAGE ON SEQUENCE public.health_records_id_seq to it." in stack.backend.output()
        with psycopg2.connect(**pg_admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
            cur.execute("GRANT USAGE ON SEQUENCE health_records_id_seq TO records_reader")
        assert stack.backend.get("/readyz").json() == {"status": "ready", "models": 2, "database": "ok"}
        time.sleep(0.5)
        assert "Ready again" in stack.backend.output()
        assert_no_secrets([ready.text, stack.backend.output()], [password])
    finally:
        stack.backend.stop()
        with psycopg2.connect(**pg_admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
            cur.execute("REVOKE ALL ON health_records, users FROM records_reader")
            cur.execute("REVOKE ALL ON SEQUENCE health_records_id_seq FROM records_reader")
            cur.execute("DROP ROLE records_reader")


def test_a_backend_with_no_model_in_production_is_alive_but_not_ready(tmp_path: Path, pg) -> None:
    from tests.serving_helpers import Backend, database_url

    env = {
        "MODEL_STORE": str(tmp_path / "store"),
        "MODELS_DIR": str(tmp_path / "models"),
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url(pg),
    }
    backend = Backend(env, tmp_path / "backend.log")
    try:
        assert backend.get("/healthz").json() == {"status": "ok", "models": 0}
        ready = backend.get("/readyz")
        assert ready.status_code == 503 and ready.json()["database"] == "ok", ready.text
        assert ready.json()["reasons"] == [
            "no model is loaded: put a version in production (deploy, or `retrain models promote`), then reload"
        ]
    finally:
        backend.stop()
