"""README's worked example works as written: an analyst's new model is one SQL file and one YAML file."""

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


def readme_files() -> dict[str, str]:
    """Code blocks whose first line names the file they belong in."""
    return {path: body for path, body in BLOCK.findall(README)}


def test_readme_shows_the_two_commands_first() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0].startswith("make demo") and first_block.splitlines()[1].startswith("make test")


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
    commands = [line.split("#")[0].split() for line in block.splitlines() if "retrain extract" in line
                or "retrain transform" in line]  # fmt: skip
    assert [c[1] for c in commands] == ["extract", "transform"]
    for command in commands:
        assert cli.main([*command[1:], "--project-dir", str(root)]) == 0

    out = capsys.readouterr().out
    built = {line.split()[0]: int(line.split()[2].replace(",", "")) for line in out.splitlines() if " table " in line}
    assert list(built) == ["stg_predictions", "heart_features", "heart_risk_flags"]
    assert built["heart_risk_flags"] == built["heart_features"] > 0
