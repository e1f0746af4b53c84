"""A project written the way a dbt analyst writes one (tests/dbt_project), built and tested end to end on Spark.

It has a ``dbt_project.yml`` (models under ``models/``, dbt-only keys), a ``packages.yml`` naming dbt_utils (the
built-in one) and a vendored package whose macros end with ``return()``, dbt_utils macros and tests, ``target``,
``env_var`` and ``this``, an ephemeral model, sources beside the models, an analysis, a seed with a short row and
single-digit-hour timestamps, a model that fails as it runs (what reads it is skipped), several models per
``schema.yml``, custom generic tests, folder materialization and tags, ``relationships``, severity / warn_if /
error_if / where, a docs block, and dbt's top-level ``unit_tests:``, one of them wrong on purpose.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from datetime import date, datetime

import pytest

from jobs import cli
from jobs.errors import ModelExecutionError, SqlProjectError
from jobs.run_context import RunContext
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.project import load_project
from jobs.sqlproject.seeds import register_seeds
from jobs.sqlproject.unittests import collect_cases, run_unit_tests
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

#: every data test of the project and what it gives on the data above
EXPECTED = {
    ("source('ecom', 'raw_customers')", "not_null(id)"): ("pass", 0),
    ("country_codes", "unique(code)"): ("pass", 0),
    ("country_codes", "not_null(code)"): ("pass", 0),
    ("promotions", "unique(code)"): ("pass", 0),
    ("stg_customers", "unique(customer_id)"): ("pass", 0),
    ("stg_customers", "not_null(customer_id)"): ("pass", 0),
    ("stg_customers", "relationships(country_code)"): ("warn", 1),  # XX is no country: severity warn
    ("stg_customers", "dbt_utils.not_null_proportion(country_code)"): ("pass", 0),
    ("stg_orders", "row_count_min(1)"): ("pass", 0),
    ("stg_orders", "dbt_utils.unique_combination_of_columns"): ("pass", 0),
    ("stg_orders", "dbt_utils.recency"): ("pass", 0),  # 21 days before the run, within 30
    ("stg_orders", "unique(order_id)"): ("pass", 0),
    ("stg_orders", "not_null(order_id)"): ("pass", 0),
    ("stg_orders", "accepted_values(status)"): ("warn", 1),  # 'lost': 1 of 6 rows, error_if >50%
    ("stg_orders", "relationships(customer_id)"): ("pass", 0),
    ("stg_orders", "unique(order_key)"): ("pass", 0),
    ("stg_orders", "not_null(order_key)"): ("pass", 0),
    ("customers", "dbt_utils.expression_is_true"): ("pass", 0),
    ("customers", "unique(customer_id)"): ("pass", 0),
    ("customers", "not_null(customer_id)"): ("pass", 0),
    ("customers", "is_positive(lifetime_value)"): ("pass", 0),  # where: orders > 0 leaves out dan's 0
    ("orders", "not_null(order_id)"): ("pass", 0),
    ("orders", "is_positive(amount)"): ("warn", 1),  # severity warn
    ("orders", "at_most(amount)"): ("warn", 2),  # error_if >2
    ("orders", "dbt_utils.accepted_range(amount)"): ("pass", 0),
    ("orders", "shop_utils.not_negative(amount)"): ("pass", 0),
    ("order_status_counts", "unique(customer_id)"): ("pass", 0),
    ("order_promotions", "accepted_values(code)"): ("pass", 0),
    ("order_days", "unique(date_day)"): ("pass", 0),
    ("order_days", "dbt_utils.at_least_one(date_day)"): ("pass", 0),
    ("risky_orders", "not_null(amount)"): ("skipped", 0),  # risky_orders failed
    ("risky_order_summary", "not_null(orders)"): ("skipped", 0),  # risky_order_summary was skipped
    ("stg_orders,stg_customers", "no_order_before_its_customer"): ("pass", 0),
}
BUILT = {
    "stg_customers": "view",
    "stg_orders": "view",
    "int_order_amounts": "ephemeral",
    "customers": "table",
    "orders": "view",
    "order_status_counts": "table",
    "order_promotions": "table",
    "order_days": "table",
    "run_info": "view",
}


@pytest.fixture(scope="module")
def project():
    return load_project(PROJECT_DIR)


@pytest.fixture(scope="module")
def built(spark, settings, tmp_path_factory):
    """``retrain transform`` on the project, as an analyst runs it: (its output, its exit code, transform.json)."""
    data_dir = tmp_path_factory.mktemp("dbt_shape")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATA_DIR", str(data_dir))
        env.setenv("SHOP_REGION", "north")
        env.setenv("RETRAIN_HOME", str(REPO_ROOT))
        env.setenv("SPARK_MASTER", settings.spark_master)
        run_settings = settings.from_env(root=REPO_ROOT)
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
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["transform", "--ds", CTX.ds_str, "--project-dir", str(PROJECT_DIR), "--target", "ci"])
    summary = json.loads(folder.transform_summary.read_text())
    return run_settings, out.getvalue(), code, summary


def test_a_failing_model_skips_what_reads_it_and_the_rest_is_built(built) -> None:
    run_settings, out, code, summary = built
    assert code == 1  # something failed
    status = {m["name"]: m["status"] for m in summary["models"]}
    assert status == {**dict.fromkeys(BUILT, "success"), "risky_orders": "error", "risky_order_summary": "skipped"}
    models = {m["name"]: m for m in summary["models"]}
    assert "risky_orders (dbt_project/models/marts/risky_orders.sql" in models["risky_orders"]["message"]
    assert "order 14 has an unknown status: lost" in models["risky_orders"]["message"]
    assert models["risky_order_summary"]["message"] == "reads risky_orders, which failed"
    features = run_settings.run_folder(CTX.ds_str).features
    assert sorted(p.name for p in features.iterdir()) == [
        "customers",
        "order_days",
        "order_promotions",
        "order_status_counts",
    ]
    assert summary["summary"] == {"PASS": 36, "WARN": 4, "ERROR": 1, "SKIP": 3, "TOTAL": 44}
    lines = out.splitlines()
    assert any(line.startswith("risky_orders             table  ERROR Spark failed while running") for line in lines)
    assert "risky_order_summary      table  SKIP  reads risky_orders, which failed" in lines
    assert lines[-1] == "Done. PASS=36 WARN=4 ERROR=1 SKIP=3 TOTAL=44"


def test_transform_raises_the_first_failure_once_everything_ran(spark, built) -> None:
    from jobs.transform import transform

    run_settings = built[0]
    with pytest.raises(ModelExecutionError, match=r"risky_orders .*unknown status: lost") as info:
        transform(run_settings, CTX, spark, project_dir=PROJECT_DIR, select=["risky_orders+", "orders"])
    assert "Done. PASS=1 WARN=0 ERROR=1 SKIP=1 TOTAL=3" in str(info.value)
    # The first error in full; then one line per model that did not build.
    after = str(info.value).split("Done. PASS=1 WARN=0 ERROR=1 SKIP=1 TOTAL=3\n")[1].splitlines()
    assert [line.split(":")[0] for line in after] == ["  ERROR risky_orders", "  SKIPPED risky_order_summary"]


def test_every_test_is_found_and_counted(built) -> None:
    tests = built[3]["data_tests"]
    found = {(t["model"], t["name"]): (t["status"], t["failures"]) for t in tests}
    assert found == EXPECTED
    assert len(tests) == 33


def test_materializations_and_model_config_wins(built) -> None:
    summary = built[3]
    kinds = {m["name"]: m["materialized"] for m in summary["models"] if m["status"] == "success"}
    assert kinds == BUILT
    assert next(m["rows"] for m in summary["models"] if m["name"] == "customers") == 4


def test_seed_types_short_rows_and_source_groups(spark, built, project) -> None:
    assert spark.table("country_codes").schema.simpleString() == "struct<code:string,country_name:string,eu:boolean>"
    assert spark.table("promotions").schema.simpleString() == (
        "struct<code:string,starts_at:timestamp,ends_at:timestamp,discount:bigint>"
    )
    legacy = spark.table("promotions").where("code = 'LEGACY'").collect()[0]
    assert legacy.starts_at == datetime(2026, 1, 1, 8) and legacy.ends_at is None and legacy.discount is None
    # Compared as timestamps, WELCOME (from 4:30:21) runs at every 10:00 order; as text it would run at none.
    codes = [r.code for r in spark.table("order_promotions").collect()]
    assert sorted(set(codes)) == ["LEGACY", "WELCOME"] and len(codes) == 12
    assert [s.call for s in project.sources.values()] == [
        "source('ecom', 'raw_customers')",
        "source('ecom', 'raw_orders')",
    ]
    assert project.sources["ecom__raw_orders"].relation_sql == "raw.orders"
    rows = {r.customer_id: r for r in spark.table("customers").collect()}
    assert rows[1].country_name == "Germany" and rows[1].lifetime_value == 12.5 and rows[4].country_name is None


def test_package_macros_and_dbt_utils(spark, built) -> None:
    assert sorted(r.country_code for r in spark.table("stg_customers").collect()) == ["DE", "FR", "US", "XX"]
    keys = {r.order_id: r.order_key for r in spark.table("stg_orders").collect()}
    assert keys[10] == hashlib.md5(b"10-1").hexdigest()  # dbt_utils' key: the same value as on any warehouse
    assert spark.table("orders").columns == ["order_id", "customer_id", "amount", "status"]  # star, but two
    assert [r.date_day for r in spark.table("order_days").orderBy("date_day").collect()] == [
        date(2026, 11, 1),
        date(2026, 11, 2),
        date(2026, 11, 3),
    ]
    counts = {r.customer_id: r.asDict() for r in spark.table("order_status_counts").collect()}
    assert counts[3] == {"customer_id": 3, "placed": 0, "shipped": 0, "completed": 0, "returned": 1}


def test_target_env_var_and_this(spark, built) -> None:
    from jobs.sqlproject.dbtcontext import invocation_id

    row = spark.table("run_info").collect()[0].asDict()
    assert row == {
        "target_name": "ci",
        "target_schema": "default",
        "region": "north",
        "model_view": "run_info",
        "model_identifier": "run_info",
        "invocation_id": invocation_id("shop", CTX.ds_str, (CTX.data_interval_start, CTX.data_interval_end)),
        "run_started_at": datetime(2026, 11, 22),
        "first_year": 2026,
        "is_dev": False,
    }


def test_dbt_only_keys_are_notices_and_analyses_are_not_models(project) -> None:
    keys = [notice.split(": ")[1].split(" ")[0] for notice in project.notices if "dbt_project.yml" in notice]
    assert keys == ["'version'", "'config-version'", "'profile'", "'clean-targets'", "'on-run-end'", "'+persist_docs'"]
    assert any("dbt-labs/dbt_utils is the built-in dbt_utils" in notice for notice in project.notices)
    assert "orders_by_month" not in project.models  # analyses/
    assert not any("vendor" in str(m.path) for m in project.models.values())
    assert {p.name for p in project.packages} == {"dbt", "dbt_utils", "shop_utils"}


def test_descriptions_resolve_docs_blocks(project) -> None:
    status = next(c for c in project.properties.models["stg_orders"].columns if c.name == "status")
    assert status.description.startswith("One of placed, shipped, completed or returned")


def test_selectors(project) -> None:
    compiled = CompiledProject.build(project, CTX)

    def chosen(*selectors: str, exclude: tuple[str, ...] = ()) -> set[str]:
        return compiled.selected_names(list(selectors), list(exclude))

    marts = {"customers", "orders", "order_status_counts", "order_promotions", "order_days", "run_info"}
    marts |= {"risky_orders", "risky_order_summary"}
    staging = {"stg_customers", "stg_orders", "int_order_amounts"}
    assert chosen("tag:nightly") == marts
    assert chosen("tag:staging") == staging
    assert chosen("config.materialized:ephemeral") == {"int_order_amounts"}
    assert chosen("path:staging") == chosen("staging") == chosen("path:models/staging/") == staging
    assert chosen("path:marts/orders.sql") == {"orders"}
    assert chosen("+customers") == {"stg_customers", "stg_orders", "customers"}
    assert chosen("int_order_amounts+") == {"int_order_amounts", "order_status_counts"} | {
        "risky_orders",
        "risky_order_summary",
    }
    assert chosen("path:marts,tag:finance") == {"orders"}
    assert (
        chosen("stg_customers stg_orders") == chosen("stg_customers", "stg_orders") == {"stg_customers", "stg_orders"}
    )
    assert chosen("+tag:nightly", exclude=("path:staging",)) == marts
    assert chosen(exclude=("tag:nightly",)) == staging


def test_unit_tests_run_and_one_fails_on_purpose(spark, project) -> None:
    compiled = CompiledProject.build(project, RunContext.for_ds("2026-11-22"))
    results = {r.id: r for r in run_unit_tests(spark, compiled)}
    assert [c.id for c in collect_cases(project)] == list(results)
    assert {i: r.status for i, r in results.items()} == {
        "customers::lifetime_value_sums_the_orders": "pass",
        "customers::deliberately_wrong_expectation": "fail",
        "orders::star_keeps_every_column_but_the_left_out_ones": "pass",
        "order_status_counts::statuses_become_columns": "pass",
    }
    wrong = results["customers::deliberately_wrong_expectation"]
    assert wrong.differing == (("lifetime_value", 6),)  # `COALESCE(SUM(o.amount), 0) AS lifetime_value`
    assert "20.0" in wrong.message and "12.5" in wrong.message  # chispa's table of both sides
    assert wrong.message.startswith("df1: the rows the model returned; df2: the rows the test expects.\n")


@pytest.mark.spark  # `retrain test` starts a Spark session
def test_retrain_test_fails_on_a_wrong_unit_test_with_chispas_diff(capsys, caplog) -> None:
    assert cli.main(["test", "--project-dir", str(PROJECT_DIR), "--select", "test_type:unit"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  unit test customers::deliberately_wrong_expectation (dbt_project/models/marts/schema.yml, line" in out
    assert "      lifetime_value differs: computed at dbt_project/models/marts/customers.sql, line 6" in out
    assert "\x1b[" not in out  # chispa's colours only on a terminal
    assert "Unit tests: 3 passed, 1 failed, 0 could not run." in out
    assert out.splitlines()[-1] == "Done. PASS=3 WARN=0 ERROR=1 SKIP=0 TOTAL=4"
    assert "1 test(s) failed or could not run" in caplog.text
    # One test, by its name; several with dbt's --select a b.
    assert cli.main(["test", "--project-dir", str(PROJECT_DIR), "--select", "lifetime_value_sums_the_orders"]) == 0
    args = ["--select", "orders", "order_status_counts", "--exclude", "test_type:data"]
    assert cli.main(["test", "--project-dir", str(PROJECT_DIR), *args]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Done. PASS=2 WARN=0 ERROR=0 SKIP=0 TOTAL=2"


def test_retrain_test_runs_the_data_tests_of_a_run(built, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(built[0].data_dir))
    select = ["--select", "tag:promotions", "risky_order_summary", "--exclude", "test_type:unit"]
    assert cli.main(["test", "--ds", CTX.ds_str, "--project-dir", str(PROJECT_DIR), *select]) == 0
    out = capsys.readouterr().out
    assert "Data tests: 1 passed, 0 warning(s), 0 error(s), 1 skipped." in out
    assert "  SKIP risky_order_summary: not_null(orders): skipped: reads risky_order_summary, which was skipped" in out
    assert out.splitlines()[-1] == "Done. PASS=1 WARN=0 ERROR=0 SKIP=1 TOTAL=2"


@pytest.mark.spark  # `retrain check` starts a Spark session
def test_check_compiles_every_yaml_test_and_unit_test_and_reports_every_error(capsys, caplog, tmp_path) -> None:
    copy = shutil.copytree(PROJECT_DIR, tmp_path / "shop")
    assert cli.main(["check", "--project-dir", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "33 data test(s) and 4 unit test(s) compiled and analysed (not run: `retrain test` runs them)." in out
    assert "OK customers (shop/models/marts/customers.sql)" in out
    assert "OK orders (shop/models/marts/orders.sql): order_id bigint, customer_id bigint, amount double" in out
    assert "WARN stg_customers" not in out and "column 'email' of stg_customers is described" in out
    # Two broken models, a tested column the model does not output and a property file naming a model that does not
    # exist: all four reported, before any run.
    schema = copy / "models" / "marts" / "schema.yml"
    schema.write_text(
        schema.read_text().replace(
            "- name: order_id\n        data_tests: [not_null]", "- name: order_idd\n        data_tests: [not_null]"
        )
    )
    (copy / "models" / "marts" / "broken_one.sql").write_text("SELECT {{ no_such_macro() }} AS x\n")
    (copy / "models" / "marts" / "broken_two.sql").write_text("SELECT nope FROM {{ ref('stg_orders') }}\n")
    (copy / "models" / "marts" / "more.yml").write_text("models:\n  - name: ordres\n")
    assert cli.main(["check", "--project-dir", str(copy)]) != 0
    logged = caplog.text
    assert "4 error(s) in the SQL project" in logged
    assert "shop/models/marts/more.yml, line 2: properties for model 'ordres', which does not exist" in logged
    assert "broken_one (shop/models/marts/broken_one.sql, line 1): 'no_such_macro' is undefined" in logged
    assert "broken_two (shop/models/marts/broken_two.sql, line 1)" in logged and "`nope`" in logged
    assert "column 'order_idd' of orders is described but the model does not output it" in logged


def test_a_model_that_does_not_render_blocks_neither_ls_nor_select(capsys, caplog, tmp_path) -> None:
    copy = shutil.copytree(PROJECT_DIR, tmp_path / "shop")
    (copy / "models" / "marts" / "broken.sql").write_text("SELECT {{ no_such_macro() }} AS x\n")
    assert cli.main(["ls", "--project-dir", str(copy), "--select", "+customers"]) == 0
    assert {line.split()[0] for line in capsys.readouterr().out.splitlines()} == {
        "stg_customers",
        "stg_orders",
        "customers",
    }
    assert "1 model(s) not selected could not be rendered: broken" in caplog.text
    assert cli.main(["compile", "--project-dir", str(copy)]) != 0  # all selected: said once the rest is printed
    assert "-- customers (shop/models/marts/customers.sql, table)" in capsys.readouterr().out
    assert "broken (shop/models/marts/broken.sql, line 1): 'no_such_macro' is undefined" in caplog.text


def test_ls_shows_grouped_sources_seeds_and_tags(capsys) -> None:
    assert cli.main(["ls", "--project-dir", str(PROJECT_DIR), "--select", "+customers"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(lines) == {"stg_customers", "stg_orders", "customers"}
    assert lines["stg_orders"].endswith("<- source:ecom.raw_orders") and "tags=staging" in lines["stg_orders"]
    assert "tags=nightly" in lines["customers"] and "seed:country_codes" in lines["customers"]


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
