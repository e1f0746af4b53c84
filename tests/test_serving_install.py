"""The serving backend installs on its own: ``pip install 'retrain[serving]'`` into a fresh virtualenv brings no
Spark, and that install serves a trained model against the session's PostgreSQL.

A regular (non-editable) install of a copy of the sources, so the backend runs from the virtualenv's
site-packages, not from the repository. The virtualenv gets this interpreter's versions of every package it needs
(a constraints file): an artifact pickled here unpickles there, and pip takes wheels it already has.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from jobs.ml.store import ModelStore
from tests.conftest import REPO_ROOT
from tests.serving_helpers import SECRET_KEY, Backend, database_url, fit_version, write_recipes

#: what a wheel of the project is built from
SOURCES = ("pyproject.toml", "README.md", "jobs", "serving")
#: not pinned: the project itself, and the build tools (the build needs a newer setuptools than a venv's own)
UNPINNED = {"retrain", "pip", "setuptools", "wheel"}
INSTALL_TIMEOUT = 300


def pinned_versions() -> str:
    """``name==version`` of every distribution of this interpreter but the project and the build tools."""
    pins = {
        dist.metadata["Name"].lower(): dist.version
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower() not in UNPINNED
    }
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


@pytest.fixture(scope="module")
def serving_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with ``<copy of the repository>[serving]`` installed, and nothing else; its ``bin`` folder."""
    root = tmp_path_factory.mktemp("serving_install")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO_ROOT / name, source / name)
    constraints = root / "constraints.txt"
    constraints.write_text(pinned_versions(), encoding="utf-8")
    venv = root / "venv"
    # No pip of its own: this interpreter's pip installs into it (`pip --python`), which saves bootstrapping one.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-compile",
            "--constraint",
            str(constraints),
            f"{source}[serving]",
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
    )
    assert install.returncode == 0, f"pip install failed:\n{install.stdout[-3000:]}\n{install.stderr[-3000:]}"
    return venv / "bin"


def run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A program of the virtualenv, outside the repository and without PYTHONPATH: it sees only what is installed."""
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": "", "HOME": str(cwd)}
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_serving_extra_installs_without_spark(serving_venv: Path, tmp_path: Path) -> None:
    probe = (
        "import importlib.util, json, jobs, serving\n"
        "print(json.dumps({'files': [jobs.__file__, serving.__file__], 'absent': [m for m in "
        "('pyspark', 'matplotlib', 'pyarrow', 'jinja2') if importlib.util.find_spec(m) is None]}))"
    )
    done = run(serving_venv, "python", "-c", probe, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["absent"] == ["pyspark", "matplotlib", "pyarrow", "jinja2"]
    site_packages = str(serving_venv.parent / "lib")
    assert all(path.startswith(site_packages) for path in found["files"]), found["files"]

    for command in (["retrain-serve", "--help"], ["python", "-m", "serving", "--help"], ["retrain", "--help"]):
        done = run(serving_venv, *command, cwd=tmp_path)
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stderr}"
        assert "usage:" in done.stdout


def test_the_serving_only_install_serves_a_trained_model(serving_venv: Path, tmp_path: Path, pg) -> None:
    models_dir = write_recipes(tmp_path / "models", names=("tiny",))
    store = ModelStore(tmp_path / "store")
    version = fit_version(store, models_dir, "tiny", high_when_positive=True)
    store.promote("tiny", version, reason="test", actor="tests")
    env = {
        "MODEL_STORE": str(store.root),
        "MODELS_DIR": str(models_dir),
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url(pg),
        "PYTHONPATH": "",
    }
    backend = Backend(env, tmp_path / "backend.log", python=serving_venv / "python", cwd=tmp_path)
    try:
        models = backend.get("/models").json()["models"]
        assert models["tiny"]["version"] == version
        assert models["tiny"]["artifact_sha256"] == store.artifact_sha256("tiny", version)

        answer = backend.post("/predict/tiny", json={"x": "3", "color": "red"})
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert (result["model"], result["version"], result["prediction"]) == ("tiny", version, "High Risk")
        with psycopg2.connect(**pg.psycopg_kwargs()) as conn, conn.cursor() as cur:
            cur.execute("SELECT record_type, model_version FROM health_records WHERE id = %s", (result["record_id"],))
            assert cur.fetchone() == ("tiny", version)
    finally:
        backend.stop()
