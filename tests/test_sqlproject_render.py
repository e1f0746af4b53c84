"""Every error of the SQL runner names the model file and line, and says what to do."""

from __future__ import annotations

import re

import pytest

from jobs.errors import CompilationError, DependencyError, ModelExecutionError
from jobs.run_context import RunContext
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.project import load_project
from jobs.sqlproject.render import Renderer
from jobs.sqlproject.runner import SqlRunner
from tests.sqlproject_helpers import write_project

CTX = RunContext.for_ds("2026-11-22")

MACROS = """
{% macro adult(column) -%}
CASE
  WHEN {{ column }} >= 18 THEN 1
  ELSE 0
END
{%- endmacro %}
"""


def runner(spark, root) -> SqlRunner:
    return SqlRunner(spark, CompiledProject.build(load_project(root), CTX))


def test_jinja_syntax_error_names_file_and_line(tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            "staging/a.sql": """
        SELECT id
        FROM {{ source('people') }}
        {% if %}
        WHERE age > 1
    """
        },
    )
    with pytest.raises(CompilationError, match=r"a \(sql/staging/a.sql, line 3\)") as info:
        Renderer.create(load_project(root), CTX).render_all()
    assert "> 3 | {% if %}" in str(info.value)


@pytest.mark.parametrize(
    ("line_3", "where", "says"),
    [
        # An unclosed block is shown where it opens, not where the file ends, with what closes it.
        ("{% if true %}", "line 3", "The {% if %} at line 3 is never closed: add {% endif %} where it should end."),
        ("{% for x in [1] %}", "line 3", "The {% for %} at line 3 is never closed: add {% endfor %}"),
        # A brace left open: the delimiters, on the line Jinja names.
        ("AND {{ 1 }", "line 3", "Jinja's delimiters are {{ ... }} for a value, {% ... %} for a statement"),
    ],
)
def test_a_jinja_syntax_error_says_how_to_fix_it(tmp_path, line_3: str, where: str, says: str) -> None:
    root = write_project(
        tmp_path / "sql",
        {"staging/a.sql": f"SELECT id\nFROM {{{{ source('people') }}}}\n{line_3}\nWHERE age > 1\n-- the end\n"},
    )
    with pytest.raises(CompilationError) as info:
        Renderer.create(load_project(root), CTX).render_all()
    message = str(info.value)
    assert f"a (sql/staging/a.sql, {where})" in message and says in message, message
    assert not re.search(r"[^.]\.\.(?!\.)", message.split("\n")[0]), message  # no sentence ends twice: "'if'.."


def test_undefined_name_is_an_error_not_empty_sql(tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            "staging/a.sql": """
        SELECT id,
          {{ not_a_macro('x') }} AS x
        FROM {{ source('people') }}
    """
        },
    )
    with pytest.raises(CompilationError, match=r"sql/staging/a.sql, line 2\).*'not_a_macro' is undefined"):
        Renderer.create(load_project(root), CTX).render_all()


def test_unknown_ref_lists_the_models(tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            "staging/stg.sql": "SELECT * FROM {{ source('people') }}\n",
            "features/f.sql": """
            -- features
            SELECT *
            FROM {{ ref('stgg') }}
        """,
        },
    )
    with pytest.raises(
        DependencyError,
        match=r"f \(sql/features/f.sql, line 3\): ref\('stgg'\) names no model. "
        r"Models: f, stg\.",
    ):
        Renderer.create(load_project(root), CTX).render_all()


def test_unknown_var_without_default_says_how_to_set_it(tmp_path) -> None:
    root = write_project(tmp_path / "sql", {"staging/a.sql": "SELECT {{ var('min_age') }} AS m\n"})
    with pytest.raises(CompilationError, match=r"line 1\): var\('min_age'\) has no value and no default.*--vars"):
        Renderer.create(load_project(root), CTX).render_all()


def test_unknown_config_key_lists_valid_keys(tmp_path) -> None:
    root = write_project(tmp_path / "sql", {"staging/a.sql": "{{ config(materialised='table') }}\nSELECT 1 AS x\n"})
    with pytest.raises(CompilationError, match=r"unknown config key\(s\) materialised. Valid keys: materialized"):
        Renderer.create(load_project(root), CTX).render_all()


