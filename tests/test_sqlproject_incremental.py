"""Incremental models on a real Spark session: each strategy against a full refresh of the same week, the reuse of
unchanged files, schema changes, and what happens to the previous output when a run fails."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import pytest
from chispa import assert_df_equality

from jobs.commands.common import print_models
from jobs.errors import CompilationError, ModelExecutionError
from jobs.run_context import RunContext, RunFolder
from jobs.spark.atomic import MANIFEST
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.incremental import find_previous
from jobs.sqlproject.project import load_project
from jobs.sqlproject.runner import SqlRunner
from tests.sqlproject_helpers import write_project

SCHEMA = "id bigint, name string, age int, created_at timestamp"
WEEK1, WEEK2 = "2026-11-15", "2026-11-22"
PEOPLE = [(1, "ann", 34, None), (2, "bob", 17, None), (3, "cy", 71, None)]
LATER = [(3, "cy", 72, None), (4, "di", 45, None), (5, "ed", 15, None)]  # cy again, a year older

APPEND = """
    {{ config(materialized='incremental') }}
    SELECT id, name, age FROM {{ source('people') }}
    {% if is_incremental() %} WHERE id > (SELECT MAX(id) FROM {{ this }}) {% endif %}
"""


def build(spark, data: Path, root: Path, ds: str, rows: list, full_refresh: bool = False):
    """One run of the project over ``rows``: (its result, its run folder)."""
    folder = RunFolder.under(data, ds)
    previous = None if full_refresh else functools.partial(find_previous, folder)
    compiled = CompiledProject.build(load_project(root), RunContext.for_ds(ds), previous=previous)
    frame = spark.createDataFrame(rows, SCHEMA)
    return SqlRunner(spark, compiled, folder.features).run(lambda spark_, source: frame), folder


def read(spark, folder: RunFolder, model: str):
    return spark.read.parquet(str(folder.feature_table(model)))


def data_files(path: Path) -> dict[str, int]:
    """Each data file (relative path) with its inode."""
    return {
        str(p.relative_to(path)): p.stat().st_ino
        for p in path.rglob("*.parquet")
        if not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    }


def same_as_full_refresh(spark, tmp_path: Path, root: Path, model: str, weeks: list[tuple[str, list]]) -> RunFolder:
    """Build ``weeks`` incrementally, then the last week as a full refresh elsewhere; the outputs must be equal."""
    for ds, rows in weeks:
        _, folder = build(spark, tmp_path / "data", root, ds, rows)
    _, full = build(spark, tmp_path / "full", root, weeks[-1][0], weeks[-1][1], full_refresh=True)
    assert_df_equality(read(spark, folder, model), read(spark, full, model), ignore_row_order=True)
    return folder


def test_append_adds_the_new_rows_and_links_the_previous_files(spark, tmp_path, capsys) -> None:
    root = write_project(tmp_path / "sql", {"events.sql": APPEND})
    result, week1 = build(spark, tmp_path / "data", root, WEEK1, PEOPLE)
    assert result.models[0].new_rows == 3 and result.models[0].materialized == "incremental"
    before = data_files(week1.feature_table("events"))

    first = result.models[0]
    result, week2 = build(spark, tmp_path / "data", root, WEEK2, PEOPLE + LATER[1:])
    assert (result.models[0].rows, result.models[0].new_rows, result.models[0].built_on) == (5, 2, WEEK1)
    print_models([first, result.models[0]])
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split("rows")[1].startswith(" (full refresh)")
    assert printed[1].split("rows")[1].startswith(" (2 written, on the output of 2026-11-15)")
    after = data_files(week2.feature_table("events"))
    assert set(before.items()) <= set(after.items())  # the same files, linked: not one byte rewritten
    assert read(spark, week1, "events").count() == 3  # the previous output is as it was
    manifest = (week2.feature_table("events") / MANIFEST).read_text()
    assert '"previous_ds": "2026-11-15"' in manifest and '"new_rows": 2' in manifest
    same_as_full_refresh(spark, tmp_path / "again", root, "events", [(WEEK1, PEOPLE), (WEEK2, PEOPLE + LATER[1:])])


def test_merge_replaces_rows_by_key_and_rewrites_only_the_files_it_touches(spark, tmp_path) -> None:
    merge = """
        {{ config(materialized='incremental', unique_key='id', partition_by=['grp']) }}
        SELECT id, name, age, IF(age >= 18, 'adult', 'minor') AS grp FROM {{ source('people') }}
        {% if is_incremental() %} WHERE id >= 3 {% endif %}
    """
    root = write_project(tmp_path / "sql", {"people_now.sql": merge})
    _, week1 = build(spark, tmp_path / "data", root, WEEK1, PEOPLE)
    minors = data_files(week1.feature_table("people_now") / "grp=minor")
    _, week2 = build(spark, tmp_path / "data", root, WEEK2, PEOPLE[:2] + LATER)
    rows = {r.id: r.age for r in read(spark, week2, "people_now").collect()}
    assert rows == {1: 34, 2: 17, 3: 72, 4: 45, 5: 15}  # cy replaced, not repeated
    kept = data_files(week2.feature_table("people_now") / "grp=minor")
    assert set(minors.items()) <= set(kept.items())  # bob's file: no new key touched it
    same_as_full_refresh(spark, tmp_path / "again", root, "people_now", [(WEEK1, PEOPLE), (WEEK2, PEOPLE[:2] + LATER)])


MERGE_WHOLE_TABLE = """
    {{ config(materialized='incremental', unique_key='id', partition_by=['grp'],
              matched_condition='DBT_INTERNAL_DEST.age <> DBT_INTERNAL_SOURCE.age',
              not_matched_by_source_action='delete') }}
    SELECT id, name, age, IF(age >= 18, 'adult', 'minor') AS grp FROM {{ source('people') }}
