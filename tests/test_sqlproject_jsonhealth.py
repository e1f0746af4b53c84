"""The JSON keys the models read (from their rendered SQL) and their health in a run: a misspelt key shows as
missing from every row, a key the data holds that no model reads is listed, values the model's cast turns into
NULL are counted."""

from __future__ import annotations

import json

import pytest

from jobs.run_context import RunContext, RunFolder
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.jsonhealth import measure
from jobs.sqlproject.jsonpaths import VALUE, json_reads
from jobs.sqlproject.project import load_project
from tests.sqlproject_helpers import write_project

SOURCES = """
sources:
  - name: events
    table: events
    partition_column: id
    window_column: created_at
    columns: {id: bigint, kind: string, data: string, created_at: timestamp}
"""
PARSED = """
    {{ config(materialized='table') }}
    WITH docs AS (
      SELECT id, kind, from_json(data, '`age` STRING, `smoker` STRING, `cholestrol` STRING, `_corrupt_record` STRING',
                                 map('columnNameOfCorruptRecord', '_corrupt_record')) AS doc
      FROM {{ source('events') }}
    )
    SELECT
      id,
      TRY_CAST(TRIM(doc.age) AS DOUBLE) AS age,
      CASE LOWER(TRIM(doc.smoker)) WHEN 'yes' THEN 1 WHEN 'no' THEN 0 END AS smoker,
      TRY_CAST(doc.cholestrol AS DOUBLE) AS cholesterol
    FROM docs
"""
EXTRA = """
    SELECT id, get_json_object(data, '$.address.city') AS city, CAST(get_json_object(data, '$.bmi') AS INT) AS bmi
    FROM {{ source('events') }}
"""
TUPLE = """
    SELECT id, t.sex FROM {{ source('events') }} LATERAL VIEW json_tuple(data, 'sex') t AS sex
"""


@pytest.fixture
def compiled(tmp_path) -> CompiledProject:
    root = write_project(
        tmp_path / "sql",
        {"staging/parsed.sql": PARSED, "staging/extra.sql": EXTRA, "staging/tuple.sql": TUPLE},
        project_yml="vars:\n  docs_json_group_by: kind\n",
    )
    (root / "sources.yml").write_text(SOURCES)
    return CompiledProject.build(load_project(root), RunContext.for_ds("2026-11-22"))


def test_the_keys_and_types_are_read_from_the_sql(compiled) -> None:
    reads = {(r.key, r.function): r for r in json_reads(compiled.rendered["parsed"])}
    assert sorted(reads) == [("age", "from_json"), ("cholestrol", "from_json"), ("smoker", "from_json")]
    assert reads["age", "from_json"].type == "DOUBLE"
    assert reads["age", "from_json"].usage == f"TRY_CAST(TRIM({VALUE}) AS DOUBLE)"
    assert reads["smoker", "from_json"].type == "one of 'yes', 'no'"
    assert reads["age", "from_json"].line == 9  # the line of the model file that reads it
    extra = {r.key: r for r in json_reads(compiled.rendered["extra"])}
    assert extra["address.city"].type == "STRING" and extra["address.city"].function == "get_json_object"
    assert extra["bmi"].type == "INT" and extra["bmi"].usage == f"TRY_CAST({VALUE} AS INT)"  # a CAST that fails
    (sex,) = json_reads(compiled.rendered["tuple"])
    assert (sex.key, sex.function, sex.column) == ("sex", "json_tuple", "data")


