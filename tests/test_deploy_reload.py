"""The reload call: retried with backoff on connection errors and 5xx, never on 4xx; the token never leaks."""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from jobs.deploy import reload_backend
from jobs.errors import AdminTokenError, BackendError, TokenRefusedError
from tests.conftest import free_port
from tests.serving_helpers import ScriptedServer, assert_no_secrets

TOKEN = "header.payload.signature-that-must-not-leak"
LOADED = {"models": {"diabetes": {"version": "v2", "artifact_sha256": "ab" * 32}}}


def test_503_twice_then_200_is_retried_and_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    with ScriptedServer(script=[(503, {"detail": "busy"}), (503, {"detail": "busy"})], default=(200, LOADED)) as srv:
        answer, attempts = reload_backend(srv.url, TOKEN, timeout=5, attempts=4, backoff_seconds=0.01)
    assert answer == LOADED and attempts == 3
    assert [r.path for r in srv.requests] == ["/admin/reload_models"] * 3
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in srv.requests)
    assert caplog.text.count("retrying") == 2
    assert_no_secrets([caplog.text], [TOKEN])


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_a_4xx_answer_is_final(status: int) -> None:
    with ScriptedServer(default=(status, {"detail": f"no ({TOKEN})"})) as srv, pytest.raises(BackendError) as caught:
        reload_backend(srv.url, TOKEN, timeout=5, attempts=4, backoff_seconds=0.01)
    assert len(srv.requests) == 1 and f"HTTP {status}" in str(caught.value)
    assert_no_secrets([str(caught.value)], [TOKEN])  # a backend echoing the token is masked


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_an_admin_token_error_that_the_dag_does_not_retry(status: int) -> None:
    with ScriptedServer(default=(status, {"detail": "no"})) as srv, pytest.raises(TokenRefusedError) as caught:
        reload_backend(srv.url, TOKEN, timeout=5, attempts=4, backoff_seconds=0.01)
    assert isinstance(caught.value, AdminTokenError) and caught.value.attempts == 1
    assert "not retried" in str(caught.value)


def test_the_error_of_a_failed_reload_counts_the_requests_sent() -> None:
    with ScriptedServer(default=(503, {"detail": "busy"})) as srv, pytest.raises(BackendError) as caught:
        reload_backend(srv.url, TOKEN, timeout=5, attempts=3, backoff_seconds=0.01)
    assert caught.value.attempts == 3 == len(srv.requests)


def test_a_backend_that_stays_down_fails_after_every_attempt(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.DEBUG), pytest.raises(BackendError, match="did not reload after 3 attempts"):
        reload_backend(url, TOKEN, timeout=2, attempts=3, backoff_seconds=0.01)
    assert caplog.text.count("could not connect") == 2
    assert_no_secrets([caplog.text], [TOKEN])


def test_5xx_until_the_last_attempt_reports_the_last_answer() -> None:
    with ScriptedServer(default=(500, {"detail": "boom"})) as srv, pytest.raises(BackendError, match="HTTP 500"):
        reload_backend(srv.url, TOKEN, timeout=5, attempts=2, backoff_seconds=0.01)
    assert len(srv.requests) == 2


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_an_https_backend_is_called_with_its_certificate_verified(tmp_path: Path, monkeypatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with ScriptedServer(default=(200, LOADED), ssl_context=context) as srv:
        assert srv.url.startswith("https://")
        with pytest.raises(BackendError, match="could not be verified.*REQUESTS_CA_BUNDLE"):  # not retried
            reload_backend(srv.url, TOKEN, timeout=5, attempts=3)
        assert srv.requests == []
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))  # how a private CA is trusted (requests' own variable)
        answer, attempts = reload_backend(srv.url, TOKEN, timeout=5, attempts=1)
    assert answer == LOADED and srv.requests[-1].headers["Authorization"] == f"Bearer {TOKEN}"
