"""Every SQL model's generated code stays within what the JVM compiles.

HotSpot interprets a method of more than 8000 bytes of bytecode instead of compiling it. When the staging model's
parse grew past that (``to_double`` cast each number twice), its stage ran interpreted and a 4.5M-row full refresh
took 125.8 s instead of 96.7 s, with every test still green (CHANGELOG.md, 2026-12-07). This test fails instead.
"""

from __future__ import annotations

import pytest

from jobs.sqlproject.project import load_project
from jobs.sqlproject.unittests import UnitTestRunner, collect_cases
from tests.conftest import REPO_ROOT

PROJECT = load_project(REPO_ROOT / "sql")
#: HotSpot's HugeMethodLimit, and the pipeline's spark.sql.codegen.hugeMethodLimit
JIT_LIMIT_BYTES = 8000
#: one case per model: its rows only start the query, the code generated depends on the SQL
FIRST_CASES = {case.model.name: case for case in reversed(collect_cases(PROJECT))}


def largest_generated_methods(spark, df) -> list[tuple[int, str]]:
    """(bytes of bytecode, the plan's first line) of each whole-stage-codegen subtree of ``df``'s executed plan."""
    df.collect()  # with adaptive execution, the final plan exists once it ran
    debug = spark._jvm.org.apache.spark.sql.execution.debug.package
    stages = debug.codegenStringSeq(df._jdf.queryExecution().executedPlan())
    found = []
    for index in range(stages.size()):
        subtree, stats = stages.apply(index)._1(), stages.apply(index)._3()
        found.append((stats.maxMethodCodeSize(), subtree.strip().splitlines()[0]))
    return found


@pytest.fixture(scope="module")
def unit_runner(spark) -> UnitTestRunner:
    """One runner (the project compiled and analysed once) for every model's case."""
    return UnitTestRunner.for_project(spark, PROJECT)


@pytest.mark.parametrize("model", sorted(FIRST_CASES))
def test_generated_code_stays_compilable(spark, unit_runner: UnitTestRunner, model: str) -> None:
    rendered = unit_runner.prepare(FIRST_CASES[model])
    sizes = largest_generated_methods(spark, spark.sql(rendered.sql))
    assert sizes, f"{model}: no generated code found; the check would prove nothing"
    too_large = [(size, plan) for size, plan in sizes if size > JIT_LIMIT_BYTES]
    assert not too_large, f"{model}: generated methods over {JIT_LIMIT_BYTES} bytes: {too_large}"
