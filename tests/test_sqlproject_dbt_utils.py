"""The built-in dbt_utils on Spark: its macros give dbt_utils' results, its tests find the rows dbt_utils' find."""

from __future__ import annotations

import hashlib

import pytest

from jobs.run_context import RunContext
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.datatests import run_tests
from jobs.sqlproject.project import load_project
from jobs.sqlproject.runner import SqlRunner
from jobs.sqlproject.sources import empty_reader
from tests.sqlproject_helpers import write_project

CTX = RunContext.for_ds("2026-11-22")
FILES = {
    "seeds/a.csv": """
        id,name,amount,at
        1,x,5,2026-11-01 10:00:00
        2,,50,2026-11-02 10:00:00
        2,y,-1,2026-10-01 9:00:00
    """,
    "seeds/b.csv": "id,extra\n3,hello\n",
    "seeds/a.yml": """
        data_tests:
          - dbt_utils.unique_combination_of_columns: {combination_of_columns: [id]}
          - dbt_utils.expression_is_true: {expression: "amount >= 0"}
          - dbt_utils.recency: {datepart: day, field: at, interval: 30}
          - dbt_utils.recency: {datepart: day, field: at, interval: 10, name: recent_within_10_days}
        columns:
          - name: amount
            data_tests:
              - dbt_utils.accepted_range: {min_value: 0, max_value: 10}
              - dbt_utils.accepted_range: {min_value: -1, inclusive: true, name: from_minus_one}
          - name: name
            data_tests:
              - dbt_utils.not_null_proportion: {at_least: 0.9}
              - dbt_utils.at_least_one
              - dbt_utils.not_empty_string
    """,
    "marts/unioned.sql": "{{ dbt_utils.union_relations(relations=[ref('a'), ref('b')]) }}\n",
    "marts/keys.sql": """
        SELECT id, {{ dbt_utils.surrogate_key('id', 'name') }} AS old_key,
          {{ dbt_utils.generate_surrogate_key(['id', 'name']) }} AS new_key
        FROM {{ ref('a') }}
    """,
    "marts/renamed.sql": """
        SELECT {{ dbt_utils.star(from=ref('a'), except=['AT'], prefix='a_', relation_alias='t') }} FROM {{ ref('a') }} t
    """,
    "marts/pivoted.sql": """
        SELECT id, {{ dbt_utils.pivot('name', ['x', 'y'], agg='max', then_value='amount', else_value='null') }}
        FROM {{ ref('a') }} GROUP BY id
    """,
    "marts/spine.sql": "{{ dbt_utils.date_spine('month', \"'2026-01-15'\", \"'2026-04-01'\") }}\n",
}


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    root = write_project(tmp_path_factory.mktemp("utils") / "sql", FILES)
    compiled = CompiledProject.build(load_project(root), CTX)
    runner = SqlRunner(spark, compiled, root.parent / "features")
    runner.run(empty_reader)
    return compiled


def test_union_relations_takes_every_column_of_every_relation(spark, built) -> None:
    frame = spark.table("unioned")
    assert frame.columns == ["_dbt_source_relation", "id", "name", "amount", "at", "extra"]
    rows = sorted((r._dbt_source_relation, r.id, r.extra) for r in frame.collect())
    assert rows == [("a", 1, None), ("a", 2, None), ("a", 2, None), ("b", 3, "hello")]


def test_surrogate_keys_are_dbt_utils_values(spark, built) -> None:
    keys = sorted((r.id, r.old_key, r.new_key) for r in spark.table("keys").collect())
    md5 = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731
    assert keys[0] == (1, md5("1-x"), md5("1-x"))
    assert keys[1] == (2, md5("2-"), md5("2-_dbt_utils_surrogate_key_null_"))  # NULL: '' before 1.0, a marker since


def test_star_pivot_and_date_spine(spark, built) -> None:
    assert spark.table("renamed").columns == ["a_id", "a_name", "a_amount"]
    pivoted = {r.id: (r.x, r.y) for r in spark.table("pivoted").collect()}
    assert pivoted == {1: (5, None), 2: (None, -1)}
    months = [str(r.date_month) for r in spark.table("spine").orderBy("date_month").collect()]
    assert months == ["2026-01-15", "2026-02-15", "2026-03-15"]  # the end is left out


def test_dbt_utils_tests_count_what_dbt_utils_counts(spark, built) -> None:
    found = {r.name: (r.status, r.failures) for r in run_tests(spark, built.tests)}
    assert found == {
        "dbt_utils.unique_combination_of_columns": ("error", 1),  # id 2, twice
        "dbt_utils.expression_is_true": ("error", 1),  # amount -1
        "dbt_utils.recency": ("pass", 0),  # newest row 20 days before the run
        "recent_within_10_days": ("error", 1),
        "dbt_utils.accepted_range(amount)": ("error", 2),  # 50 and -1
        "from_minus_one": ("pass", 0),
        "dbt_utils.not_null_proportion(name)": ("error", 1),  # 2 of 3
        "dbt_utils.at_least_one(name)": ("pass", 0),
        "dbt_utils.not_empty_string(name)": ("pass", 0),
    }
