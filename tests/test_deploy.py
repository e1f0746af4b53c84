"""deploy_models against the real backend (uvicorn on loopback) and against scripted misbehaving backends.

Each test starts from both tiny models at v1, in the store and in the backend, then deploys per a decision.json.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobs.deploy import check_admin_token, deploy
from jobs.errors import AdminTokenError, BackendError, DeployError, ReloadMismatchError, TokenRefusedError
from jobs.ml.tokens import mint
from jobs.notify import notify
from jobs.run_context import RunContext
from jobs.settings import Settings
from tests.conftest import REPO_ROOT, free_port
from tests.serving_helpers import (
    SECRET_KEY,
    ScriptedServer,
    Stack,
    admin_token,
    assert_no_secrets,
    database_url,
    start_stack,
)

DS = "2026-11-22"
CTX = RunContext.for_ds(DS)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, pg) -> Stack:
    stack = start_stack(tmp_path_factory.mktemp("deploy"), pg)
    yield stack
    stack.backend.stop()


@pytest.fixture
def at_v1(stack: Stack) -> Stack:
    stack.promote(tiny="v1", other="v1")
    assert stack.reload().status_code == 200
    return stack


def settings_for(stack: Stack, tmp_path: Path, backend_url: str, token: str | None = None, **env: str) -> Settings:
    token = token or admin_token()
    stack.tokens.append(token)
    return Settings.from_env(
        env={
            "DATA_DIR": str(tmp_path / "data"),
            "MODEL_STORE": str(stack.store.root),
            "MODELS_DIR": str(stack.models_dir),
            "BACKEND_URL": backend_url,
            "ADMIN_JWT_TOKEN": token,
            "DATABASE_URL": database_url(stack.pg),
            "RELOAD_ATTEMPTS": "3",
            "RELOAD_TIMEOUT_SECONDS": "10",
            **env,
        },
        root=REPO_ROOT,
    )


def approve(settings: Settings, stack: Stack, **versions: str) -> dict[str, str]:
    """A decision.json approving ``model=version-key``; the other model is rejected."""
    approved = {model: stack.versions[model][key] for model, key in versions.items()}
    models = {
        model: {"verdict": "deploy", "reasons": ["better"], "challenger_version": version}
        for model, version in approved.items()
    }
    models.update({m: {"verdict": "reject", "reasons": ["worse"]} for m in stack.versions if m not in approved})
    path = settings.run_folder(DS).decision
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"ds": DS, "models": models}), encoding="utf-8")
    return approved


def pointers(stack: Stack) -> dict[str, str]:
    return {model: stack.store.production(model).version for model in stack.versions}


def v1_everywhere(stack: Stack) -> dict[str, str]:
    return {model: stack.versions[model]["v1"] for model in stack.versions}


def answer_from_store(stack: Stack, sha_override: str | None = None):
    """A scripted backend's 200 answer: what the store's pointers say (optionally with a wrong hash)."""

    def answer(_request) -> tuple[int, dict]:
        models = {}
        for model in stack.versions:
            pointer = stack.store.production(model)
            models[model] = {"version": pointer.version, "artifact_sha256": sha_override or pointer.artifact_sha256}
        return 200, {"models": models}

    return answer


def test_a_full_deploy_promotes_reloads_and_verifies(at_v1: Stack, tmp_path: Path) -> None:
    settings = settings_for(at_v1, tmp_path, at_v1.backend.url)
    approved = approve(settings, at_v1, tiny="v2")
    result = deploy(settings, CTX)
    v2 = approved["tiny"]
    assert result.status == "deployed" and result.deployed == {"tiny": v2} and result.attempts == 1
    assert result.previous == {"tiny": at_v1.versions["tiny"]["v1"]}
    assert result.backend["tiny"] == {"version": v2, "artifact_sha256": at_v1.store.artifact_sha256("tiny", v2)}
    assert at_v1.loaded() == {"tiny": v2, "other": at_v1.versions["other"]["v1"]}
    assert at_v1.backend.post("/predict/tiny", json={"x": 3}).json()["version"] == v2
    history = at_v1.store.history("tiny")[-1]
    assert history["action"] == "promote" and history["version"] == v2 and history["actor"] == "deploy_models"
    written = json.loads(settings.run_folder(DS).deploy_summary.read_text())
    assert written["status"] == "deployed" and written["deployed"] == {"tiny": v2}


def test_nothing_approved_calls_nothing(stack: Stack, tmp_path: Path) -> None:
    with ScriptedServer() as backend:
        settings = settings_for(stack, tmp_path, backend.url)
        approve(settings, stack)
        result = deploy(settings, CTX)
    assert result.status == "nothing_approved" and result.deployed == {} and backend.requests == []
    assert json.loads(settings.run_folder(DS).deploy_summary.read_text())["status"] == "nothing_approved"


def test_an_expired_token_is_caught_by_the_preflight_and_deploy_touches_nothing(at_v1: Stack, tmp_path: Path) -> None:
    expired = mint(SECRET_KEY, role="admin", ttl=timedelta(minutes=5), now=datetime.now(UTC) - timedelta(hours=1))
    with ScriptedServer() as backend:
        settings = settings_for(at_v1, tmp_path, backend.url, token=expired)
        with pytest.raises(AdminTokenError, match="expired"):  # what the DAG runs before extraction
            check_admin_token(settings, valid_for=timedelta(hours=2))
        approve(settings, at_v1, tiny="v2")
        with pytest.raises(AdminTokenError, match="expired"):
            deploy(settings, CTX)
    assert backend.requests == [] and pointers(at_v1) == v1_everywhere(at_v1)


def test_a_backend_answering_503_twice_then_200_is_retried(at_v1: Stack, tmp_path: Path) -> None:
    busy = (503, {"detail": "reloading"})
    with ScriptedServer(script=[busy, busy], default=answer_from_store(at_v1)) as backend:
        settings = settings_for(at_v1, tmp_path, backend.url)
        approved = approve(settings, at_v1, tiny="v2")
        result = deploy(settings, CTX, backoff_seconds=0.01)
    assert result.status == "deployed" and result.attempts == 3 and len(backend.requests) == 3
    assert pointers(at_v1)["tiny"] == approved["tiny"]


def test_a_backend_that_stays_down_rolls_back_and_the_old_models_keep_serving(at_v1: Stack, tmp_path: Path) -> None:
    settings = settings_for(at_v1, tmp_path, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    approve(settings, at_v1, tiny="v2")
    with pytest.raises(BackendError, match="did not reload after 3 attempts") as caught:
        deploy(settings, CTX, backoff_seconds=0.01)
    assert "restored" in str(caught.value) and "What the backend serves now is unknown" in str(caught.value)
    assert pointers(at_v1) == v1_everywhere(at_v1)
    assert at_v1.store.history("tiny")[-1]["action"] == "restore"
    assert at_v1.loaded() == v1_everywhere(at_v1)
    assert at_v1.backend.post("/predict/tiny", json={"x": 3}).json()["version"] == at_v1.versions["tiny"]["v1"]
    written = json.loads(settings.run_folder(DS).deploy_summary.read_text())
    assert written["status"] == "rolled_back" and "did not reload" in written["error"] and written["deployed"] == {}
    assert written["attempts"] == 3  # the requests sent, though none succeeded
    assert at_v1.reload().json()["models"]["tiny"]["version"] == at_v1.versions["tiny"]["v1"]  # restart-safe


def test_a_backend_reporting_another_hash_is_rolled_back(at_v1: Stack, tmp_path: Path) -> None:
    with ScriptedServer(default=answer_from_store(at_v1, sha_override="0" * 64)) as backend:
        settings = settings_for(at_v1, tmp_path, backend.url)
        approve(settings, at_v1, tiny="v2")
        with pytest.raises(ReloadMismatchError, match="artifact sha256 000000000000... differs"):
            deploy(settings, CTX, backoff_seconds=0.01)
    assert pointers(at_v1) == v1_everywhere(at_v1)
    assert len(backend.requests) == 2  # the reload, then one to point the backend back at the restored set


def test_an_artifact_that_fails_to_load_keeps_the_old_set_and_rolls_back(at_v1: Stack, tmp_path: Path) -> None:
    settings = settings_for(at_v1, tmp_path, at_v1.backend.url)
    approve(settings, at_v1, tiny="v2", other="broken")
    with pytest.raises(BackendError, match="HTTP 409") as caught:
        deploy(settings, CTX, backoff_seconds=0.01)
    assert "Could not load other" in str(caught.value)
    assert pointers(at_v1) == v1_everywhere(at_v1) and at_v1.loaded() == v1_everywhere(at_v1)


def test_a_token_the_backend_refuses_fails_the_deploy_without_retries(at_v1: Stack, tmp_path: Path) -> None:
    forged = mint("not-the-backends-secret-key-0123456789", role="admin", ttl=timedelta(hours=1))
    settings = settings_for(at_v1, tmp_path, at_v1.backend.url, token=forged)
    approve(settings, at_v1, tiny="v2")
    with pytest.raises(TokenRefusedError, match="refused ADMIN_JWT_TOKEN \\(HTTP 401") as caught:
        deploy(settings, CTX)
    assert pointers(at_v1) == v1_everywhere(at_v1)
    assert json.loads(settings.run_folder(DS).deploy_summary.read_text())["attempts"] == 1
    # The same token is not sent again to point the backend back: it is asked what it serves, and the refusal is
    # told once.
    message = str(caught.value)
    assert message.count("HTTP 401") == 1 and "/models says the backend serves the restored set" in message


def test_logs_summaries_and_report_show_no_token_secret_or_password(
    at_v1: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG):
        settings = settings_for(at_v1, tmp_path, at_v1.backend.url)
        approve(settings, at_v1, tiny="v2")
        deploy(settings, CTX)
        failing = settings_for(at_v1, tmp_path, f"http://127.0.0.1:{free_port()}")
        approve(failing, at_v1, tiny="v1")
        with pytest.raises(DeployError) as caught:
            deploy(failing, CTX, backoff_seconds=0.01)
        notify(failing, CTX, failures={"deploy_models": str(caught.value)})
    folder = settings.run_folder(DS)
    out, err = capfd.readouterr()
    texts = [caplog.text, out, err, str(caught.value), at_v1.backend.output()]
    texts += [p.read_text() for p in (folder.deploy_summary, folder.report_md, folder.report_json)]
    assert "deploy_models" in folder.report_md.read_text()
    assert_no_secrets(texts, [SECRET_KEY, at_v1.pg.password, *at_v1.tokens])


def test_retrain_deploy_and_notify_commands(
    at_v1: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from jobs.cli import main

    down = f"http://127.0.0.1:{free_port()}"
    settings = settings_for(at_v1, tmp_path, down)
    for name, value in {
        "DATA_DIR": settings.data_dir,
        "MODEL_STORE": settings.model_store,
        "BACKEND_URL": down,
        "ADMIN_JWT_TOKEN": settings.admin_jwt_token,
        "RELOAD_ATTEMPTS": "1",
    }.items():
        monkeypatch.setenv(name, str(value))
    approve(settings, at_v1)
    assert main(["deploy", "--ds", DS]) == 0
    assert "Nothing approved" in capsys.readouterr().out
    approve(settings, at_v1, tiny="v2")
    assert main(["deploy", "--ds", DS]) == 1  # the backend is down: rolled back, the command fails
    assert pointers(at_v1) == v1_everywhere(at_v1)
    assert main(["notify", "--ds", DS, "--failure", "deploy_models=backend down", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "failed" and Path(result["report_md"]).exists()
    assert "**deploy_models**: backend down" in Path(result["report_md"]).read_text()
    assert main(["notify", "--ds", DS, "--failure", "no-equals-sign"]) == 2


# -- a reload that worked but whose answer was lost ----------------------------------------------------------------


class LossyProxy:
    """A proxy in front of the backend that loses reload answers: the n-th POST is handled per ``script[n]``.

    ``"502"``: forwarded, then answered 502 (a proxy's error after the backend reloaded); ``"timeout"``: forwarded,
    answered only after ``delay`` seconds; ``"dropped"``: forwarded, connection closed without an answer;
    ``"blocked"``: answered 502 without forwarding; past the script, and for GET: forwarded as it is.
    """

    def __init__(self, target: str, script: list[str], delay: float = 0.0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import requests

        proxy = self
        self.script, self.posts = list(script), 0

        class Handler(BaseHTTPRequestHandler):
            def _forward(self, method: str) -> requests.Response:
                headers = {k: v for k, v in self.headers.items() if k.lower() == "authorization"}
                return requests.request(method, target + self.path, headers=headers, timeout=60)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                response = self._forward("GET")
                self._answer(response.status_code, response.content)

            def do_POST(self) -> None:  # noqa: N802
                n, proxy.posts = proxy.posts, proxy.posts + 1
                how = proxy.script[n] if n < len(proxy.script) else "pass"
                if how == "blocked":
                    return self._answer(502, b'{"detail": "bad gateway"}')
                response = self._forward("POST")
                if how == "502":
                    self._answer(502, b'{"detail": "bad gateway"}')
                elif how == "timeout":
                    time.sleep(delay)
                    self._answer(response.status_code, response.content)
                elif how == "dropped":
                    self.close_connection = True
                else:
                    self._answer(response.status_code, response.content)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()

    def __enter__(self) -> LossyProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.mark.parametrize("lost", ["502", "timeout", "dropped"])
def test_a_reload_whose_answer_is_lost_is_rolled_back_on_the_backend_too(
    at_v1: Stack, tmp_path: Path, lost: str
) -> None:
    """The backend reloads v2 every time, but deploy never hears so: the pointers go back to v1, and so must the
    backend (a 4th reload, answered), which the error and deploy.json report with the versions and hashes."""
    v1 = v1_everywhere(at_v1)
    with LossyProxy(at_v1.backend.url, [lost] * 3, delay=3.0) as proxy:
        settings = settings_for(at_v1, tmp_path, proxy.url, RELOAD_TIMEOUT_SECONDS="2")
        approve(settings, at_v1, tiny="v2")
        with pytest.raises(BackendError, match="did not reload after 3 attempts") as caught:
            deploy(settings, CTX, backoff_seconds=0.01)
    assert pointers(at_v1) == v1
    assert at_v1.loaded() == v1  # asked directly, not through the proxy
    assert proxy.posts == 4  # the three lost answers, then the reload of the restored set
    sha = at_v1.store.artifact_sha256("tiny", v1["tiny"])
    assert f"serves the restored set: tiny {v1['tiny']} (sha256 {sha[:12]}...)" in str(caught.value)
    written = json.loads(settings.run_folder(DS).deploy_summary.read_text())
    assert written["status"] == "rolled_back" and written["backend"]["tiny"] == {
        "version": v1["tiny"],
        "artifact_sha256": sha,
    }


def test_a_backend_that_cannot_be_put_back_is_named_with_what_it_serves_and_how_to_fix_it(
    at_v1: Stack, tmp_path: Path
) -> None:
    v1, v2 = v1_everywhere(at_v1), at_v1.versions["tiny"]["v2"]
    with LossyProxy(at_v1.backend.url, ["502", "blocked"]) as proxy:
        settings = settings_for(at_v1, tmp_path, proxy.url, RELOAD_ATTEMPTS="1")
        approve(settings, at_v1, tiny="v2")
        with pytest.raises(BackendError) as caught:
            deploy(settings, CTX, backoff_seconds=0.01)
    message = str(caught.value)
    assert pointers(at_v1) == v1 and at_v1.loaded()["tiny"] == v2  # the backend really is out of step
    assert f"says the backend serves tiny {v2} (sha256 " in message
    assert f"tiny: serves '{v2}', the store names {v1['tiny']}" in message
    assert "It could not be made to reload them" in message and "/admin/reload_models" in message
    assert "$ADMIN_JWT_TOKEN" in message and at_v1.tokens[-1] not in message
    assert at_v1.reload().status_code == 200 and at_v1.loaded() == v1  # the fix the message gives
