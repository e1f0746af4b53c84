"""SQL unit tests from ``unit_tests:`` in ``<model>.yml``: given rows for each input, the rows the model returns.

The format is dbt's (``given: - input: ref('x') rows: [...]``, ``expect: rows: [...]``). Values are written as
YAML scalars and cast to the input's real column types, so an analyst writes ``created_at: 2026-11-01 10:00:00``
or ``data: {"age": "42"}`` (a mapping becomes its JSON text). Columns left out of a given row are NULL; only the
columns named in the expected rows are compared. This module builds the DataFrames and compares them with chispa
(:func:`run_unit_tests`): ``retrain test`` and the pytest harness (``tests/test_sql_models.py``) run cases here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from jobs.errors import RetrainError, SqlProjectError
from jobs.run_context import RunContext
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.config import source_key
from jobs.sqlproject.incremental import PREVIOUS_VIEW_SUFFIX
from jobs.sqlproject.project import Model, SqlProject
from jobs.sqlproject.render import RenderedModel, Renderer, source_view
from jobs.sqlproject.runner import SqlRunner
from jobs.sqlproject.seeds import register_seeds
from jobs.sqlproject.sparkerrors import model_error

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

_INPUT = re.compile(
    r"""^\s*(ref|source)\(\s*(?:['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*,\s*)?['"]([A-Za-z_][A-Za-z0-9_]*)['"]\s*\)\s*$"""
)
DEFAULT_DS = "2026-11-22"


@dataclass(frozen=True)
class UnitTestCase:
    """One case of one model, identified as ``<model>::<case>``."""

    model: Model
    name: str
    where: str
    spec: Mapping[str, Any]

    @property
    def id(self) -> str:
        return f"{self.model.name}::{self.name}"


def collect_cases(project: SqlProject) -> list[UnitTestCase]:
    """Every unit test of the property files (dbt's top-level ``unit_tests:`` or a model file's own)."""
    cases = []
    for name, props in sorted(project.properties.models.items()):
        for spec, where in props.unit_tests:
            cases.append(UnitTestCase(project.models[name], str(spec["name"]), where, spec))
    return cases


def models_without_unit_tests(project: SqlProject) -> list[str]:
    with_tests = {name for name, props in project.properties.models.items() if props.unit_tests}
    return sorted(set(project.models) - with_tests)


def check_unit_tests(spark: SparkSession, compiled: CompiledProject, errors: list[RetrainError] | None = None) -> int:
    """Build every case's given and expected frames (not the comparison): wrong inputs or columns fail here. With
    ``errors``, each case that fails is added there and the others are built still."""
    runner = UnitTestRunner(spark, compiled)
    cases = collect_cases(compiled.project)
    for case in cases:
        try:
            runner.run(case)
        except RetrainError as e:
            if errors is None:
                raise
            errors.append(e)
    return len(cases)


@dataclass(frozen=True)
class UnitTestResult:
    """One case's outcome: ``pass``, ``fail`` (other rows than expected: ``message`` is chispa's diff) or ``error``
    (the case or its model could not run: ``message`` says why)."""

    id: str
    model: str
    where: str
    status: str
    message: str = ""
    #: the model's file, and the lines computing the columns that differ
    model_file: str = ""
    differing: tuple[tuple[str, int | None], ...] = ()


def run_unit_tests(
    spark: SparkSession, compiled: CompiledProject, cases: Sequence[UnitTestCase] | None = None
) -> list[UnitTestResult]:
    """Run ``cases`` (default: every one) and compare each with chispa; a case that fails or cannot run does not
    stop the others."""
    runner = UnitTestRunner(spark, compiled)
    return [runner.result(case) for case in (collect_cases(compiled.project) if cases is None else cases)]


def compare(actual: DataFrame, expected: DataFrame) -> str | None:
    """chispa's diff of the two frames (rows in any order), or None when they are equal."""
    from chispa import assert_df_equality
    from chispa.dataframe_comparer import DataFramesNotEqualError
    from chispa.schema_comparer import SchemasNotEqualError

    try:
        assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    except (DataFramesNotEqualError, SchemasNotEqualError) as e:
        return f"df1: the rows the model returned; df2: the rows the test expects.\n{e}"
    return None


