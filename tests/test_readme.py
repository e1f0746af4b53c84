"""README's worked examples work as written: an analyst's new model is one SQL file and one YAML file, a data
scientist's new model is one recipe, and the commands README shows exist."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from chispa import assert_df_equality

from jobs import cli
from jobs.demo.generator import generate
from jobs.demo.loader import load
from jobs.run_context import RunContext
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.project import load_project
from jobs.sqlproject.runner import SqlRunner
from jobs.sqlproject.unittests import UnitTestRunner, collect_cases
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"```(?:sql|yaml)\n(?:--|#) (sql/\S+)\n(.*?)```", re.S)
RECIPE_BLOCK = re.compile(r"```python\n# (models/\S+\.py)\n(.*?)```", re.S)
MAKE_TARGET = re.compile(r"^([a-z][a-z-]*):", re.M)


def readme_files() -> dict[str, str]:
    """Code blocks whose first line names the file they belong in."""
    return {path: body for path, body in BLOCK.findall(README)}


def test_readme_shows_the_two_commands_first() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0].startswith("make demo") and first_block.splitlines()[1].startswith("make test")
    shown = [line.split()[1] for line in first_block.splitlines() if line.startswith("make ")]
    targets = set(MAKE_TARGET.findall((REPO_ROOT / "Makefile").read_text(encoding="utf-8")))
    assert {"demo", "test", "test-fast", "airflow"} <= set(shown)
    assert set(shown) <= targets, f"README shows make targets the Makefile lacks: {sorted(set(shown) - targets)}"


def worked_example_project(tmp_path: Path) -> Path:
    """The project's SQL with README's two new files added, under ``tmp_path/sql``."""
    files = readme_files()
    assert set(files) == {"sql/features/heart_risk_flags.sql", "sql/features/heart_risk_flags.yml"}
    root = tmp_path / "sql"
    shutil.copytree(REPO_ROOT / "sql", root)
    for path, body in files.items():
        (tmp_path / path).write_text(body)
    return root


def test_the_worked_example_needs_no_python(spark, tmp_path, capsys) -> None:
    root = worked_example_project(tmp_path)

    assert cli.main(["compile", "--project-dir", str(root), "--select", "heart_risk_flags"]) == 0
    assert "FROM heart_features" in capsys.readouterr().out

    project = load_project(root)
    checked = SqlRunner(spark, CompiledProject.build(project, RunContext.for_ds("2026-11-22"))).check(
        ["+heart_risk_flags"]
    )
    assert checked[-1][1].columns == ["record_id", "smoker_with_hypertension", "any_cardiac_risk"]

    cases = [c for c in collect_cases(project) if c.model.name == "heart_risk_flags"]
    assert len(cases) == 1
    actual, expected = UnitTestRunner.for_project(spark, project).run(cases[0])
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_the_worked_example_builds_on_data(spark, settings, empty_db, tmp_path, monkeypatch, capsys) -> None:
    """README's second block, through the same commands: a seeded database, ``extract``, then ``transform`` of the
    new model with the models it reads (``+``)."""
    root = worked_example_project(tmp_path)
    load(empty_db, generate(2_000, 5))
    monkeypatch.setenv("RETRAIN_HOME", str(settings.root))
    monkeypatch.setenv("DATABASE_URL", empty_db.full_url())
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    block = README.split("To build it on data", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [
        line.split("#")[0].split()
        for line in block.splitlines()
        if "retrain extract" in line or "retrain transform" in line
    ]
    assert [c[1] for c in commands] == ["extract", "transform"]
    for command in commands:
        assert cli.main([*command[1:], "--project-dir", str(root)]) == 0

    out = capsys.readouterr().out
    built = {
        line.split()[0]: int(line.split()[2].replace(",", ""))
        for line in out.splitlines()
        if " table " in line or " incremental " in line
    }
    assert list(built) == ["stg_predictions", "heart_features", "heart_risk_flags"]
    assert built["heart_risk_flags"] == built["heart_features"] > 0


def test_the_data_scientists_recipe_loads_and_copes_with_gaps(tmp_path) -> None:
    """README's recipe, as the loader reads ``models/``: it names its feature table, and its pipeline fits and
    predicts on rows with missing numbers, missing categories and a category it never saw."""
    import numpy as np
    import pandas as pd

    from jobs.ml.recipes import features_frame, load_recipes

    recipes = dict(RECIPE_BLOCK.findall(README))
    assert list(recipes) == ["models/kidney.py"]
    models = tmp_path / "models"
    models.mkdir()
    (models / "kidney.py").write_text(recipes["models/kidney.py"], encoding="utf-8")

    recipe = load_recipes(models)["kidney"]
    assert recipe.feature_table == "kidney_features"
    assert recipe.features == ("age", "creatinine", "egfr", "diabetic", "sex")
    assert recipe.thresholds.min_holdout == 300

    rng = np.random.default_rng(0)
    rows = pd.DataFrame(
        {
            "age": rng.uniform(20, 90, 60),
            "creatinine": rng.uniform(0.5, 3.0, 60),
            "egfr": rng.uniform(15, 120, 60),
            "diabetic": rng.integers(0, 2, 60).astype(float),
            "sex": rng.choice(["female", "male"], 60).astype(object),
        }
    )
    rows.loc[::7, "creatinine"] = np.nan  # feature tables keep missing numbers as NULL
    rows.loc[::9, "sex"] = None
    label = (rows["egfr"] < 60).astype(int).to_numpy()
    estimator = recipe.build_estimator()
    estimator.fit(features_frame(recipe, rows), label)

    unseen = [{"age": 61.0, "creatinine": None, "egfr": 40.0, "diabetic": 1.0, "sex": "other"}]
    probabilities = estimator.predict_proba(features_frame(recipe, unseen))
    assert probabilities.shape == (1, 2) and np.isclose(probabilities.sum(), 1.0)


def test_the_commands_readme_shows_parse() -> None:
    """Every ``retrain`` command line in README's shell blocks is one the command line accepts."""
    from tests.test_docs import retrain_commands

    commands = retrain_commands(README)
    assert {c[0] for c in commands} >= {"compile", "check", "db", "extract", "transform", "train", "validate", "models"}
    for command in commands:
        try:
            cli.build_parser().parse_args(command)
        except SystemExit:
            raise AssertionError(f"README shows `retrain {' '.join(command)}`, which retrain does not accept") from None
