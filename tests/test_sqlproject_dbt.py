"""What a dbt project brings with it, read and rendered without Spark: dbt_project.yml and its notices, packages and
their macros, return() and {% do %}, dbt's context names, vars rendered as written, sources in any YAML file, what
is not a model, config dbt has and we refuse with a reason, seeds read as dbt reads them, test selection."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import pytest

from jobs.cli import build_parser
from jobs.errors import CompilationError, RetrainError, SqlProjectError
from jobs.run_context import RunContext
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.dbtcontext import Target
from jobs.sqlproject.project import load_project
from jobs.sqlproject.render import Renderer
from jobs.sqlproject.seeds import read_seed
from jobs.sqlproject.testselect import select_tests
from tests.conftest import REPO_ROOT
from tests.sqlproject_helpers import write_project

CTX = RunContext.for_ds("2026-11-22")
MODEL = {"staging/stg_people.sql": "SELECT * FROM {{ source('people') }}\n"}


def sql_of(root, name: str, **load) -> str:
    project = load_project(root, **load)
    return Renderer.create(project, CTX, environ={"REGION": "north"}).render(project.models[name]).sql


def refused(root, match: str, **load) -> str:
    with pytest.raises(RetrainError) as info:
        CompiledProject.build(load_project(root, **load), CTX)
    assert re.search(match, str(info.value)), str(info.value)
    return str(info.value)


def test_return_and_do_and_macros_in_any_file(tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            **MODEL,
            # a.sql calls a macro of b.sql, loaded after it
            "macros/a.sql": """
                {% macro columns() -%}
                  {%- set found = [] -%}
                  {%- for name in base_columns() -%}{%- do found.append(name | upper) -%}{%- endfor -%}
                  {{ return(found) }}
                {%- endmacro %}
            """,
            "macros/b.sql": "{% macro base_columns() %}{{ return(['id', 'name']) }}{% endmacro %}\n",
            "features/f.sql": "SELECT {{ columns() | join(', ') }} FROM {{ ref('stg_people') }}\n",
        },
    )
    assert sql_of(root, "f") == "SELECT ID, NAME FROM stg_people\n"


def test_return_outside_a_macro_names_the_line(tmp_path) -> None:
    root = write_project(tmp_path / "sql", {**MODEL, "features/f.sql": "SELECT 1\n{{ return(1) }}\n"})
    refused(root, r"Compilation error in f \(sql/features/f.sql, line 2\): return\(\) is only valid inside a macro")


def test_a_package_folder_its_macros_dispatch_and_tests(tmp_path) -> None:
    files = {
        **MODEL,
        "vendor/tools/dbt_project.yml": "name: tools\n",
        "vendor/tools/macros/m.sql": """
            {% macro label(c) %}{{ return(adapter.dispatch('label', 'tools')(c)) }}{% endmacro %}
            {% macro default__label(c) %}lower({{ c }}){% endmacro %}
            {% macro spark__label(c) %}upper({{ c }}){% endmacro %}
            {% test short(model, column_name, most=3) %}
            select * from {{ model }} where length({{ column_name }}) > {{ most }}
            {% endtest %}
        """,
        "vendor/tools/models/not_a_model.sql": "SELECT {{ nonsense() }}\n",  # a package's models are not built
        "features/f.sql": "SELECT {{ tools.label('name') }} AS n FROM {{ ref('stg_people') }}\n",
        "features/f.yml": "columns:\n  - name: n\n    data_tests: [{tools.short: {most: 5}}]\n",
    }
    root = write_project(tmp_path / "sql", files, "name: shop\npackages: [vendor/tools]\n")
    compiled = CompiledProject.build(load_project(root), CTX)
    assert set(compiled.rendered) == {"stg_people", "f"}
    assert compiled.rendered["f"].sql == "SELECT upper(name) AS n FROM stg_people\n"  # spark__ before default__
    (test,) = compiled.tests
    assert test.name == "tools.short(n)" and "length(`n`) > 5" in test.query
    (root / "features" / "f.sql").write_text("SELECT {{ tools.labels('name') }} FROM {{ ref('stg_people') }}\n")
    refused(root, r"line 1\): tools.labels is undefined: the package 'tools' \(sql/project.yml, line 2\) has no macro")


def test_dispatch_follows_the_projects_search_order(tmp_path) -> None:
    files = {
        **MODEL,
        "macros/own.sql": "{% macro default__star(from, except=[]) %}my_star{% endmacro %}\n",
        "features/f.sql": "SELECT {{ adapter.dispatch('star', 'dbt_utils')(ref('stg_people')) }} FROM x\n",
    }
    project_yml = "name: shop\ndispatch:\n  - macro_namespace: dbt_utils\n    search_order: [shop, dbt_utils]\n"
    root = write_project(tmp_path / "sql", files, project_yml)
    assert sql_of(root, "f") == "SELECT my_star FROM x\n"


def test_packages_yml_hub_packages_are_the_built_in_or_installed_ones(tmp_path) -> None:
    files = {**MODEL, "features/f.sql": "SELECT {{ dbt_utils.generate_surrogate_key(['id']) }} AS k FROM t\n"}
    root = write_project(tmp_path / "sql", files)
    (root / "packages.yml").write_text(
        "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n  - package: calogica/dbt_date\n"
        "    version: 0.10.0\n"
    )
    message = refused(root, r"packages.yml, line 4: the package 'calogica/dbt_date' is not installed")
    assert "dbt_packages/dbt_date/" in message
    (root / "dbt_packages" / "dbt_date" / "macros").mkdir(parents=True)
    (root / "dbt_packages" / "dbt_date" / "dbt_project.yml").write_text("name: dbt_date\n")
    (root / "dbt_packages" / "dbt_date" / "macros" / "d.sql").write_text("{% macro today() %}d{% endmacro %}\n")
    project = load_project(root)
    assert {p.name for p in project.packages} == {"dbt", "dbt_utils", "dbt_date"}
    assert "md5(cast(concat(coalesce(cast(id as string), '_dbt_utils_surrogate_key_null_')) as string))" in sql_of(
        root, "f"
    )


def test_dbts_context_names(tmp_path) -> None:
    files = {
        **MODEL,
        "features/f.sql": """
            {{ log('rendering f', info=True) }}
            SELECT '{{ target.name }}' AS t, '{{ target.type }}' AS tt, '{{ env_var('REGION') }}' AS r,
              '{{ env_var('UNSET_ONE', 'x') }}' AS d, '{{ this }}' AS me, '{{ this.schema }}' AS s,
              '{{ ref('stg_people').identifier }}' AS i, '{{ source('people').identifier }}' AS si,
              '{{ invocation_id }}' AS inv, '{{ run_started_at.isoformat() }}' AS at,
              {{ modules.datetime.date(2026, 1, 2).day }} AS day, {{ execute }} AS ex
            FROM {{ source('people') }}
        """,
    }
    root = write_project(tmp_path / "sql", files, "name: shop\n")
    sql = sql_of(root, "f", target=Target(name="dev"))
    assert "'dev' AS t, 'spark' AS tt, 'north' AS r" in sql
    assert "'x' AS d, 'f' AS me, 'default' AS s" in sql
    assert "'stg_people' AS i, 'people' AS si" in sql
    inv = re.search(r"'([0-9a-f-]{36})' AS inv", sql).group(1)
    assert uuid.UUID(inv).version == 5 and inv == re.search(r"'([0-9a-f-]{36})' AS inv", sql_of(root, "f")).group(1)
    assert "'2026-11-22T00:00:00+00:00' AS at" in sql and "2 AS day, False AS ex" in sql


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            "{{ env_var('NOT_SET_HERE') }}",
            r"env_var\('NOT_SET_HERE'\): the environment variable NOT_SET_HERE is not set",
        ),
        ("{{ env_var('DATABASE_URL', 'x') }}", r"env_var\('DATABASE_URL'\) is refused: it holds a secret"),
        ("{{ env_var('DBT_ENV_SECRET_KEY') }}", r"is refused: it holds a secret"),
        ("{{ exceptions.raise_compiler_error('no such region') }}", r"line 2\): no such region"),
        ("{{ adapter.get_relation('a', 'b', 'c') }}", r"adapter.get_relation is not available"),
    ],
)
def test_context_refusals_name_the_line(tmp_path, call, match) -> None:
    root = write_project(tmp_path / "sql", {**MODEL, "features/f.sql": f"SELECT 1\n{call}\n"})
    message = refused(root, match)
    assert "Compilation error in f (sql/features/f.sql, line 2)" in message


def test_vars_compare_as_values_and_render_as_written_with_sql(tmp_path, caplog) -> None:
    files = {
        **MODEL,
        "features/f.sql": """
            SELECT {% if var('flag') %}1{% else %}0{% endif %} AS flag,
              {% if var('env') == 'prod' %}'p'{% endif %} AS env, {{ var('types') | length }} AS n,
              {{ var('since') | sql }} AS since, {{ var('types') }} AS listed
        """,
    }
    project_yml = "vars:\n  flag: false\n  env: prod\n  types: [a, b]\n  since: \"DATE '2026-01-01'\"\n"
    root = write_project(tmp_path / "sql", files, project_yml)
    assert "0 AS flag" in sql_of(root, "f") and "'p' AS env, 2 AS n" in sql_of(root, "f")
    assert "DATE '2026-01-01' AS since, 'a', 'b' AS listed" in sql_of(root, "f")
    # From the command line, | sql takes a value, never SQL that changes the query.
    assert "'2026-02-01' AS since" in sql_of(root, "f", vars_overrides={"since": "'2026-02-01'"})
    attack = {"since": "1 OR 1=1"}
    with pytest.raises(CompilationError, match=r"var\('since'\) \| sql: '1 OR 1=1' comes from --vars"):
        sql_of(root, "f", vars_overrides=attack)
    # A value that already is quoted SQL, rendered as a literal, is quoted again: said.
    (root / "features" / "f.sql").write_text("SELECT {{ var('since') }} AS since\n")
    (root / "project.yml").write_text("vars:\n  since: \"'1998-12-01'\"\n")
    assert sql_of(root, "f") == "SELECT '\\'1998-12-01\\'' AS since\n"
    assert "already looks like quoted SQL" in caplog.text and "{{ var('since') | sql }}" in caplog.text


def test_dbt_project_yml_keys_are_understood_or_noticed(tmp_path) -> None:
    root = tmp_path / "shop"
    write_project(root, {"models/staging/stg_people.sql": MODEL["staging/stg_people.sql"]})
    (root / "project.yml").unlink()
    (root / "dbt_project.yml").write_text(
        "name: shop\nconfig-version: 2\nprofile: shop\nmodel-paths: [models]\nvars: {x: 1}\n"
        "models:\n  shop:\n    staging:\n      +materialized: table\n      +schema: stg\n"
    )
    project = load_project(root)
    assert project.name == "shop" and project.vars == {"x": 1}
    assert project.models["stg_people"].parts == ("staging", "stg_people")
    assert [n.split(": ", 1)[1] for n in project.notices] == [
        "'config-version' has no effect here: there is one version of this file.",
        "'profile' has no effect here: the connection is the pipeline's settings (DATABASE_URL), not a profiles.yml.",
        "'+schema' has no effect here: a model is a temp view or a Parquet table of the run, in no schema.",
    ]
    assert CompiledProject.build(project, CTX).rendered["stg_people"].config.materialized == "table"
    (root / "dbt_project.yml").write_text("name: shop\nmodel-path: [models]\n")
    refused(root, r"shop/dbt_project.yml, line 2: unknown key 'model-path' in dbt_project.yml\. Allowed keys: name")


def test_sources_in_any_yaml_file_and_what_is_not_a_model(tmp_path) -> None:
    files = {
        "models/staging/stg_people.sql": "SELECT * FROM {{ source('crm', 'people') }}\n",
        "models/staging/_crm.yml": """
            version: 2
            sources:
              - name: crm
                loader: airbyte
                freshness: {warn_after: {count: 1, period: day}}
                partition_column: id
                window_column: created_at
                tables:
                  - name: people
                    columns:
                      - {name: id, data_type: bigint, data_tests: [unique]}
                      - {name: created_at, data_type: timestamp}
        """,
        "analyses/a.sql": "SELECT {{ nonsense() }}\n",
        "snapshots/s.sql": "{% snapshot s %}select 1{% endsnapshot %}\n",
        "target/compiled/shop/models/x.sql": "SELECT stale\n",
    }
    root = write_project(tmp_path / "shop", files, "name: shop\nmodel-paths: [models, analyses]\n")
    (root / "sources.yml").unlink()
    project = load_project(root)
    assert list(project.sources) == ["crm__people"] and set(project.models) == {"stg_people"}
    (test,) = CompiledProject.build(project, CTX).tests
    assert test.model == "source('crm', 'people')" and test.name == "unique(id)"


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ("file_format='delta'", r"file_format='delta'\) is not supported: .* \(Delta Lake needs its Spark extension"),
        ("file_format='iceberg'", r"Iceberg needs its Spark extension"),
        (
            "materialized='snapshot'",
            r"config\(materialized='snapshot'\) must be one of view, table, ephemeral, incremental",
        ),
    ],
)
def test_config_refused_with_the_reason(tmp_path, config, match) -> None:
    root = write_project(tmp_path / "sql", {**MODEL, "features/f.sql": f"{{{{ config({config}) }}}}\nSELECT 1\n"})
    refused(root, match)


def test_config_dbt_has_that_changes_nothing_here(tmp_path) -> None:
    model = "{{ config(materialized='ephemeral', file_format='parquet', transient=true) }}\nSELECT 1 AS x\n"
    root = write_project(tmp_path / "sql", {**MODEL, "features/f.sql": model})
    compiled = CompiledProject.build(load_project(root), CTX)
    assert compiled.rendered["f"].config.kind == "view" and compiled.rendered["f"].config.materialized == "ephemeral"
    assert compiled.renderer.notices == [
        "f (sql/features/f.sql): config 'transient' has no effect here: a Snowflake table option."
    ]


def test_seeds_are_read_as_dbt_reads_them(tmp_path) -> None:
    files = {**MODEL, "seeds/p.csv": "code,starts_at,n\nA,2026-11-01 4:30:21,1\nB,2026-11-01 10:00:00\n"}
    project = load_project(write_project(tmp_path / "sql", files))
    table = read_seed(project, project.seeds["p"])
    assert table.columns == {"code": "string", "starts_at": "timestamp", "n": "bigint"}
    assert table.rows == (("A", "2026-11-01 4:30:21", "1"), ("B", "2026-11-01 10:00:00", None))
    (project.seeds["p"].path).write_text("code,day\nA,2026-11-01\nB,01/11/2026\n")
    unreadable = r"sql/seeds/p.csv, line 3: column 'day' holds dates or timestamps, but '01/11/2026' is not one"
    with pytest.raises(SqlProjectError, match=unreadable):
        read_seed(project, project.seeds["p"])
    (tmp_path / "sql" / "seeds" / "p.yml").write_text("config: {column_types: {day: string}}\n")
    project = load_project(tmp_path / "sql")
    assert read_seed(project, project.seeds["p"]).columns["day"] == "string"
    (project.seeds["p"].path).write_text("code,day\nA,2026-11-01,extra\n")
    with pytest.raises(SqlProjectError, match=r"line 2: 3 fields, but the header has 2"):
        read_seed(project, project.seeds["p"])


def test_test_selection(tmp_path) -> None:
    files = {
        **MODEL,
        "staging/stg_people.yml": """
            columns:
              - name: id
                data_tests:
                  - not_null: {tags: [keys]}
                  - unique
            unit_tests:
              - name: keeps_people
                given: [{input: source('people'), rows: []}]
                expect: {rows: []}
        """,
        "tests/no_minors.sql": "SELECT * FROM {{ ref('stg_people') }} WHERE age < 18\n",
    }
    compiled = CompiledProject.build(load_project(write_project(tmp_path / "sql", files)), CTX)

    def names(*selectors: str, exclude: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
        chosen = select_tests(compiled, list(selectors), list(exclude))
        return [t.name for t in chosen.data], [c.name for c in chosen.unit]

    assert names() == (["not_null(id)", "unique(id)", "no_minors"], ["keeps_people"])
    assert names("tag:keys") == (["not_null(id)"], [])
    assert names("test_type:unit") == ([], ["keeps_people"])
    assert names("test_type:singular") == (["no_minors"], [])
    assert names("stg_people", exclude=("test_type:unit",)) == (["not_null(id)", "unique(id)", "no_minors"], [])
    assert names("keeps_people", "no_minors") == (["no_minors"], ["keeps_people"])
    with pytest.raises(RetrainError, match=r"--select 'nobody' names no model and no test\. Models: stg_people"):
        names("nobody")


def test_select_takes_several_selectors_after_one_option() -> None:
    args = build_parser().parse_args(["ls", "--select", "a", "b+", "--exclude", "c", "d", "--select", "e"])
    assert args.select == ["a", "b+", "e"] and args.exclude == ["c", "d"]


def test_a_closed_pipe_ends_quietly() -> None:
    retrain = [sys.executable, "-c", "import sys; from jobs.cli import main; sys.exit(main())"]
    done = subprocess.run(
        ["bash", "-c", '"$@" compile --project-dir tests/dbt_project | head -n 1', "-", *retrain],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.startswith("-- ")
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr
