"""A project written the way a dbt analyst writes one (tests/dbt_project), built and tested end to end on Spark.

It has several models per ``schema.yml``, ``data_tests:`` and ``tests:``, two-argument sources of a source group, a
seed with typed columns, custom generic tests in ``tests/generic/`` and ``macros/``, folder-level
materialization and tags in ``project.yml``, ``relationships``, severity / warn_if / error_if / where, a docs block
and dbt's top-level ``unit_tests:``.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime

import pytest
from chispa import assert_df_equality

from jobs import cli
from jobs.errors import SqlProjectError
from jobs.run_context import RunContext
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.project import load_project
from jobs.sqlproject.seeds import register_seeds
from jobs.sqlproject.unittests import UnitTestRunner, collect_cases
from tests.conftest import REPO_ROOT
from tests.sqlproject_helpers import write_project

PROJECT_DIR = REPO_ROOT / "tests" / "dbt_project"
CTX = RunContext.for_ds("2026-11-22")
T = datetime(2026, 11, 1, 10)
CUSTOMERS = [(1, "ann", "de", T), (2, "bob", "FR ", T), (3, "cy", "US", T), (4, "dan", "XX", T)]
ORDERS = [
    (10, 1, 5.0, "placed", T),
    (11, 1, 7.5, "Shipped", T),
    (12, 2, 200.0, "completed", T),
    (13, 3, 0.0, "returned", T),
    (14, 3, 150.0, "lost", T),
    (15, 2, 20.0, "placed", T),
]

#: every test of the project and what it gives on the data above
EXPECTED = {
    ("country_codes", "unique(code)"): ("pass", 0),
    ("country_codes", "not_null(code)"): ("pass", 0),
    ("stg_customers", "unique(customer_id)"): ("pass", 0),
    ("stg_customers", "not_null(customer_id)"): ("pass", 0),
    ("stg_customers", "relationships(country_code)"): ("warn", 1),  # XX is no country: severity warn
    ("stg_orders", "row_count_min(1)"): ("pass", 0),
    ("stg_orders", "unique(order_id)"): ("pass", 0),
    ("stg_orders", "not_null(order_id)"): ("pass", 0),
    ("stg_orders", "accepted_values(status)"): ("warn", 1),  # 'lost': 1 of 6 rows, error_if >50%
    ("stg_orders", "relationships(customer_id)"): ("pass", 0),
    ("customers", "unique(customer_id)"): ("pass", 0),
    ("customers", "not_null(customer_id)"): ("pass", 0),
    ("customers", "is_positive(lifetime_value)"): ("pass", 0),  # where: orders > 0 leaves out dan's 0
    ("orders", "not_null(order_id)"): ("pass", 0),
    ("orders", "is_positive(amount)"): ("warn", 1),  # severity warn
    ("orders", "at_most(amount)"): ("warn", 2),  # error_if >2
    ("stg_orders,stg_customers", "no_order_before_its_customer"): ("pass", 0),
}


@pytest.fixture(scope="module")
def project():
    return load_project(PROJECT_DIR)


@pytest.fixture(scope="module")
def built(spark, settings, tmp_path_factory):
    from jobs.transform import transform

    run_settings = dataclasses.replace(settings, data_dir=tmp_path_factory.mktemp("dbt_shape"))
    folder = run_settings.run_folder(CTX.ds_str)
    schemas = {
        "ecom__raw_customers": ("id bigint, name string, country string, created_at timestamp", CUSTOMERS),
        "ecom__raw_orders": (
            "id bigint, customer_id bigint, amount double, status string, created_at timestamp",
            ORDERS,
        ),
    }
    for name, (schema, rows) in schemas.items():
        spark.createDataFrame(rows, schema).write.parquet(str(folder.snapshot(name)))
    result = transform(run_settings, CTX, spark, project_dir=PROJECT_DIR)
    return run_settings, result


def test_every_test_is_found_and_counted(built) -> None:
    _, result = built
    found = {(t.model, t.name): (t.status, t.failures) for t in result.tests}
    assert found == EXPECTED
    assert len(result.tests) == 17


def test_folder_materialization_and_model_config_wins(built, project) -> None:
    run_settings, result = built
    kinds = {m.name: m.materialized for m in result.models}
    assert kinds == {"stg_customers": "view", "stg_orders": "view", "customers": "table", "orders": "view"}
    features = run_settings.run_folder(CTX.ds_str).features
    assert sorted(p.name for p in features.iterdir()) == ["customers"]
    assert result.rows("customers") == 4


def test_seed_types_and_source_groups(spark, built, project) -> None:
    assert spark.table("country_codes").schema.simpleString() == "struct<code:string,country_name:string,eu:boolean>"
    assert [s.call for s in project.sources.values()] == [
        "source('ecom', 'raw_customers')",
        "source('ecom', 'raw_orders')",
    ]
    assert project.sources["ecom__raw_orders"].relation_sql == "raw.orders"
    rows = {r.customer_id: r for r in spark.table("customers").collect()}
    assert rows[1].country_name == "Germany" and rows[1].lifetime_value == 12.5 and rows[4].country_name is None


def test_a_seed_type_spark_does_not_know_is_named_with_the_seed(spark, tmp_path) -> None:
    files = {
        "staging/stg_people.sql": "SELECT * FROM {{ source('people') }}\n",
        "seeds/codes.csv": "code\nDE\n",
        "seeds/codes.yml": "config: {column_types: {code: varchr}}\n",
    }
    with pytest.raises(SqlProjectError) as info:
        register_seeds(spark, load_project(write_project(tmp_path / "sql", files, "vars: {}\n")))
    assert str(info.value) == (
        "sql/seeds/codes.csv: the seed's column types are not valid: "
        '[UNSUPPORTED_DATATYPE] Unsupported data type "VARCHR". SQLSTATE: 0A000'
    )


def test_descriptions_resolve_docs_blocks(project) -> None:
    status = next(c for c in project.properties.models["stg_orders"].columns if c.name == "status")
    assert status.description.startswith("One of placed, shipped, completed or returned")


def test_selectors(project) -> None:
    compiled = CompiledProject.build(project, CTX)

    def chosen(*selectors: str, exclude: tuple[str, ...] = ()) -> set[str]:
        return compiled.selected_names(list(selectors), list(exclude))

    assert chosen("tag:nightly") == {"customers", "orders"}
    assert chosen("tag:staging") == {"stg_customers", "stg_orders"}
    assert chosen("config.materialized:table") == {"customers"}
    assert chosen("path:staging") == chosen("staging") == chosen("path:dbt_project/staging/") == chosen("tag:staging")
    assert chosen("path:marts/orders.sql") == {"orders"}
    assert chosen("+customers") == {"stg_customers", "stg_orders", "customers"}
    assert chosen("stg_orders+") == {"stg_orders", "customers", "orders"}
    assert chosen("path:marts,tag:finance") == {"orders"}
    assert chosen("stg_customers stg_orders") == {"stg_customers", "stg_orders"}
    assert chosen("+tag:nightly", exclude=("path:staging",)) == {"customers", "orders"}
    assert chosen(exclude=("tag:nightly",)) == {"stg_customers", "stg_orders"}


def test_dbt_unit_tests_run(spark, project) -> None:
    cases = collect_cases(project)
    assert [c.id for c in cases] == ["customers::lifetime_value_sums_the_orders"]
    actual, expected = UnitTestRunner.for_project(spark, project).run(cases[0])
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.spark  # `retrain check` starts a Spark session
def test_check_compiles_every_yaml_test_and_unit_test(capsys, tmp_path) -> None:
    copy = shutil.copytree(PROJECT_DIR, tmp_path / "shop")
    assert cli.main(["check", "--project-dir", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "17 data test(s) and 1 unit test(s) compiled and analysed." in out
    assert "OK customers (shop/marts/customers.sql)" in out
    # A test on a column the model does not have is caught by check, before any run.
    schema = copy / "marts" / "schema.yml"
    schema.write_text(
        schema.read_text().replace(
            "- name: order_id\n        data_tests: [not_null]", "- name: order_idd\n        data_tests: [not_null]"
        )
    )
    assert cli.main(["check", "--project-dir", str(copy)]) != 0


def test_ls_shows_grouped_sources_seeds_and_tags(capsys) -> None:
    assert cli.main(["ls", "--project-dir", str(PROJECT_DIR), "--select", "+customers"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(lines) == {"stg_customers", "stg_orders", "customers"}
    assert lines["stg_orders"].endswith("<- source:ecom.raw_orders") and "tags=staging" in lines["stg_orders"]
    assert "tags=nightly" in lines["customers"] and "seed:country_codes" in lines["customers"]
