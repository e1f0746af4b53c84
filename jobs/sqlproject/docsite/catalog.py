"""What the documentation site shows, gathered once: the project's nodes and edges, each model's SQL, columns,
tests and coverage, the recipes and their deployed versions, and, for a run, its row counts, data-test results,
quarantine and JSON-path health.

Gathering reads files only (the project, ``models/``, the model store, the run folder), except :func:`measured`,
which needs Spark for the columns' types (the models analysed against the declared sources), the CASE coverage
(the unit tests' rows) and the JSON-path health (the run's snapshot).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import RetrainError
from jobs.run_context import read_step_output

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.run_context import RunFolder
    from jobs.settings import Settings
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.coverage import ModelCoverage
    from jobs.sqlproject.jsonhealth import JsonHealth
    from jobs.sqlproject.jsonpaths import JsonRead
    from jobs.sqlproject.project import SqlProject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Node:
    """A box of the graph: ``kind`` is source, model, recipe or deployed."""

    id: str
    kind: str
    label: str
    href: str
    detail: str = ""


@dataclass(frozen=True)
class RecipeInfo:
    name: str
    feature_table: str
    features: tuple[str, ...]
    label: str
    path: str


@dataclass(frozen=True)
class Deployed:
    model: str
    version: str | None
    promoted_at: str | None
    versions: int


@dataclass(frozen=True)
class RunInfo:
    """What a run folder says: rows per model and source, data-test results, quarantine by reason."""

    ds: str
    path: Path
    model_rows: dict[str, int | None] = field(default_factory=dict)
    source_rows: dict[str, int | None] = field(default_factory=dict)
    data_tests: list[dict[str, Any]] | None = None
    quarantine: dict[str, int] | None = None


@dataclass
class Catalog:
    compiled: CompiledProject
    recipes: list[RecipeInfo]
    deployed: dict[str, Deployed]
    run: RunInfo | None
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: filled by :func:`measured`
    schemas: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    coverage: dict[str, ModelCoverage] = field(default_factory=dict)
    json_reads: dict[str, list[JsonRead]] = field(default_factory=dict)
    json_health: JsonHealth | None = None

    @property
    def project(self) -> SqlProject:
        return self.compiled.project

    def model_file(self, name: str) -> str:
        return self.project.relative(self.compiled.rendered[name].model.path)

    def dependants(self, name: str) -> list[str]:
        return [n for n in self.compiled.order if name in self.compiled.rendered[n].refs]

    def recipes_of(self, model: str) -> list[RecipeInfo]:
        return [r for r in self.recipes if r.feature_table == model]


def _read_json(path: Path) -> Any:
    return read_step_output(path, "the documentation site")


def read_run(folder: RunFolder, ds: str) -> RunInfo:
    """Rows per model (``transform.json``, else each table's ``_manifest.json``) and per source, the data tests'
    results and the quarantine's rows per reason (from its Parquet footers)."""
    transform = _read_json(folder.transform_summary) or {}
    model_rows = {m["name"]: m.get("rows") for m in transform.get("models", []) if isinstance(m, dict)}
    if folder.features.is_dir():
        for manifest in sorted(folder.features.glob("*/_manifest.json")):
            model_rows.setdefault(manifest.parent.name, (_read_json(manifest) or {}).get("rows"))
    source_rows = {}
    if folder.raw.is_dir():
        for manifest in sorted(folder.raw.glob("*/_manifest.json")):
            source_rows[manifest.parent.name] = (_read_json(manifest) or {}).get("rows")
    quarantine = None
    table = folder.feature_table("quarantine")
    if table.is_dir():
        import pyarrow.parquet as pq

        quarantine = {}
        for partition in sorted(table.glob("quarantine_reason=*")):
            reason = partition.name.split("=", 1)[1]
            quarantine[reason] = sum(pq.ParquetFile(f).metadata.num_rows for f in partition.glob("*.parquet"))
    return RunInfo(ds, folder.path, model_rows, source_rows, transform.get("data_tests"), quarantine)


def _recipes(settings: Settings, problems: list[str]) -> list[RecipeInfo]:
    from jobs.ml.recipes import load_recipes

    try:
        loaded = load_recipes(settings.models_dir)
    except RetrainError as e:
        problems.append(f"Recipes: {e}")
        return []
    return [
        RecipeInfo(r.name, r.feature_table, tuple(r.features), r.label, str(settings.models_dir / f"{r.name}.py"))
        for r in loaded.values()
    ]


def _deployed(settings: Settings, recipes: list[RecipeInfo], problems: list[str]) -> dict[str, Deployed]:
    from jobs.ml.store import ModelStore

    found = {}
    if not settings.model_store.is_dir():
        return found
    store = ModelStore(settings.model_store)
    for recipe in recipes:
        try:
            pointer = store.production(recipe.name)
            versions = len(store.versions(recipe.name))
        except (RetrainError, OSError) as e:
            problems.append(f"Model store, {recipe.name}: {e}")
            continue
        found[recipe.name] = Deployed(
            recipe.name, pointer.version if pointer else None, pointer.promoted_at if pointer else None, versions
        )
    return found


def gather(settings: Settings, compiled: CompiledProject, run: RunInfo | None) -> Catalog:
    """Everything but what needs Spark."""
    problems: list[str] = []
    recipes = _recipes(settings, problems)
    catalog = Catalog(compiled, recipes, _deployed(settings, recipes, problems), run, problems=problems)
    project = compiled.project
    for key in sorted(project.sources):
        rows = run.source_rows.get(key) if run else None
        detail = f"{rows:,} rows" if isinstance(rows, int) else "source"
        catalog.nodes.append(Node(f"source:{key}", "source", key, f"index.html#source-{key}", detail))
    for name in compiled.order:
        rendered = compiled.rendered[name]
        rows = run.model_rows.get(name) if run else None
        detail = rendered.config.materialized + (f" · {rows:,} rows" if isinstance(rows, int) else "")
        catalog.nodes.append(Node(f"model:{name}", "model", name, f"models/{name}.html", detail))
        catalog.edges += [(f"source:{s}", f"model:{name}") for s in rendered.sources]
        catalog.edges += [(f"model:{r}", f"model:{name}") for r in rendered.refs if r in compiled.rendered]
    for recipe in recipes:
        catalog.nodes.append(Node(f"recipe:{recipe.name}", "recipe", recipe.name, f"index.html#recipe-{recipe.name}"))
        if recipe.feature_table in compiled.rendered:
            catalog.edges.append((f"model:{recipe.feature_table}", f"recipe:{recipe.name}"))
        else:
            problems.append(
                f"Recipe {recipe.name} reads {recipe.feature_table!r}, which no model of the project builds."
            )
        deployed = catalog.deployed.get(recipe.name)
        if deployed and deployed.version:
            node = f"deployed:{recipe.name}"
            catalog.nodes.append(
                Node(node, "deployed", deployed.version, f"index.html#deployed-{recipe.name}", "in production")
            )
            catalog.edges.append((f"recipe:{recipe.name}", node))
    return catalog


def measured(spark: SparkSession, catalog: Catalog, folder: RunFolder | None) -> Catalog:
    """Add what needs Spark: the columns' types, the CASE coverage by the unit tests, the JSON-path health."""
    from jobs.sqlproject import coverage, jsonhealth
    from jobs.sqlproject.jsonpaths import project_json_reads
    from jobs.sqlproject.unittests import UnitTestRunner

    compiled = catalog.compiled
    runner = UnitTestRunner(spark, compiled)  # analyses every model against the declared sources: the schemas
    for name in compiled.order:
        schema = runner.schemas.get(name)
        if schema is not None:
            catalog.schemas[name] = [(f.name, f.dataType.simpleString()) for f in schema.fields]
    catalog.coverage = coverage.measure(spark, compiled, runner)
    reads, skipped = project_json_reads(compiled.rendered[n] for n in compiled.order)
    for read in reads:
        catalog.json_reads.setdefault(read.model, []).append(read)
    catalog.problems += [f"JSON keys of {model}: {why}" for model, why in skipped.items()]
    if folder is not None and folder.raw.is_dir():
        catalog.json_health = jsonhealth.measure(spark, compiled, folder)
    return catalog