"""


def test_a_merge_that_compares_rewrites_only_the_files_with_a_changed_or_deleted_row(spark, tmp_path, caplog) -> None:
    root = write_project(tmp_path / "sql", {"people_now.sql": MERGE_WHOLE_TABLE})
    week2_rows, week3_rows = PEOPLE[:2] + LATER, [PEOPLE[0], *LATER]  # week 3: bob is gone
    _, week1 = build(spark, tmp_path / "data", root, WEEK1, PEOPLE)
    with caplog.at_level(logging.INFO, logger="jobs.sqlproject.incremental"):
        result, week2 = build(spark, tmp_path / "data", root, WEEK2, week2_rows)
    # The model selected all five rows; cy's changed, di and ed are new, ann and bob are as they were.
    assert result.models[0].new_rows == 3
    assert "2 row(s) inserted, 1 updated, 0 deleted" in caplog.text
    assert set(data_files(week1.feature_table("people_now") / "grp=minor").items()) <= set(
        data_files(week2.feature_table("people_now") / "grp=minor").items()
    )  # bob's file linked: its row did not change
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="jobs.sqlproject.incremental"):
        result, week3 = build(spark, tmp_path / "data", root, "2026-11-29", week3_rows)
    assert result.models[0].new_rows == 0 and "0 row(s) inserted, 0 updated, 1 deleted" in caplog.text
    assert sorted(r.name for r in read(spark, week3, "people_now").collect()) == ["ann", "cy", "di", "ed"]
    minors_before = data_files(week2.feature_table("people_now") / "grp=minor")
    minors_after = data_files(week3.feature_table("people_now") / "grp=minor")
    assert set(minors_after.items()) < set(minors_before.items())  # bob's file gone, ed's linked, none written
    assert data_files(week3.feature_table("people_now") / "grp=adult") == data_files(
        week2.feature_table("people_now") / "grp=adult"
    )
    same_as_full_refresh(
        spark,
        tmp_path / "again",
        root,
        "people_now",
        [(WEEK1, PEOPLE), (WEEK2, week2_rows), ("2026-11-29", week3_rows)],
    )


def test_a_merge_condition_that_cannot_be_evaluated_names_the_aliases(spark, tmp_path) -> None:
    bad = MERGE_WHOLE_TABLE.replace("DBT_INTERNAL_DEST.age <>", "DBT_INTERNAL_DEST.agee <>")
    root = write_project(tmp_path / "sql", {"people_now.sql": bad})
    build(spark, tmp_path / "data", root, WEEK1, PEOPLE)
    with pytest.raises(ModelExecutionError) as failed:
        build(spark, tmp_path / "data", root, WEEK2, PEOPLE)
    message = str(failed.value)
    assert "people_now (sql/people_now.sql)" in message and "the merge's conditions cannot be evaluated" in message
    assert "agee" in message and "new rows as DBT_INTERNAL_SOURCE" in message


def test_insert_overwrite_replaces_the_partitions_the_new_rows_fall_in(spark, tmp_path) -> None:
    overwrite = """
        {{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by=['grp']) }}
        SELECT id, name, age, IF(age >= 18, 'adult', 'minor') AS grp FROM {{ source('people') }}
        {% if is_incremental() %} WHERE age < 18 {% endif %}
    """
    root = write_project(tmp_path / "sql", {"people_now.sql": overwrite})
    _, week1 = build(spark, tmp_path / "data", root, WEEK1, PEOPLE)
    adults = data_files(week1.feature_table("people_now") / "grp=adult")
    _, week2 = build(spark, tmp_path / "data", root, WEEK2, LATER)
    ids = sorted(r.id for r in read(spark, week2, "people_now").collect())
    assert ids == [1, 3, 5]  # adults from week 1 (linked); the minors are week 2's only
    assert set(adults.items()) <= set(data_files(week2.feature_table("people_now") / "grp=adult").items())


def test_a_whole_table_overwrite_keeps_what_the_model_selects_from_this(spark, tmp_path) -> None:
    """The staging pattern: rows parsed in earlier weeks are kept while their source row is, new ones are added."""
    keep = """
        {{ config(materialized='incremental', incremental_strategy='insert_overwrite') }}
        {% if is_incremental() %}
        SELECT * FROM {{ this }} WHERE id IN (SELECT id FROM {{ source('people') }})
        UNION ALL
        {% endif %}
        SELECT id, UPPER(name) AS name FROM {{ source('people') }}
        {% if is_incremental() %} WHERE id NOT IN (SELECT id FROM {{ this }}) {% endif %}
    """
    root = write_project(tmp_path / "sql", {"parsed.sql": keep})
    week2_rows = [PEOPLE[0], *LATER]  # bob deleted
    folder = same_as_full_refresh(spark, tmp_path, root, "parsed", [(WEEK1, PEOPLE), (WEEK2, week2_rows)])
    assert sorted(r.id for r in read(spark, folder, "parsed").collect()) == [1, 3, 4, 5]


def test_a_new_column_fails_by_default_and_leaves_both_outputs_intact(spark, tmp_path) -> None:
    root = write_project(tmp_path / "sql", {"events.sql": APPEND})
    _, week1 = build(spark, tmp_path / "data", root, WEEK1, PEOPLE)
    _, week2 = build(spark, tmp_path / "data", root, WEEK2, PEOPLE)
    files = data_files(week2.feature_table("events"))
    (root / "events.sql").write_text(
        APPEND.replace("SELECT id, name, age", "SELECT id, name, age, age + 1 AS next_age")
    )
    with pytest.raises(ModelExecutionError) as failed:
        build(spark, tmp_path / "data", root, WEEK2, PEOPLE + LATER[1:])
    message = str(failed.value)
    assert "events (sql/events.sql)" in message and "new column(s) next_age" in message
    assert "on_schema_change='append_new_columns'" in message and "--full-refresh" in message
    assert data_files(week2.feature_table("events")) == files  # the earlier output of this date, untouched
    assert read(spark, week1, "events").count() == 3


def test_append_new_columns_gives_earlier_rows_null(spark, tmp_path) -> None:
    root = write_project(tmp_path / "sql", {"events.sql": APPEND})
    build(spark, tmp_path / "data", root, WEEK1, PEOPLE)
    changed = APPEND.replace(
        "materialized='incremental'", "materialized='incremental', on_schema_change='append_new_columns'"
    )
    (root / "events.sql").write_text(
        changed.replace("SELECT id, name, age", "SELECT id, name, age, age + 1 AS next_age")
    )
    _, week2 = build(spark, tmp_path / "data", root, WEEK2, PEOPLE + LATER[1:])
    rows = {r.id: r.next_age for r in read(spark, week2, "events").collect()}
    assert rows == {1: None, 2: None, 3: None, 4: 46, 5: 16}


@pytest.mark.parametrize(
    ("config", "where", "expected"),
    [
        # the minors' partition is replaced by the new rows; the adults' rows stay, without the new column
        ("incremental_strategy='insert_overwrite'", "WHERE age < 18", {1: None, 3: None, 5: 16}),
        # bob is no longer selected (deleted), cy's age changed (replaced), di and ed are new
        (
            "unique_key='id', matched_condition='DBT_INTERNAL_DEST.age <> DBT_INTERNAL_SOURCE.age', "
            "not_matched_by_source_action='delete'",
            "",
            {1: None, 3: 73, 4: 46, 5: 16},
        ),
    ],
)
def test_a_table_rewritten_for_new_columns_keeps_what_its_strategy_keeps(
    spark, tmp_path, config: str, where: str, expected: dict
) -> None:
    model = f"""
        {{{{ config(materialized='incremental', partition_by=['grp'], {config}) }}}}
        SELECT id, name, age, IF(age >= 18, 'adult', 'minor') AS grp FROM {{{{ source('people') }}}}
        {{% if is_incremental() %}} {where} {{% endif %}}
    """
    root = write_project(tmp_path / "sql", {"people_now.sql": model})
    build(spark, tmp_path / "data", root, WEEK1, PEOPLE)
    (root / "people_now.sql").write_text(
        model.replace("partition_by=['grp'],", "partition_by=['grp'], on_schema_change='append_new_columns',").replace(
            "SELECT id, name, age,", "SELECT id, name, age, age + 1 AS next_age,"
        )
    )
    _, week2 = build(spark, tmp_path / "data", root, WEEK2, [PEOPLE[0], *LATER])
    assert {r.id: r.next_age for r in read(spark, week2, "people_now").collect()} == expected


def test_an_unreadable_previous_manifest_means_a_full_refresh_and_says_why(spark, tmp_path, caplog) -> None:
    root = write_project(tmp_path / "sql", {"events.sql": APPEND})
    _, week1 = build(spark, tmp_path / "data", root, WEEK1, PEOPLE)
    (week1.feature_table("events") / MANIFEST).write_text("{not json")
    with caplog.at_level(logging.INFO, logger="jobs.sqlproject.incremental"):
        result, _ = build(spark, tmp_path / "data", root, WEEK2, PEOPLE + LATER[1:])
    assert result.models[0].new_rows == 5  # every row selected again
    assert "events: full refresh: the manifest of its output of 2026-11-15 cannot be read" in caplog.text


def test_is_incremental_is_false_without_an_earlier_run_or_with_full_refresh(spark, tmp_path, caplog) -> None:
    root = write_project(tmp_path / "sql", {"events.sql": APPEND})
    with caplog.at_level(logging.DEBUG, logger="jobs.sqlproject.incremental"):
        build(spark, tmp_path / "data", root, WEEK2, PEOPLE)
    assert "events: full refresh: no earlier run has built it." in caplog.text
    compiled = CompiledProject.build(load_project(root), RunContext.for_ds(WEEK2))
    assert "MAX(id)" not in compiled.rendered["events"].sql  # compile renders a first run, as dbt's does


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("incremental_strategy='merge'", "incremental_strategy='merge' needs config(unique_key=...)"),
        ("incremental_strategy='append', unique_key='id'", "is used by incremental_strategy='merge' only"),
        ("incremental_strategy='delete+insert'", "must be one of append, merge, insert_overwrite"),
        ("on_schema_change='sync_all_columns'", "it drops columns of the earlier rows"),
        ("matched_condition='true'", "applies to incremental_strategy='merge' only (it is 'append')"),
        (
            "unique_key='id', not_matched_by_source_action='update set name = null'",
            "only 'delete' is. To change a previous row, select it from {{ this }}",
        ),
        (
            "unique_key='id', not_matched_by_source_condition='true'",
            "needs not_matched_by_source_action='delete'",
        ),
        ("unique_key='id', source_alias='a b'", "must be a plain name"),
    ],
)
def test_incremental_configs_that_cannot_work_are_refused(tmp_path, config: str, message: str) -> None:
    root = write_project(tmp_path / "sql", {"events.sql": APPEND.replace("'incremental'", f"'incremental', {config}")})
    with pytest.raises(CompilationError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        CompiledProject.build(load_project(root), RunContext.for_ds(WEEK2))


def test_linking_keeps_the_earlier_output_whole_when_the_new_one_is_removed(spark, tmp_path) -> None:
    root = write_project(tmp_path / "sql", {"events.sql": APPEND})
    _, week1 = build(spark, tmp_path / "data", root, WEEK1, PEOPLE)
    _, week2 = build(spark, tmp_path / "data", root, WEEK2, PEOPLE + LATER[1:])
    for path in week2.feature_table("events").rglob("*.parquet"):
        os.remove(path)
    assert read(spark, week1, "events").count() == 3


def test_a_unit_test_runs_a_model_incrementally_with_dbts_override(spark, tmp_path) -> None:
    from jobs.sqlproject.unittests import UnitTestRunner, collect_cases

    people = "{input: source('people'), rows: [{id: 1, name: ann}, {id: 4, name: di}]}"
    this = "{input: this, rows: [{id: 1, name: ann}]}"
    unit_tests = f"""
        unit_tests:
          - name: adds_only_new_ids
            overrides: {{macros: {{is_incremental: true}}}}
            given: [{people}, {this}]
            expect: {{rows: [{{id: 4}}]}}  # as in dbt: what the SQL selects, not the table after the merge
          - name: this_without_the_override
            given: [{people}, {this}]
            expect: {{rows: []}}
          - name: the_override_without_this
            overrides: {{macros: {{is_incremental: true}}}}
            given: [{people}]
            expect: {{rows: []}}
    """
    project = load_project(write_project(tmp_path / "sql", {"events.sql": APPEND, "events.yml": unit_tests}))
    runner = UnitTestRunner.for_project(spark, project)
    results = {case.name: runner.result(case) for case in collect_cases(project)}
    assert results["adds_only_new_ids"].status == "pass", results["adds_only_new_ids"].message
    assert "input: this is the model's previous output" in results["this_without_the_override"].message
    assert "give rows for this" in results["the_override_without_this"].message


def test_an_empty_partitioned_output_is_built_on(spark, tmp_path) -> None:
    """A partitioned table with no rows has no data file at all: its schema comes from its manifest."""
    partitioned = APPEND.replace("materialized='incremental'", "materialized='incremental', partition_by=['name']")
    partitioned = partitioned.replace("MAX(id)", "COALESCE(MAX(id), 0)")  # MAX of no rows is NULL
    root = write_project(tmp_path / "sql", {"events.sql": partitioned})
    _, week1 = build(spark, tmp_path / "data", root, WEEK1, [])
    assert not data_files(week1.feature_table("events"))
    result, week2 = build(spark, tmp_path / "data", root, WEEK2, PEOPLE)
    assert (result.models[0].rows, result.models[0].new_rows) == (3, 3)
