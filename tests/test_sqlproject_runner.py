"""The SQL runner on a real Spark session: vars as literals, selection, materialisation, caching, data tests."""

from __future__ import annotations

import pytest

from jobs import cli
from jobs.errors import ConfigError, DataTestError, DependencyError, ModelExecutionError
from jobs.run_context import RunContext
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.datatests import run_tests
from jobs.sqlproject.graph import levels, select
from jobs.sqlproject.project import load_project
from jobs.sqlproject.render import Renderer
from jobs.sqlproject.runner import SqlRunner
from tests.conftest import REPO_ROOT
from tests.sqlproject_helpers import write_project

CTX = RunContext.for_ds("2026-11-22")
PEOPLE = [(1, "ann", 34, None), (2, "bob", 17, None), (3, "cy", 71, None)]
SCHEMA = "id bigint, name string, age int, created_at timestamp"


@pytest.fixture
def people(spark):
    frame = spark.createDataFrame(PEOPLE, SCHEMA)
    return lambda spark_, source: frame


PROJECT = {
    "staging/stg_people.sql": """
        {{ config(materialized='view', cache=true) }}
        SELECT id, name, age, CASE WHEN age >= {{ var('adult_age', 18) }} THEN 'adult' ELSE 'minor' END AS grp
        FROM {{ source('people') }}
        WHERE name <> {{ var('exclude_name', '') }}
    """,
    "features/adults.sql": """
        {{ config(materialized='table', partition_by=['grp'], repartition=2) }}
        SELECT * FROM {{ ref('stg_people') }} WHERE grp = 'adult'
    """,
    "features/counts.sql": """
        {{ config(materialized='table') }}
        SELECT grp, COUNT(*) AS n FROM {{ ref('stg_people') }} GROUP BY grp
    """,
    "features/summary.sql": """
        SELECT COUNT(*) AS adults FROM {{ ref('adults') }}
    """,
}


def test_var_cannot_inject_sql(spark, tmp_path, people) -> None:
    root = write_project(tmp_path / "sql", PROJECT)
    attack = "x' OR '1'='1"
    project = load_project(root, {"exclude_name": attack})
    sql = Renderer.create(project, CTX).render(project.models["stg_people"]).sql
    assert "name <> 'x\\' OR \\'1\\'=\\'1'" in sql
    runner = SqlRunner(spark, CompiledProject.build(project, CTX), tmp_path / "run" / "features")
    runner.run(people, ["counts"])
    # The attack is one harmless string: nobody is called that, so every row stays.
    assert spark.read.parquet(str(tmp_path / "run/features/counts")).groupBy().sum("n").collect()[0][0] == 3


def test_a_var_that_is_not_a_number_fails_cleanly(spark, tmp_path, people) -> None:
    root = write_project(tmp_path / "sql", PROJECT)
    project = load_project(root, {"adult_age": "18; DROP TABLE people"})
    with pytest.raises(
        ModelExecutionError,
        match=r"counts, in stg_people which it reads \(sql/staging/stg_people.sql, "
        r"line 2\): \[CAST_INVALID_INPUT\]",
    ):
        SqlRunner(spark, CompiledProject.build(project, CTX), tmp_path / "run" / "features").run(people, ["counts"])


def test_select_operators(tmp_path) -> None:
    graph = {"stg": (), "a": ("stg",), "b": ("stg",), "c": ("a",)}
    assert select(graph, ["a"]) == {"a"}
    assert select(graph, ["+a"]) == {"stg", "a"}
    assert select(graph, ["stg+"]) == {"stg", "a", "b", "c"}
    assert select(graph, ["a+", "b"]) == {"a", "b", "c"}
    assert select(graph, None) == set(graph)
    with pytest.raises(DependencyError, match="--select 'd' names no model. Models: a, b, c, stg"):
        select(graph, ["d"])


def test_tables_are_parquet_views_are_not_and_the_cache_is_released(spark, tmp_path, people) -> None:
    root = write_project(tmp_path / "sql", PROJECT)
    runner = SqlRunner(spark, CompiledProject.build(load_project(root), CTX), tmp_path / "run" / "features")
    result = runner.run(people)
    features = tmp_path / "run" / "features"
    assert sorted(p.name for p in features.iterdir()) == ["adults", "counts"]
    assert sorted(p.name for p in (features / "adults").glob("grp=*")) == ["grp=adult"]
    assert (features / "adults" / "_manifest.json").is_file()
    assert result.rows("adults") == 2 and result.rows("counts") == 2
    assert [m.name for m in result.models] == ["stg_people", "adults", "counts", "summary"]
    assert not spark.catalog.isCached("stg_people")
    assert spark.table("summary").collect()[0].adults == 2


def test_selected_model_reads_tables_built_earlier_and_asks_for_missing_ones(spark, tmp_path, people) -> None:
    root = write_project(tmp_path / "sql", PROJECT)
    runner = SqlRunner(spark, CompiledProject.build(load_project(root), CTX), tmp_path / "run" / "features")
    with pytest.raises(ConfigError, match=r"The table adults has not been built for this run yet"):
        runner.run(people, ["summary"])
    runner.run(people, ["+adults"])
    result = runner.run(people, ["summary"])
    assert [m.name for m in result.models] == ["summary"]


