"""Real HTTP servers on 127.0.0.1 for the deploy, serving and notify tests.

- :class:`ScriptedServer`: a tiny ``http.server`` in a thread that answers from a script (e.g. 503, 503, 200) and
  records every request; it stands in for a misbehaving backend or a webhook receiver.
- :class:`Backend`: the real serving backend (``python -m serving``) in a subprocess on a free port, its output
  captured to a file so that tests can check it for secrets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from tests.conftest import REPO_ROOT, free_port


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedServer:
    """Answers the n-th request with ``script[n]`` (status, JSON body), then with ``default``; records requests."""

    script: list[tuple[int, Any]] = field(default_factory=list)
    default: tuple[int, Any] | Callable[[Recorded], tuple[int, Any]] = (200, {})
    requests: list[Recorded] = field(default_factory=list)
    ssl_context: Any = None

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                recorded = Recorded("POST", self.path, dict(self.headers.items()), self.rfile.read(length))
                server.requests.append(recorded)
                n = len(server.requests) - 1
                if n < len(server.script):
                    status, body = server.script[n]
                else:
                    status, body = server.default(recorded) if callable(server.default) else server.default
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.ssl_context is not None:
            self._httpd.socket = self.ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        scheme = "https" if self.ssl_context is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend:
    """``python -m serving`` on a free port with ``env``; :meth:`stop` ends it (and only it).

    ``python`` is this interpreter by default; another one (a virtualenv with only the serving extra) is run from
    ``cwd``, which then must not be the repository, or ``-m`` would import the repository's packages.
    """

    def __init__(
        self, env: dict[str, str], log_path: Path, python: str | Path = sys.executable, cwd: Path = REPO_ROOT
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ADMIN_JWT_TOKEN", "SECRET_KEY")}
        full_env.update(env, PYTHONUNBUFFERED="1")
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [str(python), "-m", "serving", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=cwd,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 180.0) -> None:  # generous: the machine may be busy with Spark
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"The backend exited with {self.process.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"The backend did not answer within {timeout}s:\n{self.output()}")

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=10)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=30, **kwargs)

    def reload(self, token: str) -> requests.Response:
        return self.post("/admin/reload_models", headers={"Authorization": f"Bearer {token}"})

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def assert_no_secrets(texts: Iterable[str], secrets: Iterable[str]) -> None:
    """No secret appears in any text (a failure names the secret's position, never the secret itself)."""
    secrets = [s for s in secrets if s]
    for i, text in enumerate(texts):
        for j, secret in enumerate(secrets):
            if secret in text:  # not an assert: pytest would print both strings
                raise AssertionError(f"secret #{j} appears in text #{i}")


# -- a real model store with tiny models -------------------------------------------------------------------------

SECRET_KEY = "serving-tests-secret-key-0123456789abcdef"
TINY_RECIPE = """
from sklearn.linear_model import LogisticRegression

from jobs.ml.recipes import Recipe, tabular_pipeline

RECIPE = Recipe(
    name="{name}",
    feature_table="{name}_features",
    numeric_features=("x",),
    categorical_features=("color",),
    build_estimator=lambda: tabular_pipeline(("x",), ("color",), LogisticRegression()),
    slice_column=None,
)
"""


class BrokenOnLoad:
    """Pickles fine, fails to unpickle (``int('not a model')``): an artifact whose hash matches but cannot load."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (int, ("not a model",))


def write_recipes(models_dir: Path, names: Iterable[str] = ("tiny", "other")) -> Path:
    models_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        (models_dir / f"{name}.py").write_text(TINY_RECIPE.format(name=name), encoding="utf-8")
    return models_dir


def fit_version(store: Any, models_dir: Path, model: str, *, high_when_positive: bool, ds: str = "2026-11-22") -> str:
    """Fit the tiny recipe so that x > 0 predicts High Risk (or, flipped, Low Risk); write it as a new version."""
    from jobs.ml.recipes import features_frame, load_recipes

    recipe = load_recipes(models_dir)[model]
    rows = [{"x": float(x), "color": c} for x in range(-20, 21) if x for c in ("red", "blue")]
    labels = [int((r["x"] > 0) == high_when_positive) for r in rows]
    estimator = recipe.build_estimator().fit(features_frame(recipe, rows), labels)
    version, _ = store.write(model, ds, estimator, {"accuracy": 1.0, "rows": len(rows)}, {"features": ["x", "color"]})
    return version


def write_broken_version(store: Any, model: str, ds: str = "2026-11-22") -> str:
    version, _ = store.write(model, ds, BrokenOnLoad(), {"accuracy": 1.0}, {"features": ["x", "color"]})
    return version


def database_url(pg: Any) -> str:
    """The test cluster's ``DATABASE_URL``, with its password (which the tests then look for in every output)."""
    return pg.full_url()


def admin_token(ttl_seconds: int = 3600, role: str = "admin") -> str:
    from datetime import timedelta

    from jobs.ml.tokens import mint

    return mint(SECRET_KEY, role=role, ttl=timedelta(seconds=ttl_seconds), subject="tests")


@dataclass
class Stack:
    """A model store with two tiny models (``tiny``: v1, v2; ``other``: v1, broken) and a backend serving it."""

    store: Any
    models_dir: Path
    versions: dict[str, dict[str, str]]
    backend: Backend
    pg: Any
    tokens: list[str] = field(default_factory=list)

    def promote(self, **versions: str) -> None:
        for model, key in versions.items():
            self.store.promote(model, self.versions[model][key], reason="test", actor="tests")

    def reload(self, token: str | None = None) -> requests.Response:
        token = token or admin_token()
        self.tokens.append(token)
        return self.backend.reload(token)

    def loaded(self) -> dict[str, str]:
        return {name: m["version"] for name, m in self.backend.get("/models").json()["models"].items()}


def start_stack(root: Path, pg: Any, database: str | None = None) -> Stack:
    """Fit the versions, promote v1 of both models, start the backend on them (stop it with ``.backend.stop()``);
    it logs into ``pg``, or into ``database`` (a URL) when given."""
    from jobs.ml.store import ModelStore

    models_dir = write_recipes(root / "models")
    store = ModelStore(root / "store")
    versions = {
        "tiny": {
            "v1": fit_version(store, models_dir, "tiny", high_when_positive=True),
            "v2": fit_version(store, models_dir, "tiny", high_when_positive=False),
        },
        "other": {
            "v1": fit_version(store, models_dir, "other", high_when_positive=True),
            "broken": write_broken_version(store, "other"),
        },
    }
    for model in versions:
        store.promote(model, versions[model]["v1"], reason="test", actor="tests")
    env = {
        "MODEL_STORE": str(store.root),
        "MODELS_DIR": str(models_dir),
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database or database_url(pg),
    }
    return Stack(store, models_dir, versions, Backend(env, root / "backend.log"), pg)
