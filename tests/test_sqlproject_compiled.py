"""Nothing in the SQL project is silently ignored: each refusal names the file, the line and what is allowed.

No Spark needed: loading and building the project (``CompiledProject.build``) is where every one of these is caught,
which is also what ``compile``, ``ls`` and ``check`` do first.
"""

from __future__ import annotations

import re

import pytest

from jobs.errors import RetrainError
from jobs.run_context import RunContext
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.project import load_project
from tests.sqlproject_helpers import SOURCES, write_project

CTX = RunContext.for_ds("2026-11-22")
MODEL = {"staging/stg_people.sql": "SELECT * FROM {{ source('people') }}\n"}


def build(root):
    return CompiledProject.build(load_project(root), CTX)


def refused(tmp_path, files: dict[str, str], match: str, project_yml: str = "vars: {}\n", sources: str | None = None):
    root = write_project(tmp_path / "sql", {**MODEL, **files}, project_yml)
    if sources is not None:
        (root / "sources.yml").write_text(sources)
    with pytest.raises(RetrainError) as info:
        build(root)
    assert re.search(match, str(info.value)), str(info.value)
    return str(info.value)


SCHEMA_YML = """
    version: 2
    models:
      - name: stg_people
        columns:
          - name: id
            data_tests: [not_null]
"""


@pytest.mark.parametrize(
    ("path", "text", "match"),
    [
        (
            "staging/schema.yml",
            "version: 2\nmodel:\n  - name: stg_people\n",
            r"sql/staging/schema.yml, line 2: unknown key 'model' in a properties file\. "
            r"Allowed keys: version, models, seeds, unit_tests\.",
        ),
        (
            "staging/schema.yml",
            SCHEMA_YML.replace("        columns:", "        colums:"),
            r"sql/staging/schema.yml, line 4: unknown key 'colums' in the properties of 'stg_people'\. Allowed keys: "
            r"name, description, columns, data_tests, tests, config, meta\.",
        ),
        (
            "staging/schema.yml",
            SCHEMA_YML.replace("data_tests: [not_null]", "data_test: [not_null]"),
            r"sql/staging/schema.yml, line 6: unknown key 'data_test' in column 'id' of 'stg_people'\. Allowed keys: "
            r"name, description, data_tests, tests, data_type, meta\.",
        ),
        (
            "staging/stg_people.yml",
            "description: x\ntest:\n  - row_count_min: {min: 1}\n",
            r"sql/staging/stg_people.yml, line 2: unknown key 'test' in the properties of 'stg_people'\. Allowed keys: "
            r"description, columns, data_tests, tests, config, meta, unit_tests\.",
        ),
        (
            "staging/schema.yml",
            "unit_tests:\n  - name: t\n    model: stg_people\n    givn: []\n",
            r"sql/staging/schema.yml, line 4: unknown key 'givn' in unit test 't'\. Allowed keys: name, model, "
            r"description, given, expect, vars, ds, overrides\.",
        ),
        (
            "staging/schema.yml",
            "unit_tests:\n  - name: t\n    model: stg_people\n    given:\n      - input: source('people')\n"
            "        row: []\n",
            r"sql/staging/schema.yml, line 6: unknown key 'row' in a 'given' item of unit test 't'\. Allowed keys: "
            r"input, rows, format\.",
        ),
        (
            "staging/schema.yml",
            "models:\n  - name: stg_peeple\n",
            r"sql/staging/schema.yml, line 2: properties for model 'stg_peeple', which does not exist\.",
        ),
    ],
)
def test_unknown_keys_in_property_files(tmp_path, path, text, match) -> None:
    refused(tmp_path, {path: text}, match)


def test_unknown_key_in_project_yml(tmp_path) -> None:
    refused(
        tmp_path,
        {},
        r"sql/project.yml, line 2: unknown key 'model' in project.yml\. Allowed keys: name, vars, "
        r"models, seeds\.",
        project_yml="vars: {}\nmodel: {}\n",
    )


def test_unknown_folder_or_config_key_in_project_models(tmp_path) -> None:
    refused(
        tmp_path,
        {},
        r"sql/project.yml, line 3: unknown config key '\+materialised' under 'models:'\. "
        r"Allowed: \+materialized",
        project_yml="models:\n  staging:\n    +materialised: table\n",
    )
    refused(
        tmp_path,
        {},
        r"sql/project.yml, line 2: 'stagign' under 'models:' is neither a config key .* nor a "
        r"folder or model of the project \(staging\)",
        project_yml="models:\n  stagign:\n    +tags: [x]\n",
    )


def test_unknown_key_in_sources_yml(tmp_path) -> None:
    message = refused(
        tmp_path,
        {},
        r"sources.yml, line 7: unknown key 'colums' in the source 'people'\. Allowed keys: name, "
        r"description, table, query, partition_column, window_column, jdbc_options, columns, optional_columns, "
        r"incremental\.",
        sources=SOURCES.replace("columns:", "colums:"),
    )
    assert "sql/sources.yml" in message
    group = "sources:\n  - name: ecom\n    tables:\n      - name: orders\n        identifer: o\n"
    refused(
        tmp_path,
        {},
        r"sources.yml, line 5: unknown key 'identifer' in table 'orders' of source group 'ecom'\. "
        r"Allowed keys: name, description, identifier, query",
        sources=group,
    )


def test_unknown_key_in_a_seed_config(tmp_path) -> None:
    files = {"seeds/codes.csv": "code\nDE\n", "seeds/codes.yml": "config: {colum_types: {code: string}}\n"}
    refused(
        tmp_path,
        files,
        r"sql/seeds/codes.yml, line 1: unknown key 'colum_types' in config of 'codes'\. Allowed keys: "
        r"column_types",
    )