def test_compiled_sql_runs_in_spark_as_is(spark, settings, capsys) -> None:
    assert cli.main(["compile", "--select", "diabetes_features", "--ds", "2026-11-22"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("-- diabetes_features (sql/features/diabetes_features.sql, table)")
    SqlRunner(spark, CompiledProject.build(load_project(REPO_ROOT / "sql"), CTX)).check(["+stg_predictions"])
    columns = spark.sql(printed).columns
    assert columns[:3] == ["record_id", "user_id", "created_at"] and columns[-1] == "label"


def test_ls_shows_the_graph_with_materializations(capsys) -> None:
    assert cli.main(["ls", "--select", "stg_predictions+"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["stg_predictions", "incremental"]
    assert any(line.startswith("quarantine ") and "partition_by=quarantine_reason" in line for line in lines)
    assert len(lines) == 5


DATA_TESTS = {
    **PROJECT,
    "features/adults.yml": """
        columns:
          - name: id
            tests: [not_null, unique]
          - name: grp
            tests:
              - accepted_values: {values: [adult]}
        tests:
          - row_count_min: {min: 5, severity: warn}
    """,
    "features/counts.yml": """
        columns:
          - name: grp
            tests:
              - accepted_values: {values: [adult, "{child}"]}
    """,
    "tests/no_teenagers.sql": """
        SELECT * FROM {{ ref('stg_people') }} WHERE age BETWEEN 13 AND 19
    """,
}


def test_data_tests_report_failures_and_severity(spark, tmp_path, people) -> None:
    root = write_project(tmp_path / "sql", DATA_TESTS)
    project = load_project(root)
    SqlRunner(spark, CompiledProject.build(project, CTX), tmp_path / "run" / "features").run(people)
    results = {(r.model, r.name): r for r in run_tests(spark, CompiledProject.build(project, CTX).tests)}
    assert results[("adults", "unique(id)")].passed
    assert results[("adults", "accepted_values(grp)")].passed
    assert results[("adults", "row_count_min(5)")].failures == 3
    assert results[("adults", "row_count_min(5)")].severity == "warn"
    assert results[("counts", "accepted_values(grp)")].failures == 1
    assert "1 rows where grp is not one of ['adult', '{child}']" in results[("counts", "accepted_values(grp)")].message
    assert results[("stg_people", "no_teenagers")].failures == 1


def test_transform_stops_on_an_error_severity_failure(spark, settings, tmp_path) -> None:
    import dataclasses

    from jobs.transform import transform

    root = write_project(tmp_path / "sql", DATA_TESTS)
    run_settings = dataclasses.replace(settings, data_dir=tmp_path / "data")
    raw = run_settings.run_folder("2026-11-22").snapshot("people")
    spark.createDataFrame(PEOPLE, SCHEMA).write.parquet(str(raw))
    with pytest.raises(DataTestError) as info:
        transform(run_settings, CTX, spark, project_dir=root)
    message = str(info.value)
    assert "2 data test(s) failed, so the run stops before training" in message
    assert (
        "counts: accepted_values(grp): 1 rows where grp is not one of ['adult', '{child}'] (50% of 2 rows) "
        "(sql/features/counts.yml, line 4)" in message
    )
    assert "stg_people: no_teenagers" in message and "row_count_min" not in message  # warnings do not stop


OBSERVED = {
    **DATA_TESTS,
    # A partition column's '' is read back as NULL: its test must count what was written, so it is queried.
    "features/by_group.sql": """
        {{ config(materialized='table', partition_by=['grp']) }}
        SELECT id, CASE WHEN age > 60 THEN '' ELSE grp END AS grp FROM {{ ref('stg_people') }}
    """,
    "features/by_group.yml": """
        columns:
          - name: grp
            tests: [not_null]
          - name: id
            tests:
              - not_null: {where: "id IN (SELECT id FROM stg_people)"}
    """,
    "features/nobody.sql": """
        {{ config(materialized='table') }}
        SELECT * FROM {{ ref('stg_people') }} WHERE FALSE
    """,
    "features/nobody.yml": """
        tests:
          - row_count_min: {min: 1}
    """,
}


def test_counts_observed_while_writing_equal_the_counts_of_querying_the_tables(spark, tmp_path, people, caplog) -> None:
    from jobs.sqlproject.datatests import observed_metrics

    compiled = CompiledProject.build(load_project(write_project(tmp_path / "sql", OBSERVED)), CTX)
    runner = SqlRunner(spark, compiled, tmp_path / "run" / "features")
    partitions = {name: r.config.partition_by for name, r in compiled.rendered.items()}
    runs = runner.run(people, observe=observed_metrics(compiled.tests, partitions))
    # The tables are observed; the view and the singular test are queried.
    assert sorted(runner.observed) == ["adults", "by_group", "counts", "nobody"]
    assert (runs.rows("adults"), runs.rows("counts"), runs.rows("nobody")) == (2, 2, 0)
    # by_group: the partition column's test, and the test whose where: has a subquery (Spark observes none, nor
    # the rows it filters), are left to the query; the rows the first one tests are observed.
    assert runner.observed["by_group"] == {"r0": 3}
    assert "Writing" not in caplog.text

    def counts(**observed):
        return [(r.model, r.name, r.failures, r.rows) for r in run_tests(spark, compiled.tests, **observed)]

    observed, queried = counts(observed=runner.observed), counts()
    assert observed == queried
    assert ("adults", "row_count_min(5)", 3, 2) in observed and ("counts", "accepted_values(grp)", 1, 2) in observed
    assert ("by_group", "not_null(grp)", 1, 3) in observed and ("nobody", "row_count_min(1)", 1, 0) in observed


def test_a_test_that_breaks_while_the_table_is_written_is_named_and_the_table_still_written(
    spark, settings, tmp_path, caplog
) -> None:
    import dataclasses

    from jobs.errors import SqlProjectError
    from jobs.transform import transform

    project = {
        **DATA_TESTS,
        "features/counts.yml": """
        columns:
          - name: grp
            tests:
              - not_null: {where: "CAST(grp AS INT) > 0"}
    """,
    }
    root = write_project(tmp_path / "sql", project)
    run_settings = dataclasses.replace(settings, data_dir=tmp_path / "data")
    spark.createDataFrame(PEOPLE, SCHEMA).write.parquet(str(run_settings.run_folder("2026-11-22").snapshot("people")))
    named = r"Data test not_null\(grp\) on counts \(sql/features/counts.yml, line 4\) could not run: .*CAST_INVALID"
    with pytest.raises(SqlProjectError, match=named):
        transform(run_settings, CTX, spark, project_dir=root)
    assert "Writing counts failed ([CAST_INVALID_INPUT]" in caplog.text
    assert "A data test counted during the write or the model itself broke it" in caplog.text
    counts = run_settings.run_folder("2026-11-22").features / "counts"
    assert spark.read.parquet(str(counts)).count() == 2


def test_a_model_that_fails_while_its_tests_are_counted_is_reported_as_the_models_failure(
    spark, settings, tmp_path, caplog
) -> None:
    import dataclasses

    from jobs.transform import transform

    project = {
        **DATA_TESTS,
        "features/counts.sql": """
        {{ config(materialized='table') }}
        SELECT grp, CASE WHEN COUNT(*) > 1 THEN raise_error('too many') END AS n FROM {{ ref('stg_people') }}
        GROUP BY grp
    """,
    }
    root = write_project(tmp_path / "sql", project)
    run_settings = dataclasses.replace(settings, data_dir=tmp_path / "data")
    spark.createDataFrame(PEOPLE, SCHEMA).write.parquet(str(run_settings.run_folder("2026-11-22").snapshot("people")))
    with pytest.raises(ModelExecutionError, match=r"running counts \(sql/features/counts.sql\): .*too many"):
        transform(run_settings, CTX, spark, project_dir=root)
    assert "A data test counted during the write or the model itself broke it" in caplog.text
    assert not (run_settings.run_folder("2026-11-22").features / "counts").exists()


def test_independent_tables_are_built_together_and_a_failure_leaves_the_others_whole(spark, tmp_path, people) -> None:
    project = {
        **PROJECT,
        "features/broken.sql": """
            {{ config(materialized='table') }}
            SELECT id, CASE WHEN age > 60 THEN raise_error('age out of range') END AS x FROM {{ ref('stg_people') }}
        """,
    }
    root = write_project(tmp_path / "sql", project)
    runner = SqlRunner(spark, CompiledProject.build(load_project(root), CTX), tmp_path / "run" / "features")
    with pytest.raises(ModelExecutionError, match=r"broken \(sql/features/broken.sql"):
        runner.run(people, threads=4)
    features = tmp_path / "run" / "features"
    # adults and counts ran beside broken and were written whole; broken left nothing behind.
    assert sorted(p.name for p in features.iterdir()) == ["adults", "counts"]
    assert spark.read.parquet(str(features / "counts")).groupBy().sum("n").collect()[0][0] == 3


def test_threads_do_not_change_what_is_built_nor_the_order_it_is_reported_in(spark, tmp_path, people) -> None:
    root = write_project(tmp_path / "sql", PROJECT)
    results = {}
    for threads in (1, 4):
        runner = SqlRunner(spark, CompiledProject.build(load_project(root), CTX), tmp_path / f"run{threads}")
        result = runner.run(people, threads=threads)
        results[threads] = [(m.name, m.materialized, m.rows) for m in result.models]
        assert not spark.catalog.isCached("stg_people")
    assert results[1] == results[4]
    assert [name for name, _, _ in results[4]] == ["stg_people", "adults", "counts", "summary"]


def test_levels_group_models_that_do_not_read_each_other() -> None:
    graph = {"stg": (), "a": ("stg",), "b": ("stg",), "c": ("a",), "d": ("c", "b")}
    order = ["stg", "a", "b", "c", "d"]
    assert levels(graph, order, order) == [["stg"], ["a", "b"], ["c"], ["d"]]
    assert levels(graph, order, {"b", "d"}) == [[], ["b"], [], ["d"]]
