"""CASE WHEN coverage: the branches a unit test's given rows reach, nested, in WHERE, inside an aggregate, and the
CASE expressions that cannot be probed."""

from __future__ import annotations

import pytest

from jobs.run_context import RunContext
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.coverage import Tally, build_probes, format_table, measure
from jobs.sqlproject.project import load_project
from jobs.sqlproject.unittests import UnitTestRunner, collect_cases
from tests.sqlproject_helpers import write_project

BANDS = """
    SELECT
      id,
      CASE
        WHEN name = 'vip' THEN 'vip'
        ELSE CASE WHEN age >= 65 THEN 'senior' ELSE 'adult' END
      END AS band,
      CASE name WHEN 'x' THEN 1 END AS is_x
    FROM {{ source('people') }}
    WHERE CASE WHEN id > 100 THEN FALSE ELSE TRUE END
"""
BANDS_YML = """
    unit_tests:
      - name: a_vip_and_an_adult
        given:
          - input: source('people')
            rows:
              - {id: 1, name: vip, age: 70}
              - {id: 2, name: x, age: 30}
        expect:
          rows:
            - {id: 1, band: vip}
            - {id: 2, band: adult}
"""
COUNTS = """
    SELECT band, SUM(CASE WHEN is_x = 1 THEN 1 ELSE 0 END) AS xs
    FROM {{ ref('bands') }}
    GROUP BY band
    ORDER BY CASE WHEN band = 'vip' THEN 0 ELSE 1 END
"""
COUNTS_YML = """
    unit_tests:
      - name: counts_the_x
        given:
          - input: ref('bands')
            rows:
              - {id: 1, band: adult, is_x: 1}
        expect:
          rows:
            - {band: adult, xs: 1}
"""


@pytest.fixture
def compiled(tmp_path) -> CompiledProject:
    root = write_project(
        tmp_path / "sql",
        {
            "staging/bands.sql": BANDS,
            "staging/bands.yml": BANDS_YML,
            "marts/counts.sql": COUNTS,
            "marts/counts.yml": COUNTS_YML,
        },
    )
    return CompiledProject.build(load_project(root), RunContext.for_ds("2026-11-22"))


def branches(coverage, number: int) -> dict[str, tuple[str, ...]]:
    case = next(c for c in coverage.cases if c.number == number)
    return {b.label: coverage.fixtures(case, b) for b in case.branches}


def test_the_cases_and_their_branches_are_read_from_the_sql(compiled) -> None:
    cases, probes = build_probes(compiled.rendered["bands"])
    assert [(c.number, c.column, len(c.branches)) for c in cases] == [
        (1, "band", 2),
        (2, "band", 2),
        (3, "is_x", 2),
        (4, None, 2),
    ]
    assert cases[0].line == 3 and cases[1].line == 5  # lines of the model file
    assert cases[2].branches[-1].label == "ELSE (none written: NULL when no WHEN holds)"
    assert len(probes) == 2  # the select list, and the WHERE
    counts, _ = build_probes(compiled.rendered["counts"])
    assert counts[1].not_measured and "ORDER BY" in counts[1].not_measured


