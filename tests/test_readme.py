"""README's worked example works as written: an analyst's new model is one SQL file and one YAML file."""

from __future__ import annotations

import re
import shutil

from chispa import assert_df_equality

from jobs import cli
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


def test_the_worked_example_needs_no_python(spark, tmp_path, capsys) -> None:
    files = readme_files()
    assert set(files) == {"sql/features/heart_risk_flags.sql", "sql/features/heart_risk_flags.yml"}
    root = tmp_path / "sql"
    shutil.copytree(REPO_ROOT / "sql", root)
    for path, body in files.items():
        (tmp_path / path).write_text(body)

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
