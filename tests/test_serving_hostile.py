"""The serving backend under hostile requests, for real: uvicorn on a loopback port, raw sockets where a client
library would not send what an attacker sends.

Every answer must be 4xx and say why, never a 5xx, never a record logged: numbers that are not finite or not
plausible, a user id that is not a ``users.id``, documents nested too deep, bodies and headers too long, tokens too
long or with claims in the wrong type. An unexpected error is a 500 with a request id in its body and the traceback
under that id in the log. Public answers do not show the server's paths.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg2
import pytest
import requests

from tests.serving_helpers import SECRET_KEY, Backend, Stack, admin_token, database_url, start_stack

MB = 1 << 20
DEFAULT_MAX_BODY = 65_536
DEFAULT_MAX_HEADER = 16_384


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("hostile"), pg)
    yield stack
    stack.backend.stop()


@pytest.fixture
def v1(stack: Stack, pg_admin) -> Stack:
    stack.promote(tiny="v1", other="v1")
    assert stack.reload().status_code == 200
    with psycopg2.connect(**pg_admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO users (id, allow_data_collection) VALUES (1, true) ON CONFLICT DO NOTHING")
    return stack


def records(pg) -> int:
    with psycopg2.connect(**pg.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM health_records")
        return cur.fetchone()[0]


@dataclass(frozen=True)
class Hostile:
    """One request and the answer it must get: ``status``, and ``words`` in its detail."""

    name: str
    body: str | bytes = '{"x": 1, "color": "red"}'
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 422
    words: str = ""
    path: str = "/predict/tiny"


def _signed(claims: dict) -> str:
    import jwt

    return jwt.encode(claims, SECRET_KEY, algorithm="HS256")


def corpus() -> list[Hostile]:
    now = int(time.time())
    deep = '{"x": 1, "deep": ' + "[" * 1000 + "]" * 1000 + "}"
    return [
        # finding 4: numbers the model must never see, user ids that are no users.id, nesting
        Hostile("x is 1e308", '{"x": 1e308, "color": "red"}', words="Input 'x' of model 'tiny' must be from"),
        Hostile("x is a 401-digit integer", '{"x": ' + "9" * 401 + "}", words="Input 'x'"),
        Hostile("x is 1e999 (infinity)", '{"x": 1e999}', words="Input 'x'"),
        Hostile("x is the string 1e400", '{"x": "1e400"}', words="Input 'x'"),
        Hostile("x is NaN", '{"x": NaN}', words="NaN is not a JSON number"),
        Hostile("user_id is Infinity", '{"x": 1, "user_id": Infinity}', words="Infinity is not a JSON number"),
        Hostile("user_id is true", '{"x": 1, "user_id": true}', words="user_id must be a whole number"),
        Hostile("user_id is 1.9", '{"x": 1, "user_id": 1.9}', words="user_id must be a whole number"),
        Hostile("user_id is 2**70", '{"x": 1, "user_id": ' + str(2**70) + "}", words="user_id must be"),
        Hostile("user_id is 0", '{"x": 1, "user_id": 0}', words="user_id must be"),
        Hostile("user_id is -1", '{"x": 1, "user_id": -1}', words="user_id must be"),
        Hostile("user_id is a list", '{"x": 1, "user_id": [1]}', words="user_id must be"),
        Hostile("X-User-Id is 2**70", headers={"X-User-Id": str(2**70)}, words="user_id must be"),
        Hostile("X-User-Id is 1.9", headers={"X-User-Id": "1.9"}, words="user_id must be"),
        Hostile("X-User-Id is true", headers={"X-User-Id": "true"}, words="user_id must be"),
        Hostile("X-User-Id is 1e3", headers={"X-User-Id": "1e3"}, words="user_id must be"),
        Hostile("X-User-Id is -5", headers={"X-User-Id": "-5"}, words="user_id must be"),
        Hostile("X-User-Id is Infinity", headers={"X-User-Id": "Infinity"}, words="user_id must be"),
        Hostile("X-User-Id is 20 digits", headers={"X-User-Id": "9" * 20}, words="user_id must be"),
        Hostile("JSON nested 1,000 deep", deep, words="levels deep"),
        Hostile("an array nested 60,000 deep", "[" * 60_000, words="levels deep"),
        Hostile("a string that never ends", '{"x": "' + "\\u00" * 5000, words="JSON object"),
        Hostile("an integer of 5,000 digits", '{"y": ' + "1" * 5000 + "}", words="JSON object"),
        Hostile("a control character in a string", '{"x": 1, "note": "a\x00b"}', words="JSON object"),
        Hostile("not UTF-8", b'{"x": 1, "color": "\xff\xfe"}', status=200),
        Hostile("a JSON string, not an object", '"x"', words="Got a JSON string"),
        Hostile(
            "an unknown model with a long name",
            path="/predict/" + "m" * 2000,
            status=404,
            words="'" + "m" * 64 + "'... (2000 characters). Models in production:",
        ),
        # finding 5: sizes
        Hostile("a body just over the limit", '{"x": 1, "pad": "' + "a" * DEFAULT_MAX_BODY + '"}', status=413),
        Hostile("a header just over the limit", headers={"X-Pad": "a" * DEFAULT_MAX_HEADER}, status=431),
        Hostile("a URL over the header limit", path="/predict/tiny?" + "q" * DEFAULT_MAX_HEADER, status=431),
        Hostile("many small headers", headers={f"X-H{i}": "v" * 20 for i in range(800)}, status=431),
        Hostile(
            "a validly signed 10 KB token",
            path="/admin/reload_models",
            headers={
                "Authorization": "Bearer " + _signed({"role": "admin", "iat": now, "exp": now + 60, "p": "a" * 10_000})
            },
            status=401,
            words="longer than 4096",
        ),
        Hostile(
            "a token whose exp is a numeric string",
            path="/admin/reload_models",
            headers={"Authorization": "Bearer " + _signed({"role": "admin", "iat": now, "exp": str(now + 3600)})},
            status=401,
            words="numeric 'exp'",
        ),
        Hostile(
            "a token whose exp is 10**300",
            path="/admin/reload_models",
            headers={"Authorization": "Bearer " + _signed({"role": "admin", "iat": now, "exp": 10**300})},
            status=401,
            words="longest lifetime",
        ),
    ]


@pytest.mark.parametrize("case", corpus(), ids=lambda case: case.name)
def test_a_hostile_request_gets_the_4xx_that_names_the_problem(v1: Stack, pg, case: Hostile) -> None:
    before = records(pg)
    answer = requests.post(v1.backend.url + case.path, data=case.body, headers=case.headers, timeout=30)
    assert answer.status_code == case.status, answer.text[:500]
    assert answer.headers.get("X-Request-Id") or case.status == 431  # 431 is answered before any app runs
    if case.words:
        assert case.words in answer.json()["detail"], answer.json()["detail"]
    assert records(pg) == before + (1 if case.status == 200 else 0)


def test_no_hostile_request_gets_a_5xx(v1: Stack) -> None:
    """The whole corpus again, back to back on one connection where the server keeps it: never a 5xx."""
    statuses = {}
    with requests.Session() as session:
        for case in corpus():
            try:
                answer = session.post(v1.backend.url + case.path, data=case.body, headers=case.headers, timeout=30)
            except requests.ConnectionError:  # the server may close a connection it refused: a new one is opened
                answer = requests.post(v1.backend.url + case.path, data=case.body, headers=case.headers, timeout=30)
            statuses[case.name] = answer.status_code
    assert all(status < 500 for status in statuses.values()), statuses
    assert v1.backend.post("/predict/tiny", json={"x": 3, "color": "red"}).status_code == 200  # still serving


def _send_head_slowly(url: str, total: int) -> tuple[int, float, bytes]:
    """Send a request whose Authorization header is ``total`` bytes, 1 MiB at a time; how far it got, how long it
    took, and whatever the server answered."""
    host, port = url.removeprefix("http://").split(":")
    sent, started, answer = 0, time.monotonic(), b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /admin/reload_models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
        chunk = b"a" * MB
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        elapsed = time.monotonic() - started
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            answer = sock.recv(4096)
    return sent, elapsed, answer


def test_a_49_mb_authorization_header_is_refused_without_being_read(v1: Stack) -> None:
    sent, elapsed, _ = _send_head_slowly(v1.backend.url, 49 * MB)
    # The server stops reading past the limit: the rest only fills the sockets' buffers, then the connection ends.
    assert sent < 49 * MB and elapsed < 10, (sent, elapsed)
    assert "431" in v1.backend.output()  # logged as refused: "its head passed 16384 bytes (431)"


def test_a_head_over_the_limit_is_answered_431_before_the_client_finishes(v1: Stack) -> None:
    host, port = v1.backend.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /predict/tiny HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (4 * DEFAULT_MAX_HEADER))
        answer = sock.recv(4096)  # no end of headers was sent: the server answers on its own
    assert answer.startswith(b"HTTP/1.1 431 ") and b"SERVING_MAX_HEADER_BYTES" in answer


def test_a_50_mb_body_is_refused_and_nothing_is_logged(v1: Stack, pg) -> None:
    before = records(pg)
    started = time.monotonic()
    body = b'{"x": 1, "pad": "' + b"a" * (50 * MB) + b'"}'
    try:
        answer = requests.post(v1.backend.url + "/predict/tiny", data=body, timeout=30)
    except requests.ConnectionError:
        answer = None  # the server closed after answering and reading at most a little of the rest
    assert answer is None or answer.status_code == 413
    chunked = requests.post(v1.backend.url + "/predict/tiny", data=iter([b'{"x": 1, "pad": "', b"a" * MB]), timeout=30)
    assert chunked.status_code == 413 and "SERVING_MAX_BODY_BYTES" in chunked.json()["detail"]
    assert records(pg) == before and time.monotonic() - started < 20
    assert v1.backend.post("/predict/tiny", json={"x": 3, "color": "red"}).status_code == 200


def test_an_unexpected_error_is_a_500_with_a_request_id_and_the_traceback_in_the_log(v1: Stack) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from jobs.ml.recipes import tabular_pipeline

    # A model that loads but cannot predict: fitted on a column the recipe does not give it.
    frame = pd.DataFrame({"x": [1.0, -1.0] * 10, "gone": [0.0, 1.0] * 10, "color": ["red", "blue"] * 10})
    estimator = tabular_pipeline(("x", "gone"), ("color",), LogisticRegression()).fit(frame, [1, 0] * 10)
    version, _ = v1.store.write("other", "2026-11-22", estimator, {"accuracy": 1.0}, {"features": ["x", "color"]})
    try:
        v1.store.promote("other", version, reason="test", actor="tests")
        assert v1.reload().status_code == 200
        answer = v1.backend.post("/predict/other", json={"x": 1, "color": "red"})
        assert answer.status_code == 500
        body = answer.json()
        request_id = body["request_id"]
        assert answer.headers["X-Request-Id"] == request_id and request_id in body["detail"]
        assert "gone" not in answer.text and "Traceback" not in answer.text  # the details stay in the log
        log = v1.backend.output()
        assert f"request id {request_id}" in log and "Traceback (most recent call last)" in log
    finally:
        v1.promote(other="v1")
        assert v1.reload().status_code == 200


def test_public_answers_do_not_show_the_servers_paths(v1: Stack) -> None:
    v1.promote(other="broken")
    answer = v1.reload()
    assert answer.status_code == 409
    listing = v1.backend.get("/models")
    v1.promote(other="v1")
    assert v1.reload().status_code == 200
    for text in (answer.text, listing.text):
        assert str(v1.store.root) not in text and str(v1.models_dir) not in text and "/tmp" not in text, text
    assert "MODEL_STORE/other/" in json.dumps(answer.json()["detail"])  # what an operator needs to find it
    assert str(v1.store.root) in v1.backend.output()  # the log keeps the full path


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory, pg) -> Iterator[Backend]:
    """A backend with every limit set low, the client timeout at 1 s."""
    stack_root = tmp_path_factory.mktemp("limits")
    base = start_stack(stack_root, pg)
    base.backend.stop()
    env = {
        "MODEL_STORE": str(base.store.root),
        "MODELS_DIR": str(base.models_dir),
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url(pg),
        "SERVING_MAX_BODY_BYTES": "2048",
        "SERVING_MAX_HEADER_BYTES": "4096",
        "SERVING_MAX_JSON_DEPTH": "3",
        "SERVING_CLIENT_TIMEOUT_SECONDS": "1",
    }
    backend = Backend(env, stack_root / "limited.log")
    yield backend
    backend.stop()


def test_the_limits_are_settings(limited: Backend) -> None:
    post = limited.post
    assert post("/predict/tiny", data='{"x": 1, "p": "' + "a" * 3000 + '"}').status_code == 413
    assert post("/predict/tiny", data="{}", headers={"X-Pad": "a" * 5000}).status_code == 431
    assert post("/predict/tiny", data='{"x": 1, "d": [[[1]]]}').status_code == 422
    assert post("/predict/tiny", data='{"x": 1, "d": [[1]]}').status_code == 200
    assert limited.reload(admin_token()).status_code == 200


def test_a_head_sent_slowly_or_not_at_all_is_cut_off(limited: Backend) -> None:
    """slowloris: a head a byte at a time, or a connection that sends nothing, gets 408 at the timeout."""
    answer, elapsed = _trickle_head(limited.url, every=0.2)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"SERVING_CLIENT_TIMEOUT_SECONDS" in answer, answer
    assert 0.9 < elapsed < 5, elapsed
    answer, elapsed = _trickle_head(limited.url, every=None)
    assert answer.startswith(b"HTTP/1.1 408 ") and 0.9 < elapsed < 5, (answer, elapsed)
    # Whole requests on a connection kept alive longer than the timeout are served: the clock runs per head.
    with requests.Session() as session:
        for _ in range(2):
            answer = session.post(limited.url + "/predict/tiny", json={"x": 1, "color": "red"}, timeout=10)
            assert answer.status_code == 200, answer.text
            time.sleep(1.5)
    assert "did not arrive within 1 s (408)" in limited.output()


def test_a_body_sent_slowly_or_not_at_all_is_cut_off(limited: Backend, pg) -> None:
    """A body that stops, or comes a byte at a time: 408 at the deadline, and nothing is logged. Answered without
    reading its body (a 404), the connection is closed all the same."""
    host, port = limited.url.removeprefix("http://").split(":")
    before = records(pg)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /predict/tiny HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n" + b'{"x": 1, ')
        started = time.monotonic()
        answer = sock.recv(4096)
        elapsed = time.monotonic() - started
        answer += _rest(sock)  # the answer's body may come in a read of its own
    assert answer.startswith(b"HTTP/1.1 408 ") and b"body did not arrive whole within 1 s" in answer, answer
    assert 0.9 < elapsed < 5 and records(pg) == before, elapsed
    answer, elapsed = _trickle_body(limited.url, "/predict/tiny", every=0.3)
    assert answer.startswith(b"HTTP/1.1 408 ") and 0.9 < elapsed < 5 and records(pg) == before, (answer, elapsed)
    assert "its body did not arrive whole within 1 s (408)" in limited.output()
    started = time.monotonic()
    answer, _ = _trickle_body(limited.url, "/no-such-route", every=0.3)
    assert answer.startswith(b"HTTP/1.1 404 ") and b"connection: close" in answer.lower(), answer
    assert time.monotonic() - started < 5  # closed after the lingering close's 2 s, not held while bytes come


def test_a_pipelined_head_waits_untimed_for_the_answer_before_it(limited: Backend, pg_admin) -> None:
    """A prediction that takes longer than the timeout (its insert waits for a lock), with the next request's
    head begun behind it: the prediction is answered, then the unfinished head gets its 408."""
    host, port = limited.url.removeprefix("http://").split(":")
    body = b'{"x": 1, "color": "red"}'
    first = b"POST /predict/tiny HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with psycopg2.connect(**pg_admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("LOCK TABLE health_records IN ACCESS EXCLUSIVE MODE")  # held until this transaction ends
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(first + b"POST /predict/tiny HTTP/1.1\r\nHost: x\r\n")
        time.sleep(2.5)  # longer than the timeout: the prediction waits, and so does the head behind it
    with sock:
        answers = sock.recv(4096) + _rest(sock)
    assert answers.startswith(b"HTTP/1.1 200 "), answers
    assert b"HTTP/1.1 408 " in answers and answers.index(b"HTTP/1.1 408 ") > 0, answers


def _trickle_head(url: str, every: float | None) -> tuple[bytes, float]:
    """Open a connection and send a request's head a byte every ``every`` seconds (or nothing): the server's whole
    answer, and how long it took to begin."""
    host, port = url.removeprefix("http://").split(":")
    head = b"POST /predict/tiny HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100 if every else b""
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=every or 10) as sock:
        for byte in head:
            sock.sendall(bytes([byte]))
            with contextlib.suppress(TimeoutError):
                first = sock.recv(4096)  # the server answered before the head's end
                break
        else:
            sock.settimeout(10)
            first = sock.recv(4096)
        elapsed = time.monotonic() - started
        sock.settimeout(10)
        return first + _rest(sock), elapsed


def _trickle_body(url: str, path: str, every: float) -> tuple[bytes, float]:
    """Send a request's head whole, then its body a byte every ``every`` seconds: the server's whole answer, and how
    long after the head it began."""
    host, port = url.removeprefix("http://").split(":")
    body = b'{"x": 1, "color": "red", "pad": "' + b"a" * 40 + b'"}'
    with socket.create_connection((host, int(port)), timeout=every) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), len(body)))
        started = time.monotonic()
        for byte in body:
            sock.sendall(bytes([byte]))
            with contextlib.suppress(TimeoutError):
                first = sock.recv(4096)
                break
        else:
            first = b""
        elapsed = time.monotonic() - started
        sock.settimeout(10)
        return first + _rest(sock), elapsed


def _rest(sock: socket.socket) -> bytes:
    """What the server still sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data