def differing_columns(actual: DataFrame, expected: DataFrame) -> list[str]:
    """The expected columns whose values (in any row order) are not those the model returned."""
    from collections import Counter

    got, want = actual.collect(), expected.collect()
    return [
        column
        for column in expected.columns
        if Counter(repr(row[column]) for row in got) != Counter(repr(row[column]) for row in want)
    ]


def column_line(template: str, column: str) -> int | None:
    """The model file's line that names ``column`` as an output (``... AS column``, or a line starting with it)."""
    patterns = (rf"\bAS\s+`?{re.escape(column)}`?\b", rf"^\s*,?\s*(\w+\.)?`?{re.escape(column)}`?\s*,?\s*$")
    for pattern in patterns:
        for number, line in enumerate(template.splitlines(), start=1):
            if re.search(pattern, line, re.IGNORECASE):
                return number
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value)


def typed_frame(spark: SparkSession, rows: list[Mapping[str, Any]], schema: StructType, where: str) -> DataFrame:
    """Rows of YAML scalars as a DataFrame of ``schema``: every value goes in as text and is cast to its type."""
    from pyspark.sql.types import StringType, StructField, StructType

    names = [f.name for f in schema.fields]
    for row in rows:
        unknown = sorted(set(row) - set(names))
        if unknown:
            raise SqlProjectError(f"{where}: column(s) {', '.join(unknown)} do not exist. Columns: {', '.join(names)}.")
    text_schema = StructType([StructField(n, StringType(), True) for n in names])
    frame = spark.createDataFrame([[_text(row.get(n)) for n in names] for row in rows], text_schema)
    return frame.selectExpr(*(f"CAST(`{f.name}` AS {f.dataType.simpleString()}) AS `{f.name}`" for f in schema.fields))


