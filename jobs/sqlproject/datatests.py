"""Data tests on the data a run produced: generic ones from property files and singular SQL in ``tests/``.

Built-in generic tests: ``not_null``, ``unique``, ``accepted_values``, ``relationships`` and ``row_count_min``; an
analyst's own are ``{% test name(model, column_name, ...) %}`` blocks in ``macros/`` or ``tests/generic/`` returning
the failing rows. Every test takes dbt's config: ``severity`` (error|warn), ``warn_if`` / ``error_if`` (a count
condition such as ``">10"``, or a share of the tested rows such as ``">0.1%"``) and ``where`` (a filter on the
tested model's rows).

All tests of one model run as **one Spark query**: row-level conditions (not_null, accepted_values, row counts) are
conditional counts of one aggregate over the model, the others (unique, relationships, custom and singular tests)
scalar subqueries of the same statement. Nothing but one row of numbers reaches the driver. When that statement
fails, each test runs on its own so that the error names the test that broke.

A table that ``transform`` writes does not need reading again for its row-level tests: their counts are observed
metrics of the write itself (:func:`observed_metrics`, Spark's ``Dataset.observe``), and only what could not be
observed runs afterwards, in the same one statement.

A test that one row can prove passed (``json_keys_present``: a key found once is found) is first tried on the first
rows read (:data:`SAMPLE_ROWS`): when they prove it, the whole table is not searched. Otherwise it is counted over
every row, as the others.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import jinja2

from jobs.errors import CompilationError, DataTestError, SqlProjectError, check_scalar
from jobs.spark.concurrent import run_concurrently
from jobs.spark.messages import first_line
from jobs.sqlproject.literals import sql_literal
from jobs.sqlproject.modelconfig import SEVERITIES
from jobs.sqlproject.project import Model, SqlProject
from jobs.sqlproject.properties import TestSpec

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.sqlproject.render import Renderer

log = logging.getLogger(__name__)

#: how many of a model's rows prove a test that a few rows can prove (``DataTest.sample_proof``)
SAMPLE_ROWS = 10_000
BUILT_IN_TESTS = ("not_null", "unique", "accepted_values", "relationships", "row_count_min", "json_keys_present")
_MODEL_LEVEL = ("row_count_min",)
TEST_CONFIG_KEYS = ("severity", "where", "warn_if", "error_if")
#: dbt's test config read for what it describes: tags select tests (``retrain test --select tag:x``)
TEST_CONFIG_ALSO = ("tags", "meta")
_ARGUMENTS = {
    "not_null": (),
    "unique": (),
    "accepted_values": ("values", "quote"),
    "relationships": ("to", "field"),
    "row_count_min": ("min",),
    "json_keys_present": (),
}
_CONDITION = re.compile(r"^\s*(!=|<>|>=|<=|==|=|>|<)\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")
_RELATION = re.compile(r"""^\s*(ref|source)\(\s*((?:['"][A-Za-z_][A-Za-z0-9_]*['"]\s*,?\s*){1,2})\)\s*$""")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Threshold:
    """``warn_if`` / ``error_if``: a comparison of the failure count, or of its percentage of the tested rows."""

    text: str
    operator: str
    value: float
    percent: bool

    @classmethod
    def parse(cls, text: Any, key: str, at: str) -> Threshold:
        match = _CONDITION.match(str(text)) if isinstance(text, str | int) and not isinstance(text, bool) else None
        if not match:
            raise SqlProjectError(
                f"{at}: {key} must be a condition on the failure count like '>10' or '!=0', or on its share of "
                f"the tested rows like '>0.1%'. Got {text!r} instead."
            )
        return cls(str(text).strip(), match.group(1), float(match.group(2)), bool(match.group(3)))

    def holds(self, failures: int, rows: int | None) -> bool:
        if self.percent:
            share = 100.0 * failures / rows if rows else 0.0
            return _COMPARE[self.operator](share, self.value)
        return _COMPARE[self.operator](failures, self.value)


ALWAYS = Threshold("!=0", "!=", 0, False)


@dataclass(frozen=True)
class DataTest:
    """One test, compiled: either an aggregate over the model's rows or a query returning one count."""

    name: str
    model: str  # the relation tested (model or seed), or the refs of a singular test
    where: str  # file, line
    describe_failure: str  # "{failures} ..." text; "{detail}" is replaced by what ``failure_detail`` names
    aggregate: str | None = None  # an aggregate expression over the model giving the failures
    query: str | None = None  # a query returning one row: the number of failures
    rows: str | None = None  # an aggregate giving the number of tested rows (for percentages)
    severity: str = "error"
    warn_if: Threshold = ALWAYS
    error_if: Threshold = ALWAYS
    relation: str | None = None  # the view the aggregate reads
    #: every model, seed or source view the test reads: it is skipped when one of them failed or was skipped
    depends_on: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    #: generic (a property file's) or singular (tests/*.sql)
    kind: str = "generic"
    #: an aggregate over some of the model's rows that is 0 only when the test passes over all of them (a JSON key
    #: found in a sample is in the table): tried on :data:`SAMPLE_ROWS` rows before the whole table is counted
    sample_proof: str | None = None
    #: an aggregate over the model's rows naming what failed (text for ``describe_failure``'s ``{detail}``), queried
    #: only when the test fails: a failed json_keys_present names the keys no row holds
    failure_detail: str | None = None

    def status(self, failures: int, rows: int | None) -> str:
        """dbt's rule: error when severity is error and error_if holds, else warn when warn_if holds, else pass."""
        if self.severity == "error" and self.error_if.holds(failures, rows):
            return "error"
        if self.warn_if.holds(failures, rows):
            return "warn"
        return "pass"


@dataclass(frozen=True)
class DataTestResult:
    name: str
    model: str
    where: str
    severity: str
    failures: int
    message: str
    #: pass, warn, error (failed, or could not run: see ``error``) or skipped (a model it reads did not run)
    status: str = "pass"
    rows: int | None = None
    #: why the test could not run at all (its SQL broke), kept to be raised once every test has run
    error: SqlProjectError | None = field(default=None, compare=False, repr=False)

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _split(spec: Any, at: str, custom: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``not_null`` or ``{accepted_values: {values: [...], severity: warn}}`` -> (kind, arguments, config).

    dbt >= 1.8's ``{arguments: {...}, config: {...}}`` is read too; arguments and config may also sit side by side.
    """
    if isinstance(spec, str):
        kind, body = spec, {}
    elif isinstance(spec, dict) and len(spec) == 1:
        kind, body = next(iter(spec.items()))
        body = body if body is not None else {}
    else:
        raise SqlProjectError(f"{at}: a test is a name or a one-key mapping like {{unique: {{}}}}. Got {spec!r}.")
    known = sorted(set(BUILT_IN_TESTS) | {name for name in custom if "." not in name})
    if kind not in known and kind not in custom:
        packaged = sorted(name for name in custom if "." in name)
        raise SqlProjectError(
            f"{at}: unknown test {kind!r}. Tests: {', '.join(known)} (write your own as a "
            "{% test name(model, column_name) %} block in macros/ or tests/generic/). Packages' tests: "
            f"{', '.join(packaged) or 'none'}."
        )
    if not isinstance(body, dict):
        raise SqlProjectError(f"{at}: the arguments of {kind!r} must be a mapping. Got {body!r}.")
    allowed_args = _ARGUMENTS.get(kind) if kind not in custom else _custom_arguments(custom[kind])
    arguments = dict(body.get("arguments") or {})
    config = dict(body.get("config") or {})
    for key, value in body.items():
        if key in ("arguments", "config"):
            continue
        if key in TEST_CONFIG_KEYS or key == "name" or key in TEST_CONFIG_ALSO:
            config[key] = value
        elif key in allowed_args:
            arguments[key] = value
        else:
            raise SqlProjectError(
                f"{at}: unknown key {key!r} for test {kind!r}. Arguments: {', '.join(allowed_args) or 'none'}; "
                f"config: {', '.join(TEST_CONFIG_KEYS)}, name. Also: {', '.join(TEST_CONFIG_ALSO)}."
            )
    for key in arguments:
        if key not in allowed_args:
            raise SqlProjectError(
                f"{at}: unknown argument {key!r} of {kind!r}. Arguments: {', '.join(allowed_args) or 'none'}."
            )
    for key in config:
        if key not in (*TEST_CONFIG_KEYS, "name", *TEST_CONFIG_ALSO):
            raise SqlProjectError(
                f"{at}: unknown config {key!r} of {kind!r}. Config: {', '.join(TEST_CONFIG_KEYS)}. "
                f"Also: {', '.join(TEST_CONFIG_ALSO)}."
            )
    tags = config.get("tags", [])
    if isinstance(tags, str):
        config["tags"] = [tags]
    elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SqlProjectError(f"{at}: tags of {kind!r} must be a list of names. Got {tags!r}.")
    severity = str(config.get("severity", "error")).lower()
    if severity not in SEVERITIES:
        raise SqlProjectError(f"{at}: severity must be one of {', '.join(SEVERITIES)}. Got {severity!r}.")
    config["severity"] = severity
    return kind, arguments, config


def _custom_arguments(macro: Any) -> tuple[str, ...]:
    return tuple(a for a in macro.arguments if a not in ("model", "column_name"))


def _relation_of(text: Any, project: SqlProject, at: str) -> str:
    """``ref('customers')`` / ``source('ecom', 'orders')`` -> the view's name."""
    from jobs.sqlproject.config import source_key
    from jobs.sqlproject.render import source_view

    match = _RELATION.match(str(text)) if isinstance(text, str) else None
    if not match:
        raise SqlProjectError(
            f"{at}: relationships needs to: ref('model') or to: source('group', 'table'). Got {text!r}."
        )
    names = re.findall(r"""['"]([A-Za-z_][A-Za-z0-9_]*)['"]""", match.group(2))
    if match.group(1) == "ref":
        name = names[-1]
        if name not in project.models and name not in project.seeds:
            raise SqlProjectError(f"{at}: relationships to ref({name!r}), which names no model or seed.")
        return name
    key = source_key(names[0] if len(names) == 2 else None, names[-1])
    if key not in project.sources:
        raise SqlProjectError(f"{at}: relationships to {text}, which names no source in sources.yml.")
    return source_view(key)


def compile_test(
    project: SqlProject, renderer: Renderer, relation: str, spec: TestSpec, owner: str | None = None
) -> DataTest:
    """One YAML test of ``relation`` (a model, a seed or a source's view) as a :class:`DataTest`; refusals name
    file and line. ``owner``: what results name the relation by (a source's ``source('g', 't')``)."""
    at, column = spec.where, spec.column
    custom = renderer.generic_tests()
    kind, args, config = _split(spec.spec, at, custom)
    rel, col = quote(relation), quote(column) if column else None
    where_sql = config.get("where")
    if where_sql is not None and (not isinstance(where_sql, str) or not where_sql.strip()):
        raise SqlProjectError(f"{at}: where must be an SQL condition on the model's columns. Got {where_sql!r}.")
    filt = f"({where_sql})" if where_sql else "TRUE"
    source = f"(SELECT * FROM {rel} WHERE {where_sql})" if where_sql else rel
    rows = f"COUNT_IF({filt})" if where_sql else "COUNT(*)"
    common = {
        "model": owner or relation,
        "where": at,
        "severity": config["severity"],
        "warn_if": Threshold.parse(config.get("warn_if", "!=0"), "warn_if", at),
        "error_if": Threshold.parse(config.get("error_if", "!=0"), "error_if", at),
        "rows": rows,
        "relation": rel,
        "depends_on": (relation,),
        "tags": tuple(config.get("tags", ())),
    }
    if kind in _MODEL_LEVEL and column:
        raise SqlProjectError(f"{at}: {kind!r} is a model-level test; put it under the model's 'data_tests:'.")
    if kind in BUILT_IN_TESTS and kind not in _MODEL_LEVEL and not column and kind not in custom:
        raise SqlProjectError(f"{at}: {kind!r} applies to a column; put it under 'columns: - name: ... data_tests:'.")
    label = f"{kind}({column})" if column else kind
    if kind in custom:
        test = _custom_test(renderer, custom[kind], kind, label, source, column, args, config, at, common)
    elif kind == "not_null":
        test = DataTest(
            label,
            aggregate=f"COUNT_IF({filt} AND {col} IS NULL)",
            describe_failure="{failures} rows where " + column + " is NULL",
            **common,
        )
    elif kind == "accepted_values":
        values = args.get("values")
        if not isinstance(values, list) or not values:
            raise SqlProjectError(f"{at}: accepted_values needs 'values:', a non-empty list.")
        listed = sql_literal(values) if args.get("quote", True) else ", ".join(str(v) for v in values)
        test = DataTest(
            label,
            aggregate=f"COUNT_IF({filt} AND {col} IS NOT NULL AND {col} NOT IN ({listed}))",
            describe_failure="{failures} rows where " + column + f" is not one of {values}",
            **common,
        )
    elif kind == "unique":
        # dbt's GROUP BY ... HAVING COUNT(*) > 1, counted by a window: in a column meant to be unique every value
        # is its own group, so an aggregate's map-side pass would hash every row for nothing.
        query = (
            f"SELECT COUNT(DISTINCT {col}) FROM (SELECT {col}, COUNT(*) OVER (PARTITION BY {col}) AS _n_ "
            f"FROM {source} WHERE {col} IS NOT NULL) WHERE _n_ > 1"
        )
        test = DataTest(
            label, query=query, describe_failure="{failures} values of " + column + " appear more than once", **common
        )
    elif kind == "relationships":
        if "to" not in args or not isinstance(args.get("field"), str):
            raise SqlProjectError(f"{at}: relationships needs 'to:' (ref('model')) and 'field:' (its column).")
        parent = _relation_of(args["to"], project, at)
        query = (
            f"SELECT COUNT(*) FROM (SELECT {col} FROM {source} WHERE {col} IS NOT NULL) child "
            f"LEFT ANTI JOIN {quote(parent)} parent ON child.{col} = parent.{quote(args['field'])}"
        )
        text = "{failures} rows whose " + column + f" is not a {args['field']} of {args['to']}"
        common["depends_on"] = (relation, parent)
        test = DataTest(label, query=query, describe_failure=text, **common)
    elif kind == "json_keys_present":
        test = _json_keys_present(project, renderer, relation, column, filt, label, common, at)
    else:  # row_count_min
        minimum = check_scalar(args.get("min"), f"{at}: row_count_min's 'min:'", minimum=0, error=SqlProjectError)
        test = DataTest(
            f"row_count_min({minimum})",
            aggregate=f"GREATEST({minimum} - {rows}, 0)",
            describe_failure="{failures} rows short of the minimum of " + str(minimum),
            **common,
        )
    if config.get("name"):
        test = DataTest(**{**test.__dict__, "name": str(config["name"])})
    return test


def _json_keys_present(project, renderer, relation, column, filt, label, common, at) -> DataTest:
    """Every JSON key the model's SQL reads from ``column`` appears in at least one tested row: a misspelt key, or
    one the backend no longer sends, fails instead of leaving a column of NULLs. Failures count keys, not rows;
    ``retrain docs`` names them, with each key's share of missing, null and unusable values."""
    from jobs.sqlproject.jsonpaths import keys_read_from

    if relation not in project.models:
        raise SqlProjectError(f"{at}: json_keys_present tests a model's column of JSON text; {relation!r} is no model.")
    keys = keys_read_from(renderer.render(project.models[relation]), column)
    if not keys:
        raise SqlProjectError(
            f"{at}: {relation} reads no JSON key from {column!r} (no from_json, get_json_object or json_tuple of "
            "that column in its SQL), so json_keys_present has nothing to check. Remove the test or name the column "
            "that holds the JSON."
        )
    col = quote(column)
    # A key's quoted name anywhere in the text. contains() only answers whether; INSTR(...) > 0 also counts
    # characters to return a position: over the 21 keys of a 1.8M-row window, 4.6 s against 14.5 s (CHANGELOG.md).
    found = [f"COUNT_IF({filt} AND contains({col}, {sql_literal(chr(34) + key + chr(34))})) > 0" for key in keys]
    absent = " + ".join(f"IF({key_found} OR COUNT_IF({filt}) = 0, 0, 1)" for key_found in found)
    # On a sample, a key not found proves nothing (nor do no tested rows), but every key found proves a pass.
    in_sample = " + ".join(f"IF({key_found}, 0, 1)" for key_found in found)
    missing = ", ".join(
        f"IF({key_found}, NULL, {sql_literal(key)})" for key_found, key in zip(found, keys, strict=True)
    )
    text = (
        "{failures} of the "
        + f"{len(keys)} JSON keys {relation} reads from {column} appear in none of its rows"
        + "{detail} (`retrain docs --ds` shows each key's share of missing, null and unusable values)"
    )
    return DataTest(
        label,
        aggregate=f"({absent})",
        describe_failure=text,
        sample_proof=f"({in_sample})",
        failure_detail=f"concat(': ', concat_ws(', ', {missing}))",
        **{**common, "rows": None},
    )


def _custom_test(renderer, macro, kind, label, source, column, args, config, at, common) -> DataTest:
    from jobs.sqlproject.project import Model

    tested = common["depends_on"][0]
    node = renderer.project.models.get(tested) or Model(tested, renderer.project.root / at.split(", line")[0], "")
    with renderer.scope(node) as recorder:
        # As in dbt, an argument written as ref('x') or source('g', 't') is that relation (and a dependency).
        given = {
            "model": source,
            **({"column_name": quote(column)} if column else {}),
            **{key: _relation_argument(value, recorder) for key, value in args.items()},
        }
        try:
            sql = str(macro(**{k: v for k, v in given.items() if k in macro.arguments})).strip().rstrip(";")
        except jinja2.UndefinedError as e:  # an argument left out is undefined inside the block
            raise SqlProjectError(
                f"{at}: test {kind!r} could not be rendered: {e.message}. Its arguments: "
                f"{', '.join(_custom_arguments(macro))}."
            ) from e
        except Exception as e:  # an error inside the test's Jinja
            raise CompilationError(f"{at}: test {kind!r} could not be rendered: {e}") from e
    from jobs.sqlproject.render import source_view

    reads = (*recorder.refs, *recorder.seeds, *(source_view(s) for s in recorder.sources))
    common = {**common, "depends_on": tuple(dict.fromkeys((*common["depends_on"], *reads)))}
    test = DataTest(
        label, query=f"SELECT COUNT(*) FROM (\n{sql}\n)", describe_failure="{failures} failing rows", **common
    )
    return test


def _relation_argument(value: Any, recorder: Any) -> Any:
    match = _RELATION.match(value) if isinstance(value, str) else None
    if not match:
        return value
    names = re.findall(r"""['"]([A-Za-z_][A-Za-z0-9_]*)['"]""", match.group(2))
    return recorder.ref(*names) if match.group(1) == "ref" else recorder.source(*names)


def generic_tests(
    project: SqlProject, renderer: Renderer, errors: list[SqlProjectError] | None = None
) -> list[DataTest]:
    """Every test of the property files, for models, seeds and sources, in file order. With ``errors``, a test
    that does not compile is added there and the others are compiled still (``retrain check`` reports them all)."""
    from jobs.sqlproject.render import source_view

    tests: list[DataTest] = []
    specs = [
        (name, spec, None)
        for group in (project.properties.models, project.properties.seeds)
        for name, props in sorted(group.items())
        for spec in props.tests
    ]
    specs += [(source_view(name), spec, s.call) for name, s in project.sources.items() for spec in s.tests]
    for relation, spec, owner in specs:
        try:
            tests.append(compile_test(project, renderer, relation, spec, owner))
        except SqlProjectError as e:
            if errors is None:
                raise
            errors.append(e)
    return tests


def singular_tests(
    project: SqlProject, renderer: Renderer, errors: list[SqlProjectError] | None = None
) -> list[DataTest]:
    """``tests/*.sql``: queries returning failing rows; ``config(severity='warn')`` makes one a warning. With
    ``errors``, one that does not render is added there and the others are rendered still."""
    from jobs.sqlproject.render import source_view

    tests = []
    for path in project.singular_tests:
        try:
            rendered = renderer.render(Model(name=path.stem, path=path, folder="tests"))
        except SqlProjectError as e:
            if errors is None:
                raise
            errors.append(e)
            continue
        body = rendered.sql.rstrip().rstrip(";")
        tests.append(
            DataTest(
                path.stem,
                ",".join(rendered.refs) or "-",
                project.relative(path),
                "{failures} failing rows",
                query=f"SELECT COUNT(*) FROM (\n{body}\n)",
                severity=rendered.config.severity,
                depends_on=(*rendered.refs, *rendered.seeds, *(source_view(s) for s in rendered.sources)),
                tags=rendered.config.tags,
                kind="singular",
            )
        )
    return tests


def observed_metrics(
    tests: Sequence[DataTest], partition_by: Mapping[str, Sequence[str]] | None = None
) -> dict[str, dict[str, str]]:
    """Per model, the aggregates its tests need (``f<i>`` failures, ``r<i>`` tested rows, as in :func:`statement`),
    for the runner to observe while it writes the model: row-level tests then cost no read of their own.

    ``partition_by``: each model's partition columns. An aggregate that names one is left to the query: a partition
    column's values change on the way to disk (``''`` reads back as NULL, ``'01'`` as the number 1), and a test
    checks what was written.
    """
    metrics: dict[str, dict[str, str]] = {}
    for model, group in _by_model(tests).items():
        if not group[0].relation:
            continue
        partition_names = [
            re.compile(rf"(?<![\w$]){re.escape(c)}(?![\w$])", re.IGNORECASE)
            for c in (partition_by or {}).get(model, ())
        ]
        # A test a sample can prove is not counted over every row as the table is written.
        named = {f"f{i}": t.aggregate for i, t in enumerate(group) if t.aggregate and not t.sample_proof}
        named.update({f"r{i}": t.rows for i, t in enumerate(group) if t.rows})
        metrics[model] = {key: sql for key, sql in named.items() if not any(p.search(sql) for p in partition_names)}
    return metrics


def statement(tests: Sequence[DataTest], known: Collection[str] = ()) -> str | None:
    """One query computing every test of one model: ``f<i>`` failures and ``r<i>`` tested rows per test.

    ``known``: values already counted (observed while the model was written), left out; ``None`` when nothing is
    left to query. The model is read only when an aggregate over its rows is left.
    """
    columns, reads_model = [], False
    relation = next((t.relation for t in tests if t.relation), None)
    for index, test in enumerate(tests):
        if f"f{index}" not in known:
            columns.append(f"{test.aggregate or f'({test.query})'} AS f{index}")
            reads_model |= bool(test.aggregate)
        if test.rows and relation and f"r{index}" not in known:
            columns.append(f"{test.rows} AS r{index}")
            reads_model = True
    if not columns:
        return None
    select = ",\n  ".join(columns)
    return f"SELECT\n  {select}\nFROM {relation}" if relation and reads_model else f"SELECT\n  {select}"


def analyse(spark: SparkSession, tests: Sequence[DataTest], errors: list[SqlProjectError] | None = None) -> None:
    """Analyse (not run) every model's test statement: a misspelt column in a test fails here, naming the test.
    With ``errors``, every broken test is added there instead of the first being raised."""
    from pyspark.errors import PySparkException

    for group in _by_model(tests).values():
        try:
            spark.sql(statement(group))
        except PySparkException:
            for test in group:
                try:
                    spark.sql(statement([test]))
                except PySparkException as e:
                    error = SqlProjectError(
                        f"Data test {test.name} on {test.model} ({test.where}) is not valid SQL "
                        f"for that model: {first_line(e)}"
                    )
                    if errors is None:
                        raise error from None
                    errors.append(error)


def _by_model(tests: Sequence[DataTest]) -> dict[str, list[DataTest]]:
    groups: dict[str, list[DataTest]] = {}
    for test in tests:
        groups.setdefault(test.model if test.relation else f"singular:{test.model}", []).append(test)
    return groups


def run_tests(
    spark: SparkSession,
    tests: Sequence[DataTest],
    threads: int = 1,
    start_order: Sequence[str] = (),
    observed: Mapping[str, Mapping[str, Any]] | None = None,
    unavailable: Mapping[str, str] | None = None,
    keep_going: bool = False,
) -> list[DataTestResult]:
    """Every test, at most one Spark query per model (up to ``threads`` models at once); results in the order of
    ``tests``.

    ``start_order``: models whose queries start first, in that order (the project's run order puts the staging
    table, the largest and slowest to test, first, so that the small ones fill the cores around it).
    ``observed``: per model, the values of its :func:`observed_metrics` taken while it was written; its tests use
    them, and the query counts only the rest.
    ``unavailable``: models that failed or were skipped, with why: a test reading one is skipped, as in dbt.
    ``keep_going``: a test that cannot run is an ``error`` result (its error in ``DataTestResult.error``) and the
    others still run; without it, that error is raised.
    """
    observed = observed or {}
    unavailable = unavailable or {}
    skipped = {id(t): next((d for d in t.depends_on if d in unavailable), None) for t in tests}
    runnable = [t for t in tests if skipped[id(t)] is None]
    rank = {name: index for index, name in enumerate(start_order)}
    groups = sorted(_by_model(runnable).values(), key=lambda group: rank.get(group[0].model, len(rank)))
    counted = run_concurrently(
        lambda group: _count_failures(
            spark, group, observed.get(group[0].model) if group[0].relation else None, keep_going
        ),
        groups,
        threads,
        key=id,
    )
    found: dict[int, DataTestResult] = {}
    positions = {id(t): i for i, t in enumerate(tests)}
    for group in groups:  # logged in a fixed order, whatever order the queries finished in
        for test, value in zip(group, counted[id(group)], strict=True):
            if isinstance(value, SqlProjectError):
                found[positions[id(test)]] = _broken(test, value)
                continue
            failures, rows = value
            detail = _failure_detail(spark, test) if failures else ""
            found[positions[id(test)]] = _result(test, int(failures or 0), None if rows is None else int(rows), detail)
    for test in tests:
        blocker = skipped[id(test)]
        if blocker is not None:
            message = f"skipped: reads {blocker}, which {unavailable[blocker]}"
            log.warning("SKIP %s on %s: %s", test.name, test.model, message)
            found[positions[id(test)]] = DataTestResult(
                test.name, test.model, test.where, test.severity, 0, message, "skipped"
            )
    return [found[i] for i in range(len(tests))]


def _count_failures(
    spark: SparkSession, group: Sequence[DataTest], observed: Mapping[str, Any] | None = None, keep_going: bool = False
) -> list[Any]:
    """(failures, tested rows) of each test of one model, from what was observed and at most one query; a broken
    test is named on its own (raised, or with ``keep_going`` given in its place)."""
    from pyspark.errors import PySparkException

    known = dict(observed or {})
    try:
        known.update(_proven_on_sample(spark, group, known))
        query = statement(group, known=known)
        row = {**known, **(spark.sql(query).collect()[0].asDict() if query else {})}
        return [(row[f"f{i}"], row.get(f"r{i}")) for i in range(len(group))]
    except PySparkException:
        values: list[Any] = []
        for test in group:  # find the test that broke
            try:
                one = spark.sql(statement([test])).collect()[0].asDict()
            except PySparkException as e:
                error = SqlProjectError(
                    f"Data test {test.name} on {test.model} ({test.where}) could not run: {first_line(e)}"
                )
                if not keep_going:
                    raise error from None
                values.append(error)
                continue
            values.append((one["f0"], one.get("r0")))
        return values


def _proven_on_sample(spark: SparkSession, group: Sequence[DataTest], known: Collection[str]) -> dict[str, int]:
    """``f<i>`` = 0 for each test of ``group`` that the model's first :data:`SAMPLE_ROWS` rows prove passed, so that
    the query over the whole table leaves it out. At 4.5M rows, searching every JSON document for its keys took 15 s
    of a 19 s test phase (CHANGELOG.md, 2026-12-07)."""
    tried = {f"f{i}": t.sample_proof for i, t in enumerate(group) if t.sample_proof and f"f{i}" not in known}
    relation = group[0].relation
    if not tried or not relation:
        return {}
    columns = ", ".join(f"{sql} AS {key}" for key, sql in tried.items())
    row = spark.sql(f"SELECT {columns} FROM (SELECT * FROM {relation} LIMIT {SAMPLE_ROWS})").collect()[0].asDict()
    return {key: 0 for key, value in row.items() if value == 0}


def _failure_detail(spark: SparkSession, test: DataTest) -> str:
    """What a failed test names (its ``failure_detail`` over the model's rows); empty when it names nothing, or when
    that query fails: the failure is already counted and reported, the names only add to its message."""
    from pyspark.errors import PySparkException

    if not (test.failure_detail and test.relation):
        return ""
    try:
        return str(spark.sql(f"SELECT {test.failure_detail} FROM {test.relation}").collect()[0][0] or "")
    except PySparkException as e:
        log.warning("Could not name what %s on %s found: %s", test.name, test.model, first_line(e))
        return ""


def _broken(test: DataTest, error: SqlProjectError) -> DataTestResult:
    log.error("ERROR %s on %s: %s", test.name, test.model, error)
    return DataTestResult(test.name, test.model, test.where, test.severity, 0, str(error), "error", error=error)


def _result(test: DataTest, failures: int, rows: int | None, detail: str = "") -> DataTestResult:
    status = test.status(failures, rows)
    if failures == 0:
        message = "ok"
    else:
        # Replaced, not str.format: a test's text quotes accepted values and column names, which may hold braces.
        message = test.describe_failure.replace("{failures}", str(failures)).replace("{detail}", detail)
        if rows:
            message += f" ({100.0 * failures / rows:.3g}% of {rows} rows)"
        thresholds = [
            f"{k} {t.text}" for k, t in (("warn_if", test.warn_if), ("error_if", test.error_if)) if t != ALWAYS
        ]
        if thresholds:
            message += f"; {', '.join(thresholds)}"
    result = DataTestResult(test.name, test.model, test.where, test.severity, failures, message, status, rows)
    level = {"pass": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}[status]
    log.log(level, "%s %s on %s: %s", status.upper(), test.name, test.model, message)
    return result


def raise_on_errors(results: Sequence[DataTestResult]) -> None:
    """Stop the pipeline when a test failed with status error; warnings only get reported."""
    failed = [r for r in results if r.status == "error" and r.error is None]
    if failed:
        lines = "\n".join(f"  {r.model}: {r.name}: {r.message} ({r.where})" for r in failed)
        raise DataTestError(
            f"{len(failed)} data test(s) failed, so the run stops before training. Inspect the data or the model, then "
            "re-run.\n"
            f"{lines}"
        )


def results_to_dicts(results: Sequence[DataTestResult]) -> list[dict[str, Any]]:
    return [{**{k: v for k, v in asdict(r).items() if k != "error"}, "passed": r.passed} for r in results]


def raise_broken(results: Sequence[DataTestResult]) -> None:
    """Raise the error of the first test that could not run, if any."""
    for result in results:
        if result.error is not None:
            raise result.error
