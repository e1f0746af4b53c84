"""Every unit test in ``sql/**/<model>.yml`` becomes one pytest case, compared with chispa.

Adding a case (or a model with its ``.yml``) needs no Python: this harness finds it.
"""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from jobs.sqlproject.project import load_project
from jobs.sqlproject.unittests import UnitTestRunner, collect_cases, models_without_unit_tests
from tests.conftest import REPO_ROOT

PROJECT = load_project(REPO_ROOT / "sql")
CASES = collect_cases(PROJECT)


@pytest.fixture(scope="module")
def unit_runner(spark) -> UnitTestRunner:
    return UnitTestRunner.for_project(spark, PROJECT)


def test_every_model_has_unit_tests() -> None:
    assert CASES, "no unit tests found under sql/"
    assert models_without_unit_tests(PROJECT) == [], "add unit_tests: to these models' .yml files"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_sql_model(unit_runner: UnitTestRunner, case) -> None:
    actual, expected = unit_runner.run(case)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