class UnitTestRunner:
    """Runs cases on one Spark session; the models' output schemas are analysed once, against empty sources."""

    def __init__(self, spark: SparkSession, compiled: CompiledProject) -> None:
        self.spark = spark
        self.project = compiled.project
        self.compiled = compiled
        self.runner = SqlRunner(spark, compiled)
        checked = self.runner.check(raise_failures=False)  # a broken model fails its own cases, not the others'
        self.schemas: dict[str, StructType] = {rendered.name: df.schema for rendered, df in checked}
        self.schemas.update({name: spark.table(name).schema for name in self.project.seeds})

    def result(self, case: UnitTestCase) -> UnitTestResult:
        """Run one case and compare it with chispa: pass, fail (with the diff) or error (with why)."""
        from pyspark.errors import PySparkException

        model_file = self.project.relative(case.model.path)
        common = {"id": case.id, "model": case.model.name, "where": case.where, "model_file": model_file}
        try:
            actual, expected = self.run(case)
            diff = compare(actual, expected)
        except RetrainError as e:
            return UnitTestResult(status="error", message=str(e), **common)
        except PySparkException as e:
            rendered = self.compiled.rendered.get(case.model.name)
            message = str(model_error(self.project, rendered, e, "failed while running")) if rendered else str(e)
            return UnitTestResult(status="error", message=message, **common)
        if diff is None:
            return UnitTestResult(status="pass", **common)
        template = case.model.path.read_text(encoding="utf-8")
        columns = differing_columns(actual, expected)
        return UnitTestResult(
            status="fail",
            message=diff,
            differing=tuple((column, column_line(template, column)) for column in columns),
            **common,
        )

    @classmethod
    def for_project(cls, spark: SparkSession, project: SqlProject) -> UnitTestRunner:
        return cls(spark, CompiledProject.build(project, RunContext.for_ds(DEFAULT_DS)))

    def _input_schema(self, kind: str, name: str, where: str) -> StructType:
        if kind == "source":
            if name not in self.project.sources:
                raise SqlProjectError(f"{where}: source {name!r} is not in sources.yml.")
            return self.spark.createDataFrame([], self.project.sources[name].spark_schema_ddl).schema
        if name not in self.schemas:
            raise SqlProjectError(
                f"{where}: ref({name!r}) names no model or seed. Models and seeds: {', '.join(sorted(self.schemas))}."
            )
        return self.schemas[name]

    def _call(self, needed: str) -> str:
        """How a unit test names a missing input: ``this``, ``ref('x')`` or the source's call."""
        if needed == "this":
            return "this"
        kind, _, name = needed.partition(":")
        return f"ref('{name}')" if kind == "ref" else self.project.sources[name].call

    def run(self, case: UnitTestCase) -> tuple[DataFrame, DataFrame]:
        """(actual, expected) for one case, both restricted to the expected columns."""
        rendered = self.prepare(case)
        where = f"{case.where} (unit test {case.name!r})"
        actual = self.spark.sql(rendered.sql)
        expect = case.spec.get("expect") or {}
        rows = expect.get("rows") or []
        columns = list(dict.fromkeys(key for row in rows for key in row)) or actual.columns
        missing = [c for c in columns if c not in actual.columns]
        if missing:
            raise SqlProjectError(
                f"{where}: expected column(s) {', '.join(missing)} are not in the model's output: "
                f"{', '.join(actual.columns)}."
            )
        actual = actual.select(*columns)
        return actual, typed_frame(self.spark, rows, actual.schema, where)

    def prepare(self, case: UnitTestCase) -> RenderedModel:
        """Register the case's given rows as the views its model reads; the model as rendered for the case (its
        own ``vars:`` and ``ds:``). CASE coverage (:mod:`jobs.sqlproject.coverage`) runs its probes over them."""
        spec, where = case.spec, f"{case.where} (unit test {case.name!r})"
        name = case.model.name
        if name in self.runner.failures:
            raise self.runner.failures[name]
        if name in self.runner.unavailable:
            failed = next((d for d in self.compiled.graph.get(name, ()) if d in self.runner.unavailable), "?")
            raise SqlProjectError(
                f"{where}: {name} reads {failed}, which could not be analysed (retrain check says why); its unit "
                "tests cannot run until it is fixed."
            )
        project = self.project
        if spec.get("vars"):
            project = dataclasses.replace(project, vars={**project.vars, **spec["vars"]})
        renderer = self.compiled.renderer
        incremental = bool(((spec.get("overrides") or {}).get("macros") or {}).get("is_incremental"))
        if spec.get("vars") or "ds" in spec or incremental:
            renderer = Renderer.create(project, RunContext.for_ds(str(spec.get("ds", DEFAULT_DS))))
            if incremental:  # dbt's overrides: {macros: {is_incremental: true}}: `this` is the given rows
                renderer.previous[name] = f"{name}{PREVIOUS_VIEW_SUFFIX}"
            rendered = renderer.render(case.model)
        else:
            rendered = self.compiled.rendered[name]
        if project.seeds:  # a case may have replaced a seed's rows with its own
            register_seeds(self.spark, project)
        given = spec.get("given") or []
        provided: set[str] = set()
        for item in given:
            if isinstance(item, dict) and str(item.get("input", "")).strip() == "this":
                if not incremental:
                    raise SqlProjectError(
                        f"{where}: input: this is the model's previous output, read only when it runs incrementally. "
                        "Add overrides: {macros: {is_incremental: true}}, or remove it."
                    )
                model = case.model.name
                schema = self._input_schema("ref", model, where)
                typed_frame(self.spark, item.get("rows") or [], schema, where).createOrReplaceTempView(
                    renderer.previous[model]
                )
                provided.add("this")
                continue
            match = _INPUT.match(str(item.get("input", ""))) if isinstance(item, dict) else None
            if not match or (match.group(1) == "ref" and match.group(2)):
                raise SqlProjectError(
                    f"{where}: each 'given' item needs input: ref('name'), source('name'), source('group', 'table') "
                    "or this."
                )
            kind, group, name = match.groups()
            key = source_key(group, name) if kind == "source" else name
            view = source_view(key) if kind == "source" else name
            schema = self._input_schema(kind, key, where)
            typed_frame(self.spark, item.get("rows") or [], schema, where).createOrReplaceTempView(view)
            provided.add(f"{kind}:{key}")
        needed = {f"ref:{n}" for n in rendered.refs + rendered.seeds} | {f"source:{n}" for n in rendered.sources}
        needed |= {"this"} if incremental else set()
        missing = sorted(needed - provided - {f"ref:{n}" for n in rendered.seeds})  # a seed's own rows by default
        if missing:
            calls = [self._call(m) for m in missing]
            raise SqlProjectError(f"{where}: give rows for {', '.join(calls)} (may be rows: []).")
        if rendered.executes:  # its SQL needs its inputs' columns (dbt_utils.star): the given rows' now
            rendered = renderer.render(case.model, columns=self.runner.columns_of)
        return rendered