def test_the_branches_the_fixtures_reach(spark, compiled) -> None:
    result = measure(spark, compiled)
    bands = result["bands"]
    assert branches(bands, 1) == {
        "WHEN name = 'vip' THEN 'vip'": ("a_vip_and_an_adult",),
        "ELSE " + ("CASE WHEN age >= 65 THEN 'senior' ELSE 'adult' END"): ("a_vip_and_an_adult",),
    }
    # The vip row is 70 but never reaches the inner CASE: 'senior' stays unreached.
    assert branches(bands, 2) == {"WHEN age >= 65 THEN 'senior'": (), "ELSE 'adult'": ("a_vip_and_an_adult",)}
    assert branches(bands, 3) == {
        "WHEN name = 'x' THEN 1": ("a_vip_and_an_adult",),
        "ELSE (none written: NULL when no WHEN holds)": ("a_vip_and_an_adult",),
    }
    assert branches(bands, 4) == {"WHEN id > 100 THEN FALSE": (), "ELSE TRUE": ("a_vip_and_an_adult",)}
    assert (bands.branch_count, bands.reached_count) == (8, 6)

    counts = result["counts"]  # inside SUM(): collected, not projected
    assert branches(counts, 1) == {"WHEN is_x = 1 THEN 1": ("counts_the_x",), "ELSE 0": ()}
    assert (counts.branch_count, counts.reached_count) == (2, 1)

    table = format_table(result)
    assert "bands" in table and "75%" in table
    assert "sql/staging/bands.sql, line 5: CASE #2 (line 5, band): WHEN age >= 65 THEN 'senior'" in table
    assert "sql/marts/counts.sql: CASE #2 (line 4): in ORDER BY" in table


def test_a_tally_of_some_cases_counts_only_those(spark, compiled) -> None:
    """The pytest harness adds the cases it runs, one at a time."""
    runner = UnitTestRunner(spark, compiled)
    tally = Tally(compiled)
    case = next(c for c in collect_cases(compiled.project) if c.model.name == "counts")
    tally.add(spark, case, runner.prepare(case))
    result = tally.result(["bands", "counts"])
    assert result["counts"].unit_tests == ("counts_the_x",) and result["counts"].reached_count == 1
    assert result["bands"].unit_tests == () and result["bands"].reached_count == 0


def test_a_model_that_does_not_render_is_not_measured_and_the_rest_is(spark, tmp_path) -> None:
    """`retrain test` with a model using an undefined var: its error is said once, and the coverage table says the
    model was not measured instead of the command ending in a KeyError."""
    from jobs.sqlproject.coverage import of_cases

    root = write_project(
        tmp_path / "sql",
        {
            "staging/bands.sql": BANDS.replace("age >= 65", "age >= {{ var('senior_age') }}"),
            "staging/bands.yml": BANDS_YML,
            "marts/counts.sql": COUNTS,
            "marts/counts.yml": COUNTS_YML,
        },
    )
    compiled = CompiledProject.build(load_project(root), RunContext.for_ds("2026-11-22"), keep_going=True)
    assert "bands" not in compiled.rendered
    coverage = of_cases(spark, compiled, collect_cases(compiled.project))
    assert coverage["bands"].error == "it did not render; its error is above"
    # counts' case reads bands, which has no columns to give: not measured, rather than 0% of its branches.
    assert coverage["counts"].error == "none of its unit tests could run; their errors are above"
    assert "bands                        not measured: it did not render" in format_table(coverage)


def test_cases_inside_and_below_a_cte_are_measured(spark, tmp_path) -> None:
    """Each SELECT's probe repeats the model's WITH; Spark's planner fails on the union of such probes (an internal
    error, not a PySparkException), so each probe is then run alone instead of `retrain test` ending in a trace."""
    from jobs.sqlproject.coverage import of_cases

    labelled = """
        WITH banded AS (
          SELECT id, CASE WHEN age >= 65 THEN 'senior' ELSE 'adult' END AS band FROM {{ source('people') }}
        )
        SELECT *, CASE WHEN band = 'senior' THEN 1 ELSE 0 END AS is_senior FROM banded
    """
    yml = """
        unit_tests:
          - name: a_senior
            given:
              - input: source('people')
                rows: [{id: 1, age: 70}]
            expect:
              rows: [{id: 1, band: senior, is_senior: 1}]
    """
    root = write_project(tmp_path / "sql", {"labelled.sql": labelled, "labelled.yml": yml})
    compiled = CompiledProject.build(load_project(root), RunContext.for_ds("2026-11-22"))
    coverage = of_cases(spark, compiled, collect_cases(compiled.project))["labelled"]
    assert coverage.error is None and (coverage.reached_count, coverage.branch_count) == (2, 4)
