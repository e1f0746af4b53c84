"""Data tests on the data a run produced: declarative ones from ``<model>.yml`` and singular SQL in ``tests/``.

Generic tests (``not_null``, ``unique``, ``accepted_values``, ``row_count_min``) compile to one counting query
each, run by Spark on the model's output, so nothing is collected to the driver but a number. A singular test is a
templated query returning the failing rows. ``severity: warn`` reports a failure; ``error`` (the default) fails.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from jobs.errors import DataTestError, SqlProjectError, check_scalar
from jobs.sqlproject.literals import sql_literal
from jobs.sqlproject.modelconfig import SEVERITIES
from jobs.sqlproject.project import Model
from jobs.sqlproject.properties import load_properties
from jobs.sqlproject.render import Renderer

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

GENERIC_TESTS = ("not_null", "unique", "accepted_values", "row_count_min")


@dataclass(frozen=True)
class DataTest:
    name: str
    model: str
    where: str
    query: str  # returns one row: the number of failures
    severity: str = "error"
    describe_failure: str = "{failures} failing rows"


@dataclass(frozen=True)
class DataTestResult:
    name: str
    model: str
    where: str
    severity: str
    failures: int
    message: str

    @property
    def passed(self) -> bool:
        return self.failures == 0


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _split(spec: Any, where: str) -> tuple[str, dict[str, Any]]:
    """``not_null`` or ``{accepted_values: {values: [...], severity: warn}}`` -> (kind, arguments)."""
    if isinstance(spec, str):
        kind, args = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        kind, args = next(iter(spec.items()))
        args = args or {}
    else:
        raise SqlProjectError(f"{where}: a test is a name or a one-key mapping like {{unique: {{}}}}. Got {spec!r}.")
    if kind not in GENERIC_TESTS:
        raise SqlProjectError(f"{where}: unknown test {kind!r}. Tests: {', '.join(GENERIC_TESTS)}.")
    if not isinstance(args, dict):
        raise SqlProjectError(f"{where}: the arguments of {kind!r} must be a mapping. Got {args!r}.")
    severity = args.get("severity", "error")
    if severity not in SEVERITIES:
        raise SqlProjectError(f"{where}: severity must be one of {', '.join(SEVERITIES)}. Got {severity!r}.")
    return kind, args


def _column_test(model: str, column: str, spec: Any, where: str) -> DataTest:
    kind, args = _split(spec, where)
    relation, col = _quote(model), _quote(column)
    severity = args.get("severity", "error")
    if kind == "not_null":
        query = f"SELECT COUNT(*) FROM {relation} WHERE {col} IS NULL"
        text = "{failures} rows where " + column + " is NULL"
    elif kind == "unique":
        query = (
            f"SELECT COUNT(*) FROM (SELECT {col} FROM {relation} WHERE {col} IS NOT NULL "
            f"GROUP BY {col} HAVING COUNT(*) > 1)"
        )
        text = "{failures} values of " + column + " appear more than once"
    elif kind == "accepted_values":
        values = args.get("values")
        if not isinstance(values, list) or not values:
            raise SqlProjectError(f"{where}: accepted_values needs 'values:', a non-empty list.")
        query = f"SELECT COUNT(*) FROM {relation} WHERE {col} IS NOT NULL AND {col} NOT IN ({sql_literal(values)})"
        text = "{failures} rows where " + column + f" is not one of {values}"
    else:
        raise SqlProjectError(f"{where}: {kind!r} is a model-level test; put it under the model's 'tests:'.")
    return DataTest(f"{kind}({column})", model, where, query, severity, text)


def _model_test(model: str, spec: Any, where: str) -> DataTest:
    kind, args = _split(spec, where)
    if kind != "row_count_min":
        raise SqlProjectError(f"{where}: {kind!r} applies to a column; put it under 'columns: - name: ... tests:'.")
    minimum = check_scalar(args.get("min"), f"{where}: row_count_min's 'min:'", minimum=0, error=SqlProjectError)
    query = f"SELECT GREATEST({minimum} - COUNT(*), 0) FROM {_quote(model)}"
    text = "{failures} rows short of the minimum of " + str(minimum)
    return DataTest(f"row_count_min({minimum})", model, where, query, args.get("severity", "error"), text)


def generic_tests(models: Mapping[str, Model], relative) -> list[DataTest]:
    """Every declarative test of the given models."""
    tests: list[DataTest] = []
    for model in models.values():
        props = load_properties(model)
        where = relative(props.path)
        for spec in props.tests:
            tests.append(_model_test(model.name, spec, where))
        for column in props.columns:
            for spec in column.get("tests") or ():
                tests.append(_column_test(model.name, column["name"], spec, where))
    return tests


def singular_tests(renderer: Renderer, relative) -> list[DataTest]:
    """``tests/*.sql``: queries returning failing rows; ``config(severity='warn')`` makes one a warning."""
    tests = []
    for path in renderer.project.singular_tests:
        rendered = renderer.render(Model(name=path.stem, path=path, folder="tests"))
        body = rendered.sql.rstrip().rstrip(";")
        tests.append(DataTest(path.stem, ",".join(rendered.refs) or "-", relative(path),
                              f"SELECT COUNT(*) FROM (\n{body}\n)", rendered.config.severity))  # fmt: skip
    return tests


def run_tests(spark: SparkSession, tests: Sequence[DataTest]) -> list[DataTestResult]:
    from pyspark.errors import PySparkException

    results = []
    for test in tests:
        try:
            failures = int(spark.sql(test.query).collect()[0][0])
        except PySparkException as e:
            raise SqlProjectError(
                f"Data test {test.name} on {test.model} ({test.where}) could not run: {str(e).splitlines()[0]}"
            ) from None
        message = "ok" if failures == 0 else test.describe_failure.format(failures=failures)
        result = DataTestResult(test.name, test.model, test.where, test.severity, failures, message)
        level = logging.INFO if result.passed else (logging.ERROR if test.severity == "error" else logging.WARNING)
        log.log(level, "%s %s on %s: %s", "PASS" if result.passed else test.severity.upper(), test.name,
                test.model, message)  # fmt: skip
        results.append(result)
    return results


def raise_on_errors(results: Sequence[DataTestResult]) -> None:
    """Stop the pipeline when a test of error severity failed; warnings only get reported."""
    failed = [r for r in results if not r.passed and r.severity == "error"]
    if failed:
        lines = "\n".join(f"  {r.model}: {r.name}: {r.message} ({r.where})" for r in failed)
        raise DataTestError(
            f"{len(failed)} data test(s) failed; nothing was trained. Inspect the data or the model, then re-run.\n"
            f"{lines}"
        )


def results_to_dicts(results: Sequence[DataTestResult]) -> list[dict[str, Any]]:
    return [{**asdict(r), "passed": r.passed} for r in results]