@pytest.mark.parametrize(
    ("test", "match"),
    [
        (
            "[not_nul]",
            r"sql/staging/schema.yml, line 6: unknown test 'not_nul'\. Tests: accepted_values, json_keys_present, "
            r"not_null, relationships, row_count_min, unique \(write your own",
        ),
        (
            "[{accepted_values: {value: [a]}}]",
            r"line 6: unknown key 'value' for test 'accepted_values'\. Arguments: "
            r"values, quote; config: severity, where, warn_if, error_if, name\.",
        ),
        ("[{not_null: {config: {severty: warn}}}]", r"line 6: unknown config 'severty' of 'not_null'\."),
        (
            "[{not_null: {error_if: 'more than 5'}}]",
            r"line 6: error_if must be a condition on the failure count like "
            r"'>10' or '!=0', or on its share of the tested rows like '>0.1%'\. Got 'more than 5' instead\.",
        ),
        ("[{not_null: {severity: fatal}}]", r"line 6: severity must be one of error, warn\. Got 'fatal'\."),
        ("[{relationships: {to: people, field: id}}]", r"line 6: relationships needs to: ref\('model'\)"),
        ("[{accepted_values: {values: []}}]", r"line 6: accepted_values needs 'values:', a non-empty list\."),
        ("[row_count_min]", r"line 6: 'row_count_min' is a model-level test; put it under the model's 'data_tests:'"),
    ],
)
def test_misspelt_or_misconfigured_tests(tmp_path, test, match) -> None:
    refused(tmp_path, {"staging/schema.yml": SCHEMA_YML.replace("[not_null]", test)}, match)


def test_a_custom_generic_test_is_known_and_checks_its_arguments(tmp_path) -> None:
    generic = (
        "{% test at_most(model, column_name, limit) %}\nSELECT * FROM {{ model }} WHERE {{ column_name }} > "
        "{{ limit }}\n{% endtest %}\n"
    )
    schema = SCHEMA_YML.replace("[not_null]", "[{at_most: {limit: 3}}]")
    root = write_project(tmp_path / "ok", {**MODEL, "tests/generic/at_most.sql": generic, "staging/schema.yml": schema})
    (test,) = build(root).tests
    assert test.name == "at_most(id)" and "`id` > 3" in test.query
    refused(
        tmp_path,
        {
            "tests/generic/at_most.sql": generic,
            "staging/schema.yml": SCHEMA_YML.replace("[not_null]", "[{at_most: {limt: 3}}]"),
        },
        r"line 6: unknown key 'limt' for test 'at_most'\. Arguments: limit;",
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            "{{ ref('a', 'b', 'c') }}",
            r"ref\(\) takes a model or seed name, optionally after the project's name: "
            r"ref\('stg_orders'\) or ref\('<the project's name>', 'stg_orders'\)\. Got ref\('a', 'b', 'c'\) instead\.",
        ),
        ("{{ ref() }}", r"ref\(\) takes a model or seed name.*Got ref\(\) instead\."),
        (
            "{{ source('a', 'b', 'c') }}",
            r"source\(\) takes a source's name, or a group and a table as in dbt.*"
            r"Got source\('a', 'b', 'c'\) instead\.",
        ),
        (
            "{{ source('ecom', 'people') }}",
            r"source\('ecom', 'people'\) names no source in sources.yml\. "
            r"Sources: source\('people'\)\.",
        ),
        ("{{ var() }}", r"var\(\) takes a var's name and optionally a default.*Got var\(\) instead\."),
        ("{{ var('a', 1, 2) }}", r"var\(\) takes a var's name.*Got var\('a', 1, 2\) instead\."),
        ("{{ ref('other_project', 'stg_people') }}", r"'other_project' is not this project"),
    ],
)
def test_wrong_arguments_name_file_and_line(tmp_path, call, match) -> None:
    message = refused(tmp_path, {"features/f.sql": f"-- f\nSELECT *\nFROM {call}\n"}, match)
    assert "Compilation error in f (sql/features/f.sql, line 3)" in message
    assert "TypeError" not in message


def test_ref_with_the_projects_name_and_a_seed(tmp_path) -> None:
    root = write_project(
        tmp_path / "sql",
        {
            **MODEL,
            "seeds/codes.csv": "code\nDE\n",
            "features/f.sql": "SELECT * FROM {{ ref('shop', 'stg_people') }} JOIN {{ ref('codes') }}\n",
        },
        project_yml="name: shop\n",
    )
    rendered = build(root).rendered["f"]
    assert rendered.refs == ("stg_people",) and rendered.seeds == ("codes",)


def test_a_model_described_twice_names_both_files(tmp_path) -> None:
    refused(
        tmp_path,
        {"staging/a.yml": "models:\n  - name: stg_people\n", "staging/b.yml": "models:\n  - name: stg_people\n"},
        r"The model 'stg_people' is described twice: in sql/staging/a.yml and in sql/staging/b.yml",
    )


def test_an_unknown_doc_block(tmp_path) -> None:
    refused(
        tmp_path,
        {"staging/schema.yml": "models:\n  - name: stg_people\n    description: \"{{ doc('nope') }}\"\n"},
        r"sql/staging/schema.yml, line 3: doc\('nope'\) names no \{% docs %\} block",
    )


def test_an_unknown_selector_method_or_tag(tmp_path) -> None:
    root = write_project(tmp_path / "sql", MODEL)
    compiled = build(root)
    with pytest.raises(RetrainError, match=r"--select 'tags:x': unknown selector method 'tags'\. Methods: path, tag"):
        compiled.selected_names(["tags:x"])
    with pytest.raises(RetrainError, match=r"--exclude 'tag:x' names no model\. Tags: none"):
        compiled.selected_names(None, ["tag:x"])
