"""Every unit test in ``sql/**/<model>.yml`` becomes one pytest case, compared with chispa.

Adding a case (or a model with its ``.yml``) needs no Python: this harness finds it. Each case's given rows also go
through the model's CASE expressions (:mod:`jobs.sqlproject.coverage`), and the run ends with the table of the
branches no unit test reaches, as ``retrain docs`` shows it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chispa import assert_df_equality

from jobs.sqlproject.coverage import Tally, format_table
from jobs.sqlproject.project import load_project
from jobs.sqlproject.unittests import UnitTestRunner, collect_cases, models_without_unit_tests
from tests.conftest import REPO_ROOT

PROJECT = load_project(REPO_ROOT / "sql")
CASES = collect_cases(PROJECT)


@pytest.fixture(scope="module")
def unit_runner(spark) -> UnitTestRunner:
    return UnitTestRunner.for_project(spark, PROJECT)


@pytest.fixture(scope="module")
def coverage(unit_runner, run_summary) -> Iterator[Tally]:
    """The branches the cases reach; the table is printed at the end of the run."""
    tally = Tally(unit_runner.compiled)
    yield tally
    ran = {name for name, coverage in tally.result().items() if coverage.unit_tests}
    if ran:
        run_summary["SQL unit tests"] = format_table(tally.result(ran))


def test_every_model_has_unit_tests() -> None:
    assert CASES, "no unit tests found under sql/"
    assert models_without_unit_tests(PROJECT) == [], "add unit_tests: to these models' .yml files"


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_sql_model(unit_runner: UnitTestRunner, coverage: Tally, spark, case) -> None:
    actual, expected = unit_runner.run(case)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    coverage.add(spark, case, unit_runner.prepare(case))