def test_unresolved_column_points_at_the_template_line_after_a_macro(spark, tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            "macros/people.sql": MACROS,
            "staging/stg_people.sql": """
            {{ config(materialized='view') }}
            SELECT
              id,
              {{ adult('age') }} AS is_adult,
              nmae AS display_name
            FROM {{ source('people') }}
        """,
        },
    )
    with pytest.raises(ModelExecutionError) as info:
        runner(spark, root).check()
    message = str(info.value)
    assert "stg_people (sql/staging/stg_people.sql, line 5)" in message
    assert "nmae" in message and "`name`" in message  # Spark's suggestion survives
    assert "|   nmae AS display_name" in message  # the rendered line is shown


def test_type_mismatch_names_file_and_line(spark, tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            "features/f.sql": """
        SELECT
          id,
          date_add(created_at, DATE '2026-01-01') AS wrong
        FROM {{ source('people') }}
    """
        },
    )
    with pytest.raises(ModelExecutionError, match=r"f \(sql/features/f.sql, line 3\).*DATATYPE_MISMATCH"):
        runner(spark, root).check()


def test_cycle_is_reported_with_its_path(spark, tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            "staging/a.sql": "SELECT * FROM {{ ref('c') }}\n",
            "staging/b.sql": "SELECT * FROM {{ ref('a') }}\n",
            "staging/c.sql": "SELECT * FROM {{ ref('b') }}\n",
        },
    )
    cycle = r"Dependency cycle: (a -> c -> b -> a|b -> a -> c -> b|c -> b -> a -> c)"
    with pytest.raises(DependencyError, match=cycle) as info:
        runner(spark, root)
    for name in "abc":
        assert f"{name}: sql/staging/{name}.sql" in str(info.value)


@pytest.mark.parametrize("command", ["compile", "ls"])
def test_compile_and_ls_report_a_cycle_with_the_model_files(tmp_path, caplog, command) -> None:
    """compile and ls build the project as check and transform do, so the cycle names the same files."""
    from jobs import cli

    root = write_project(
        tmp_path / "sql",
        {"staging/a.sql": "SELECT * FROM {{ ref('b') }}\n", "staging/b.sql": "SELECT * FROM {{ ref('a') }}\n"},
    )
    assert cli.main([command, "--project-dir", str(root)]) != 0
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Dependency cycle: " in logged
    assert "\n  a: sql/staging/a.sql\n  b: sql/staging/b.sql" in logged


def test_duplicate_model_names_name_both_files(tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            "staging/people.sql": "SELECT 1 AS x\n",
            "features/people.sql": "SELECT 2 AS x\n",
        },
    )
    with pytest.raises(
        DependencyError,
        match=r"Two models are named 'people': .*features/people.sql and .*"
        r"staging/people.sql",
    ):
        load_project(root)


def test_runtime_error_names_the_model(spark, tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            "features/f.sql": """
        {{ config(materialized='table') }}
        SELECT CAST(name AS INT) AS n
        FROM {{ source('people') }}
    """
        },
    )
    spark.createDataFrame(
        [(1, "ann", 30, None)], "id bigint, name string, age int, created_at timestamp"
    ).createOrReplaceTempView("people_rows")
    runner_ = SqlRunner(spark, CompiledProject.build(load_project(root), CTX), tmp_path / "run" / "features")

    def reader(spark_, source):
        return spark_.table("people_rows")

    with pytest.raises(ModelExecutionError, match=r"f \(sql/features/f.sql, line 2\).*CAST_INVALID_INPUT"):
        runner_.run(reader)
    assert not (tmp_path / "run" / "features" / "f").exists()


def test_an_error_inside_a_macro_names_the_call_and_the_macro_line(tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            "macros/broken.sql": """
            {% macro scaled(column) -%}
            {{ column }} * {{ scale_factor }}
            {%- endmacro %}
        """,
            "features/f.sql": """
            SELECT
              {{ scaled('age') }} AS scaled_age
            FROM {{ source('people') }}
        """,
        },
    )
    with pytest.raises(CompilationError) as info:
        Renderer.create(load_project(root), CTX).render_all()
    message = str(info.value)
    assert "f (sql/features/f.sql, line 2): 'scale_factor' is undefined" in message
    assert "Raised inside a macro at sql/macros/broken.sql, line 2." in message
