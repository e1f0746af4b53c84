"""``retrain docs``: the site of the SQL project, written for a real run and looked at in a real browser (headless
Chromium): the graph's boxes, a model's page with its SQL and tests, no console errors, a screenshot in the run
folder. The graph's layout is checked without a browser."""

from __future__ import annotations

import re

import pytest

from jobs import cli
from jobs.demo.generator import generate
from jobs.demo.loader import load
from jobs.errors import ConfigError
from jobs.run_context import RunFolder
from jobs.sqlproject.docsite.catalog import Node
from jobs.sqlproject.docsite.graph import BOX_WIDTH, layout
from jobs.sqlproject.unittests import collect_cases

DS = "2026-11-22"
HREF = re.compile(r'href="([^"]*)"')
ID = re.compile(r'id="([^"]+)"')


def test_the_site_links_only_to_what_it_wrote(settings, tmp_path) -> None:
    """Without Spark or a run: every page is written, and every link and anchor between them resolves."""
    from jobs.run_context import RunContext
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.docsite.catalog import gather
    from jobs.sqlproject.docsite.pages import write_site
    from jobs.sqlproject.project import load_project
    from tests.conftest import REPO_ROOT

    compiled = CompiledProject.build(load_project(REPO_ROOT / "sql"), RunContext.for_ds(DS))
    index = write_site(gather(settings, compiled, None), tmp_path / "site")
    pages = sorted((tmp_path / "site").rglob("*.html"))
    assert index in pages and len(pages) == 1 + len(compiled.order)
    ids = {page: set(ID.findall(page.read_text(encoding="utf-8"))) for page in pages}
    broken = []
    for page in pages:
        for href in HREF.findall(page.read_text(encoding="utf-8")):
            path, _, anchor = href.partition("#")
            target = (page.parent / path).resolve() if path else page
            if not target.exists() or (anchor and target.suffix == ".html" and anchor not in ids[target]):
                broken.append(f"{page.name} -> {href}")
    assert not broken, broken
    assert "http" not in " ".join(HREF.findall(index.read_text(encoding="utf-8")))  # nothing leaves the site

    catalog = gather(settings, compiled, None)
    assert write_site(catalog, tmp_path / "site") == index  # an earlier site is replaced
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a site `retrain docs` wrote"):
        write_site(catalog, tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_the_graph_reads_left_to_right() -> None:
    nodes = [
        Node("source:s", "source", "s", "#"),
        Node("model:a", "model", "a", "#"),
        Node("model:b", "model", "b", "#"),
        Node("model:c", "model", "c", "#"),
        Node("recipe:r", "recipe", "r", "#"),
        Node("deployed:r", "deployed", "v1", "#"),
    ]
    edges = [("source:s", "model:a"), ("model:a", "model:b"), ("model:a", "model:c"), ("model:b", "recipe:r")]
    edges.append(("recipe:r", "deployed:r"))
    x = {node: position[0] for node, position in layout(nodes, edges).items()}
    assert x["source:s"] < x["model:a"] < x["model:b"] == x["model:c"] < x["recipe:r"] < x["deployed:r"]
    assert x["model:a"] - x["source:s"] > BOX_WIDTH  # boxes do not overlap


def test_retrain_docs_on_a_run_in_a_browser(spark, settings, empty_db, tmp_path, monkeypatch, capsys, page) -> None:
    from sklearn.dummy import DummyClassifier

    from jobs.ml.store import ModelStore

    load(empty_db, generate(4_000, 11))
    monkeypatch.setenv("RETRAIN_HOME", str(settings.root))
    monkeypatch.setenv("DATABASE_URL", empty_db.full_url())
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MODEL_STORE", str(tmp_path / "store"))
    assert cli.main(["extract", "--ds", DS]) == 0
    assert cli.main(["transform", "--ds", DS]) == 0
    store = ModelStore(tmp_path / "store")
    version, _ = store.write("heart", DS, DummyClassifier(), {}, {})
    store.promote("heart", version, reason="deployed for the test", actor="tests")
    capsys.readouterr()

    assert cli.main(["docs", "--ds", DS]) == 0
    folder = RunFolder.under(tmp_path / "data", DS)
    site = folder.docs
    assert f"Wrote the documentation of 5 model(s) to {site}" in capsys.readouterr().out
    models = ["stg_predictions", "diabetes_features", "heart_features", "liver_features", "quarantine"]
    assert sorted(p.stem for p in (site / "models").glob("*.html")) == sorted(models)

    page.goto((site / "index.html").as_uri())
    boxes = page.locator("svg.graph .node")
    shown = {boxes.nth(i).get_attribute("data-node") for i in range(boxes.count())}
    recipes = {f"recipe:{name}" for name in ("diabetes", "heart", "liver")}
    assert shown == {"source:predictions", *(f"model:{m}" for m in models), *recipes, "deployed:heart"}
    box = page.locator('svg.graph [data-node="model:heart_features"]').bounding_box()
    assert box and box["width"] > 100 and box["height"] > 30  # drawn, not just present
    assert page.locator("svg.graph .edge").count() == 9  # 1 source, 4 refs, 3 recipes, 1 deployed version
    assert page.locator("#quarantine td").count() > 0
    health = page.locator("#json-health").inner_text()
    assert "predictions.data, by record_type" in health and "never present" not in health
    page.screenshot(path=str(folder.path / "docs-index.png"), full_page=True)

    page.locator('svg.graph [data-node="model:heart_features"]').click()
    page.wait_for_url(re.compile(r".*/models/heart_features\.html$"))
    assert page.locator("#model-name").inner_text() == "heart_features"
    assert "FROM stg_predictions" in page.locator("#sql").inner_text()
    tests = page.locator("#data-tests").inner_text()
    assert "not_null(record_id)" in tests and "pass" in tests  # the run's result beside each test
    unit_tests = page.locator("#unit-tests").inner_text()
    for case in collect_cases(page_project()):
        if case.model.name == "heart_features":
            assert case.name in unit_tests
    assert "branches reached by the unit tests" in page.locator("#coverage").inner_text()
    assert "label" in page.locator("#columns").inner_text() and "int" in page.locator("#columns").inner_text()
    page.screenshot(path=str(folder.path / "docs-heart_features.png"), full_page=True)
    assert page.errors == [], page.errors
    assert (folder.path / "docs-index.png").stat().st_size > 10_000


def page_project():
    from jobs.sqlproject.project import load_project
    from tests.conftest import REPO_ROOT

    return load_project(REPO_ROOT / "sql")


def test_a_model_that_does_not_render_stops_the_site_with_its_error(tmp_path, monkeypatch, caplog) -> None:
    """As dbt's `docs generate`: a page needs the model's SQL, so its compilation error is the answer."""
    from tests.sqlproject_helpers import write_project

    root = write_project(tmp_path / "sql", {"a.sql": "SELECT id, {{ var('nope') }} AS x FROM {{ source('people') }}"})
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["docs", "--project-dir", str(root)]) == 1
    assert "Compilation error in a (sql/a.sql, line 1): var('nope') has no value" in caplog.text
    assert "KeyError" not in caplog.text


def test_a_badge_says_failing_and_warnings_apart() -> None:
    from jobs.sqlproject.docsite.pages import _not_passing

    assert _not_passing([{"status": "warn"}]) == "1 warning"
    assert _not_passing([{"status": "error"}, {"status": "warn"}, {"status": "warn"}]) == "1 failing, 2 warnings"
    assert _not_passing([{"status": "skipped"}]) == "1 not run"
