"""One validator of model and version names, and every reader that builds a path from a name calls it.

A name that is not ``<model>`` / ``<ds>-<8 hex>`` is refused before any path is built: on the command line, in
``decision.json``, in ``production.json`` (the store and the backend's registry), as a recipe's file name, and a
folder that leads out of the store through a link.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier

from jobs.errors import DeployError, InvalidNameError, ModelStoreError, RecipeError
from jobs.ml.names import check_model_name, check_version_name
from jobs.ml.store import ModelStore
from jobs.run_context import RunContext
from jobs.settings import Settings
from tests.conftest import REPO_ROOT

DS = "2026-11-22"


@pytest.mark.parametrize("name", ["diabetes", "heart", "a", "kidney_2", "x" * 64])
def test_good_model_names(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "..", "../heart", "/etc", "heart/..", "Heart", "heart-2", "2heart", "_heart", "x" * 65, "heart\n", None, 5],
)
def test_bad_model_names(name: object) -> None:
    with pytest.raises(InvalidNameError, match="is not a model name: expected a lower-case letter"):
        check_model_name(name)


@pytest.mark.parametrize("version", ["2026-11-22-5e6b8d88", "1999-01-01-00000000"])
def test_good_version_names(version: str) -> None:
    assert check_version_name(version) == version


@pytest.mark.parametrize(
    "version",
    [
        "../heart/2026-11-22-5e6b8d88",
        "/tmp/2026-11-22-5e6b8d88",
        "2026-11-22-5E6B8D88",
        "2026-11-22-5e6b8d8",
        "2026-11-22-5e6b8d888",
        "2026-11-22-5e6b8d88\n",
        "2026-11-22-5e6b8d88/..",
        "２０２６-11-22-5e6b8d88",  # digits, but not ASCII ones
        "latest",
        "",
        None,
    ],
)
def test_bad_version_names(version: object) -> None:
    with pytest.raises(InvalidNameError, match="is not a version name of model 'heart': expected <ds>-<8 hex"):
        check_version_name(version, model="heart")


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    """diabetes and heart, one version each, diabetes in production."""
    store = ModelStore(tmp_path / "store")
    for model in ("diabetes", "heart"):
        estimator = DummyClassifier(strategy="most_frequent").fit([[0], [1]], [0, 1])
        store.write(model, DS, estimator, {"accuracy": 0.5}, {"features": ["x"], "label": "label"})
    store.promote("diabetes", store.versions("diabetes")[0], reason="first", actor="test")
    return store


def cli(store: ModelStore, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    from jobs.cli import main

    monkeypatch.setenv("MODEL_STORE", str(store.root))
    return main(list(argv))


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_promote_refuses_a_version_of_another_model_or_outside_the_store(
    store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    heart = store.versions("heart")[0]
    before = snapshot(tmp_path)
    assert cli(store, monkeypatch, "models", "promote", "diabetes", f"../heart/{heart}", "--reason", "x") == 1
    assert f"'../heart/{heart}' is not a version name of model 'diabetes'" in caplog.text
    absolute = str(store.root / "heart" / heart)
    assert cli(store, monkeypatch, "models", "promote", "diabetes", absolute, "--reason", "x") == 1
    assert cli(store, monkeypatch, "models", "promote", "../../somewhere", heart, "--reason", "x") == 1
    assert "'../../somewhere' is not a model name" in caplog.text
    assert cli(store, monkeypatch, "models", "rollback", "../heart", "--reason", "x") == 1
    assert cli(store, monkeypatch, "models", "show", "diabetes", f"../heart/{heart}") == 1
    assert snapshot(tmp_path) == before  # nothing written, inside the store or outside it
    assert not (store.root / "../../somewhere").resolve().exists()


def test_a_production_pointer_naming_a_path_is_refused_by_the_store_and_the_backends_registry(
    store: ModelStore, tmp_path: Path
) -> None:
    from jobs.errors import ModelLoadError
    from serving.registry import load_production_set
    from tests.serving_helpers import write_recipes

    heart = store.versions("heart")[0]
    pointer = store.root / "diabetes" / "production.json"
    tampered = json.loads(pointer.read_text()) | {
        "version": f"../heart/{heart}",
        "artifact_sha256": store.artifact_sha256("heart", heart),
    }
    pointer.write_text(json.dumps(tampered))
    with pytest.raises(InvalidNameError, match=f"production.json: '../heart/{heart}' is not a version name"):
        store.production("diabetes")
    models_dir = write_recipes(tmp_path / "models", names=("diabetes",))
    with pytest.raises(ModelLoadError, match="is not a version name") as caught:
        load_production_set(store.root, models_dir)
    assert caught.value.model == "diabetes"
    pointer.write_text(json.dumps(tampered | {"version": heart, "model": "heart"}))
    with pytest.raises(ModelStoreError, match="names model 'heart', not 'diabetes'"):
        store.production("diabetes")
    diabetes = store.versions("diabetes")[0]
    store.promote("diabetes", diabetes, reason="mend the pointer")  # what the error advises
    assert store.production("diabetes").version == diabetes
    assert store.history("diabetes")[-1] | {"at": None} == {
        "action": "promote",
        "version": diabetes,
        "previous": None,
        "reason": "mend the pointer",
        "actor": "unknown",
        "at": None,
    }


def test_a_model_folder_linked_out_of_the_store_is_refused(store: ModelStore, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (store.root / "heart").rename(elsewhere)
    (store.root / "heart").symlink_to(elsewhere)
    with pytest.raises(ModelStoreError, match="outside the model store"):
        store.versions("heart")
    with pytest.raises(ModelStoreError, match="outside the model store"):
        store.promote("heart", next(p.name for p in elsewhere.iterdir() if p.name[0].isdigit()), reason="x")
    assert not (elsewhere / "production.json").exists()
    diabetes = store.versions("diabetes")[0]
    artifact = store.root / "diabetes" / diabetes / "model.joblib"
    artifact.unlink()
    artifact.symlink_to(elsewhere / next(p.name for p in elsewhere.iterdir() if p.name[0].isdigit()) / "model.joblib")
    with pytest.raises(ModelStoreError, match="outside the model store"):
        store.artifact("diabetes", diabetes)


def test_deploy_refuses_a_decision_naming_a_path_before_promoting_anything(store: ModelStore, tmp_path: Path) -> None:
    from jobs.deploy import approved_versions, deploy
    from tests.serving_helpers import admin_token

    heart = store.versions("heart")[0]
    settings = Settings.from_env(
        env={
            "DATA_DIR": str(tmp_path / "data"),
            "MODEL_STORE": str(store.root),
            "ADMIN_JWT_TOKEN": admin_token(),
            "BACKEND_URL": "http://127.0.0.1:9",  # never called
        },
        root=REPO_ROOT,
    )
    decision = settings.run_folder(DS).decision
    decision.parent.mkdir(parents=True)
    for model, version, complaint in [
        ("diabetes", f"../heart/{heart}", "is not a version name of model 'diabetes'"),
        ("../heart", heart, "'../heart' is not a model name"),
    ]:
        decision.write_text(json.dumps({"models": {model: {"verdict": "deploy", "challenger_version": version}}}))
        before = snapshot(store.root)
        with pytest.raises(DeployError, match=complaint) as caught:
            deploy(settings, RunContext.for_ds(DS))
        assert str(decision) in str(caught.value) and "Nothing was promoted" in str(caught.value)
        assert snapshot(store.root) == before
        with pytest.raises(DeployError, match=complaint):
            approved_versions(decision)


def test_a_recipe_file_that_cannot_name_a_model_is_refused(tmp_path: Path) -> None:
    from jobs.ml.recipes import load_recipes
    from tests.serving_helpers import TINY_RECIPE

    (tmp_path / "Heart-v2.py").write_text(TINY_RECIPE.format(name="Heart-v2"))
    with pytest.raises(RecipeError, match="'Heart-v2' cannot name a model; rename the file"):
        load_recipes(tmp_path)