def test_a_misspelt_key_is_missing_from_every_row(spark, compiled, tmp_path) -> None:
    folder = RunFolder(tmp_path / "runs" / "ds=2026-11-22")
    documents = [
        ("a", {"age": 40, "smoker": "yes", "cholesterol": 190, "bmi": "22"}),
        ("a", {"age": "forty", "smoker": "maybe", "cholesterol": 210, "bmi": 24, "address": {"city": "Lyon"}}),
        ("a", {"age": None, "smoker": "no", "cholesterol": 180, "sex": "f"}),
        ("b", {"smoker": "no", "sex": "m"}),
    ]
    rows = [(i, kind, json.dumps(doc), "2026-11-20 10:00:00") for i, (kind, doc) in enumerate(documents, 1)]
    rows.append((9, "b", "not json", "2026-11-20 10:00:00"))
    frame = spark.createDataFrame(rows, "id bigint, kind string, data string, created_at string")
    frame.selectExpr("id", "kind", "data", "CAST(created_at AS TIMESTAMP) AS created_at").write.parquet(
        str(folder.snapshot("events"))
    )

    health = measure(spark, compiled, folder)
    (column,) = health.columns
    assert (column.source, column.column, column.group_by) == ("events", "data", "kind")
    assert column.rows == {"a": 3, "b": 2} and column.not_objects == {"a": 0, "b": 1}
    keys = {k.key: k for k in column.keys}
    assert [(c.source, k.key) for c, k in health.never_present()] == [("events", "cholestrol")]
    assert column.keys[0].key == "cholestrol"  # listed first
    age = keys["age"].groups
    assert (age["a"].objects, age["a"].missing, age["a"].null, age["a"].unusable) == (3, 0, 1, 1)
    assert age["b"].missing == 1 and keys["age"].present_in() == ["a"]
    smoker = keys["smoker"].groups["a"]
    assert smoker.unusable == 1  # 'maybe' is not one of 'yes', 'no'
    assert keys["address.city"].groups["a"].missing == 2
    assert keys["bmi"].groups["a"].unusable == 0 and keys["bmi"].groups["a"].missing == 1
    assert column.unread == {"cholesterol": {"a": 3}}  # the key the data holds under its right name


GATED = """
    SELECT id, data, TRY_CAST(get_json_object(data, '$.age') AS DOUBLE) AS age,
           get_json_object(data, '$.cholestrol') AS cholesterol
    FROM {{ source('events') }}
"""
GATED_YML = """
    columns:
      - name: data
        data_tests: [json_keys_present]
"""


def test_the_data_tests_fail_on_a_key_no_row_holds(spark, tmp_path) -> None:
    from jobs.sqlproject.datatests import run_tests

    root = write_project(tmp_path / "sql", {"staging/gated.sql": GATED, "staging/gated.yml": GATED_YML})
    (root / "sources.yml").write_text(SOURCES)
    compiled = CompiledProject.build(load_project(root), RunContext.for_ds("2026-11-22"))
    (test,) = [t for t in compiled.tests if t.name == "json_keys_present(data)"]
    rows = [(1, '{"age": 50, "cholesterol": 190}'), (2, '{"age": 61}')]
    spark.createDataFrame(rows, "id bigint, data string").createOrReplaceTempView("gated")
    (result,) = run_tests(spark, [test])
    assert (result.status, result.failures) == ("error", 1)
    # It names the key no row holds, and only that one.
    assert "1 of the 2 JSON keys gated reads from data appear in none of its rows: cholestrol (" in result.message

    spark.createDataFrame([(1, '{"age": 50, "cholestrol": 190}')], "id bigint, data string").createOrReplaceTempView(
        "gated"
    )
    (result,) = run_tests(spark, [test])
    assert result.status == "pass"


def test_a_key_beyond_the_sample_is_still_found(spark, tmp_path, monkeypatch) -> None:
    """The sample proves only a pass: a key its rows lack is searched for in the whole table."""
    from jobs.sqlproject import datatests

    root = write_project(tmp_path / "sql", {"staging/gated.sql": GATED, "staging/gated.yml": GATED_YML})
    (root / "sources.yml").write_text(SOURCES)
    compiled = CompiledProject.build(load_project(root), RunContext.for_ds("2026-11-22"))
    (test,) = [t for t in compiled.tests if t.name == "json_keys_present(data)"]
    monkeypatch.setattr(datatests, "SAMPLE_ROWS", 1)
    rows = [(1, '{"age": 50}'), (2, '{"cholestrol": 190}')]  # no one row holds both keys
    spark.createDataFrame(rows, "id bigint, data string").createOrReplaceTempView("gated")
    (result,) = datatests.run_tests(spark, [test])
    assert (result.status, result.failures) == ("pass", 0)


def test_a_test_the_sample_proves_is_not_counted_over_the_table(spark) -> None:
    from jobs.sqlproject.datatests import DataTest, run_tests

    spark.range(3).createOrReplaceTempView("proved")
    # The whole-table aggregate would fail (no such column): it is not run once the sample proved the pass.
    test = DataTest(
        "proved_on_sample",
        "proved",
        "x.yml, line 1",
        "{failures} broken",
        aggregate="SUM(no_such_column)",
        relation="proved",
        sample_proof="COUNT_IF(id < 0)",
    )
    (result,) = run_tests(spark, [test])
    assert (result.status, result.failures) == ("pass", 0)
