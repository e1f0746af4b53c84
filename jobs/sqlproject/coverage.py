"""CASE WHEN coverage: for each model, which WHEN and ELSE branches no unit-test fixture reaches.

A unit test that passes says the rows it gives come out right; it does not say which branches of the model's CASE
expressions those rows went through. Here each CASE of the rendered SQL (a macro's included) is found with sqlglot
(:mod:`jobs.sqlproject.sqltree`) and turned into a *probe*: the same CASE with every branch's result replaced by
the branch's number (a CASE without ELSE gets one: the rows no WHEN matches). The probe is evaluated where the CASE
is, in a copy of the SELECT that holds it (same FROM, joins, CTEs and, for the select list, the same WHERE), over
each unit test's given rows, and the numbers that come back are the branches reached. A CASE nested in another's
branch counts only the rows that reach that branch; one inside an aggregate is collected by ``collect_set``.

A CASE in a JOIN condition, GROUP BY, HAVING or ORDER BY is listed as not measured, with the reason, as is one
whose probe Spark cannot analyse (say, in a correlated subquery).

``retrain docs`` shows the table on each model's page; the SQL unit-test harness (``tests/test_sql_models.py``)
prints it at the end of ``make test``; :func:`format_table` is the text both print.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from jobs.errors import SqlProjectError
from jobs.sqlproject.sqltree import Positions, parse, sql_of

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from sqlglot import exp

    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.render import RenderedModel
    from jobs.sqlproject.unittests import UnitTestCase, UnitTestRunner

log = logging.getLogger(__name__)

_LABEL_WIDTH = 90
_MEASURED_CLAUSES = ("expressions", "where")
_CLAUSE_NAMES = {"joins": "a JOIN", "group": "GROUP BY", "having": "HAVING", "order": "ORDER BY", "qualify": "QUALIFY"}


@dataclass(frozen=True)
class Branch:
    """One WHEN, or the ELSE (written, or the implicit ``ELSE NULL``)."""

    index: int
    label: str
    line: int | None


@dataclass(frozen=True)
class CaseExpression:
    """One CASE of a model, numbered in the order of the SQL text."""

    number: int
    line: int | None
    column: str | None  # the output column it computes, when it is (part of) one
    branches: tuple[Branch, ...]
    not_measured: str | None = None  # why no probe can tell its branches apart

    @property
    def title(self) -> str:
        where = f"line {self.line}" if self.line else "line ?"
        return f"CASE #{self.number} ({where}{', ' + self.column if self.column else ''})"


@dataclass(frozen=True)
class Probe:
    """A query over a model's inputs returning one row: ``__case<n>`` = the array of branches CASE n reached."""

    sql: str
    cases: tuple[int, ...]


@dataclass(frozen=True)
class ModelCoverage:
    """A model's CASE expressions and, per CASE, per branch, the unit tests whose rows reach it."""

    model: str
    file: str
    cases: tuple[CaseExpression, ...]
    unit_tests: tuple[str, ...] = ()
    reached: Mapping[int, Mapping[int, tuple[str, ...]]] = field(default_factory=dict)
    error: str | None = None  # why nothing could be measured
    notes: tuple[str, ...] = ()  # unit tests whose run told nothing (their SQL differs, their probe failed)

    def measured(self) -> list[tuple[CaseExpression, Branch]]:
        if self.error:
            return []
        return [(case, branch) for case in self.cases if not case.not_measured for branch in case.branches]

    def fixtures(self, case: CaseExpression, branch: Branch) -> tuple[str, ...]:
        return self.reached.get(case.number, {}).get(branch.index, ())

    def missed(self) -> list[tuple[CaseExpression, Branch]]:
        return [(case, branch) for case, branch in self.measured() if not self.fixtures(case, branch)]

    @property
    def branch_count(self) -> int:
        return len(self.measured())

    @property
    def reached_count(self) -> int:
        return self.branch_count - len(self.missed())

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "file": self.file,
            "error": self.error,
            "notes": list(self.notes),
            "unit_tests": list(self.unit_tests),
            "branches": self.branch_count,
            "reached": self.reached_count,
            "cases": [
                {
                    "number": case.number,
                    "line": case.line,
                    "column": case.column,
                    "not_measured": case.not_measured,
                    "branches": [
                        {
                            "index": b.index,
                            "label": b.label,
                            "line": b.line,
                            "reached_by": list(self.fixtures(case, b)),
                        }
                        for b in case.branches
                    ],
                }
                for case in self.cases
            ],
        }


@dataclass
class _Found:
    """A CASE node of the tree with what the probe needs to know about it."""

    node: exp.Case
    select: exp.Select | None
    clause: str | None
    expression: CaseExpression


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _LABEL_WIDTH else text[: _LABEL_WIDTH - 3] + "..."


def _clause(case: exp.Case) -> tuple[exp.Select | None, str | None]:
    """The SELECT that evaluates the CASE, and the clause (``expressions``, ``where``, ...) it sits in."""
    from sqlglot import exp

    node: exp.Expression = case
    while node.parent is not None and not isinstance(node.parent, exp.Select):
        node = node.parent
    return (node.parent, node.arg_key) if node.parent is not None else (None, None)


def _output_column(case: exp.Case, select: exp.Select | None) -> str | None:
    from sqlglot import exp

    node: exp.Expression = case
    while node.parent is not None and node.parent is not select:
        node = node.parent
    return node.alias_or_name or None if isinstance(node, exp.Alias) else None


def _branches(case: exp.Case, positions: Positions) -> tuple[Branch, ...]:
    operand = case.args.get("this")
    branches = []
    for index, branch in enumerate(case.args.get("ifs") or []):
        condition = sql_of(branch.this)
        label = f"WHEN {condition} THEN {sql_of(branch.args['true'])}"
        if operand is not None:
            label = f"{sql_of(operand)} = {condition} THEN {sql_of(branch.args['true'])}"
            label = f"WHEN {label}"
        branches.append(Branch(index, _short(label), positions.file_line(branch)))
    default = case.args.get("default")
    last = branches[-1].line if branches else positions.file_line(case)
    if default is not None:
        branches.append(Branch(len(branches), _short(f"ELSE {sql_of(default)}"), positions.file_line(default) or last))
    else:
        branches.append(Branch(len(branches), "ELSE (none written: NULL when no WHEN holds)", last))
    return tuple(branches)


def find_cases(rendered: RenderedModel) -> tuple[exp.Expression, list[_Found]]:
    """Every CASE of a model's rendered SQL, numbered in text order, with where it is evaluated."""
    from sqlglot import exp

    tree = parse(rendered)
    positions = Positions(rendered, tree)
    nodes = sorted(tree.find_all(exp.Case), key=lambda n: (positions.offset(n) or 0, n.depth))
    found = []
    for number, node in enumerate(nodes, 1):
        select, clause = _clause(node)
        reason = None
        if select is None:
            reason = "not inside a SELECT of its own"
        elif clause not in _MEASURED_CLAUSES:
            reason = f"in {_CLAUSE_NAMES.get(clause or '', clause)}: only the select list and WHERE are probed"
        expression = CaseExpression(
            number=number,
            line=positions.file_line(node),
            column=_output_column(node, select) if clause == "expressions" else None,
            branches=_branches(node, positions),
            not_measured=reason,
        )
        found.append(_Found(node, select, clause, expression))
    return tree, found


def _numbered(case: exp.Case) -> exp.Case:
    """The CASE with each branch's result replaced by the branch's number; the ELSE is always written."""
    from sqlglot import exp

    numbered = case.copy()
    ifs = numbered.args.get("ifs") or []
    for index, branch in enumerate(ifs):
        branch.set("true", exp.Literal.number(index))
    numbered.set("default", exp.Literal.number(len(ifs)))
    return numbered


def _guarded(case: exp.Case, probe: exp.Expression, stop: exp.Expression) -> exp.Expression:
    """``probe`` evaluated only for the rows that reach ``case``: each enclosing CASE (or IF) keeps the branch that
    leads to it and yields NULL on the others."""
    from sqlglot import exp

    null = exp.Null
    node: exp.Expression = case
    while node.parent is not None and node.parent is not stop:
        parent = node.parent
        if isinstance(parent, exp.If) and isinstance(parent.parent, exp.Case) and parent.arg_key == "ifs":
            outer: exp.Case = parent.parent
            position = outer.args["ifs"].index(parent)
            copy = outer.copy()
            branches = copy.args["ifs"]
            if node.arg_key == "true":  # inside the result of WHEN #position
                for index, branch in enumerate(branches):
                    branch.set("true", probe.copy() if index == position else null())
                copy.set("default", null())
            else:  # inside the condition of WHEN #position: the WHENs before it did not hold
                for branch in branches[:position]:
                    branch.set("true", null())
                copy.set("ifs", branches[:position])
                copy.set("default", probe.copy())
            probe, node = copy, outer
            continue
        if isinstance(parent, exp.Case) and node.arg_key == "default":
            copy = parent.copy()
            for branch in copy.args.get("ifs") or []:
                branch.set("true", null())
            copy.set("default", probe.copy())
            probe = copy
        elif isinstance(parent, exp.If) and node.arg_key in ("true", "false"):  # IF(c, a, b)
            copy = parent.copy()
            other = "false" if node.arg_key == "true" else "true"
            copy.set(node.arg_key, probe.copy())
            copy.set(other, null())
            probe = copy
        node = parent
    return probe


def _aggregated(case: exp.Case, stop: exp.Expression) -> bool:
    """Inside an aggregate function (not a window's): the probe is collected, not projected."""
    from sqlglot import exp

    node = case.parent
    while node is not None and node is not stop:
        if isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Window):
            return True
        node = node.parent
    return False


def _ctes_above(select: exp.Expression) -> list[exp.CTE]:
    """The CTEs visible from ``select``: those of every WITH on its way up to the root, outermost first."""
    from sqlglot import exp

    found: list[list[exp.CTE]] = []
    node: exp.Expression | None = select
    while node is not None:
        with_ = node.args.get("with_")
        if isinstance(with_, exp.With):
            found.append([cte.copy() for cte in with_.expressions])
        node = node.parent
    return [cte for level in reversed(found) for cte in level]


def _probe_select(select: exp.Select, clause: str, columns: list[exp.Expression]) -> exp.Select:
    """Where the probe's columns are evaluated: the SELECT itself plus them (select list), or its FROM and joins
    without the WHERE (a CASE in WHERE sees every row the filter sees)."""
    from sqlglot import exp

    if clause == "where":
        inner = exp.Select(expressions=columns)
        for key in ("from_", "joins", "laterals"):
            value = select.args.get(key)
            if value:
                inner.set(key, [v.copy() for v in value] if isinstance(value, list) else value.copy())
        return inner
    inner = select.copy()
    for key in ("order", "limit", "offset", "with_"):
        inner.set(key, None)
    inner.set("expressions", [*inner.expressions, *columns])
    return inner


def build_probes(rendered: RenderedModel) -> tuple[list[CaseExpression], list[Probe]]:
    """The model's CASE expressions and the probes that measure them (one per SELECT and clause)."""
    from sqlglot import exp

    _, found = find_cases(rendered)
    groups: dict[tuple[int, str], list[_Found]] = {}
    for item in found:
        if item.expression.not_measured is None:
            groups.setdefault((id(item.select), item.clause), []).append(item)
    probes = []
    for (_, clause), items in groups.items():
        select = items[0].select
        columns, names = [], []
        for item in items:
            value = _guarded(item.node, _numbered(item.node), select)
            value = exp.func("collect_set", value) if _aggregated(item.node, select) else exp.Array(expressions=[value])
            names.append(f"__case{item.expression.number}")
            columns.append(exp.alias_(value, names[-1]))
        inner = sql_of(_probe_select(select, clause, columns))
        ctes = _ctes_above(select)
        with_ = sql_of(exp.With(expressions=ctes)) + "\n" if ctes else ""
        pairs = ", ".join(f"{n[len('__case') :]}, {n}" for n in names)
        sql = (
            f"{with_}SELECT case_number, branch FROM (\n{inner}\n) AS __probe\n"
            f"LATERAL VIEW explode(map({pairs})) AS case_number, branches\n"
            "LATERAL VIEW explode(branches) AS branch\nWHERE branch IS NOT NULL"
        )
        probes.append(Probe(sql, tuple(item.expression.number for item in items)))
    return [item.expression for item in found], probes


def _union(probes: Sequence[Probe]) -> str:
    return "\nUNION ALL\n".join(f"SELECT * FROM (\n{probe.sql}\n)" for probe in probes)


def run_probes(spark: SparkSession, probes: Sequence[Probe]) -> tuple[dict[int, set[int]], dict[int, str]]:
    """Branches reached per CASE number over the views registered now (one query for all the probes), and why,
    per CASE, a probe that Spark refused told nothing."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    from jobs.spark.messages import first_line

    # An internal error of Spark's planner on a probe (py4j's, not a PySparkException) is a probe refused too:
    # coverage is a report, and it must not fail the tests it reports on.
    refusals = (PySparkException, Py4JJavaError)
    reached: dict[int, set[int]] = {n: set() for probe in probes for n in probe.cases}
    refused: dict[int, str] = {}
    if not probes:
        return reached, refused
    try:
        rows = spark.sql(_union(probes)).collect()
    except refusals:
        rows = []
        for probe in probes:  # find the one Spark refuses
            try:
                rows += spark.sql(probe.sql).collect()
            except refusals as e:
                refused.update({number: first_line(e) for number in probe.cases})
    for row in rows:
        reached[int(row["case_number"])].add(int(row["branch"]))
    return reached, refused


def analyse(rendered: RenderedModel, file: str) -> tuple[ModelCoverage, list[Probe]]:
    """A model's CASE expressions (nothing reached yet) and their probes; a model sqlglot cannot read is an error
    of its coverage, not of the caller."""
    try:
        cases, probes = build_probes(rendered)
    except SqlProjectError as e:
        return ModelCoverage(rendered.name, file, (), error=str(e)), []
    return ModelCoverage(rendered.name, file, tuple(cases)), probes


class Tally:
    """Coverage gathered one unit test at a time, on the views :meth:`UnitTestRunner.prepare` registered for it:
    ``retrain docs`` runs every case through it, the pytest harness the cases it runs."""

    def __init__(self, compiled: CompiledProject) -> None:
        self.compiled = compiled
        self._static: dict[str, tuple[ModelCoverage, list[Probe]]] = {}
        self._reached: dict[str, dict[int, dict[int, list[str]]]] = {}
        self._refused: dict[str, dict[int, str]] = {}
        self._notes: dict[str, list[str]] = {}
        self._cases: dict[str, list[str]] = {}

    def _analysed(self, name: str) -> tuple[ModelCoverage, list[Probe]]:
        if name not in self._static:
            rendered = self.compiled.rendered.get(name)
            if rendered is None:  # it did not render (an undefined var, a bad ref): nothing to measure
                file = self.compiled.project.relative(self.compiled.project.models[name].path)
                self._static[name] = ModelCoverage(name, file, (), error="it did not render; its error is above"), []
            else:
                self._static[name] = analyse(rendered, self.compiled.project.relative(rendered.model.path))
        return self._static[name]

    def add(self, spark: SparkSession, case: UnitTestCase, rendered: RenderedModel) -> None:
        """Run the probes of ``case``'s model over the rows the case gives (registered as views already);
        ``rendered``: the model as rendered for the case."""
        name = case.model.name
        coverage, probes = self._analysed(name)
        self._cases.setdefault(name, []).append(case.name)
        if coverage.error or not coverage.cases:
            return
        if rendered.sql != self.compiled.rendered[name].sql:  # vars: or ds: of its own
            own, probes = analyse(rendered, coverage.file)
            if [len(c.branches) for c in own.cases] != [len(c.branches) for c in coverage.cases]:
                self._notes.setdefault(name, []).append(
                    f"{case.name}: its vars or ds change the model's CASE expressions; not counted"
                )
                return
        reached, refused = run_probes(spark, probes)
        self._refused.setdefault(name, {}).update(refused)
        for number, branches in reached.items():
            for branch in branches:
                self._reached.setdefault(name, {}).setdefault(number, {}).setdefault(branch, []).append(case.name)

    def coverage(self, name: str) -> ModelCoverage:
        coverage, _ = self._analysed(name)
        reached = self._reached.get(name, {})
        refused = self._refused.get(name, {})
        cases = tuple(
            CaseExpression(**{**c.__dict__, "not_measured": f"Spark refused its probe: {refused[c.number]}"})
            if c.number in refused and not reached.get(c.number)
            else c
            for c in coverage.cases
        )
        return ModelCoverage(
            model=name,
            file=coverage.file,
            cases=cases,
            unit_tests=tuple(self._cases.get(name, ())),
            reached={n: {b: tuple(by) for b, by in branches.items()} for n, branches in reached.items()},
            error=coverage.error,
            notes=tuple(self._notes.get(name, ())),
        )

    def result(self, models: Iterable[str] | None = None) -> dict[str, ModelCoverage]:
        """Per model in run order (every model, or ``models``)."""
        wanted = None if models is None else set(models)
        return {n: self.coverage(n) for n in self.compiled.order if wanted is None or n in wanted}


def of_cases(spark: SparkSession, compiled: CompiledProject, cases: Sequence[UnitTestCase]) -> dict[str, ModelCoverage]:
    """Coverage of the models of ``cases`` by those cases alone (``retrain test --select``); a case whose inputs
    cannot be registered is left out (its own result already says why)."""
    from jobs.sqlproject.unittests import UnitTestRunner

    runner = UnitTestRunner(spark, compiled)
    tally = Tally(compiled)
    ran: set[str] = set()
    for case in cases:
        if case.model.name not in compiled.rendered:
            continue
        try:
            rendered = runner.prepare(case)
        except SqlProjectError:
            continue
        tally.add(spark, case, rendered)
        ran.add(case.model.name)
    result = tally.result({case.model.name for case in cases})
    # A model none of whose cases could run was not measured: its 0% would say its tests miss every branch.
    unmeasured = "none of its unit tests could run; their errors are above"
    return {
        name: coverage if name in ran or coverage.error else replace(coverage, error=unmeasured)
        for name, coverage in result.items()
    }


def measure(
    spark: SparkSession, compiled: CompiledProject, runner: UnitTestRunner | None = None
) -> dict[str, ModelCoverage]:
    """Coverage of every model by every unit test of the project, run on ``spark``."""
    from jobs.sqlproject.unittests import UnitTestRunner, collect_cases

    runner = runner or UnitTestRunner(spark, compiled)
    tally = Tally(compiled)
    for case in collect_cases(compiled.project):
        tally.add(spark, case, runner.prepare(case))
    return tally.result()


def format_table(coverages: Mapping[str, ModelCoverage]) -> str:
    """The coverage table as text: one line per model, then every branch no unit test reaches."""
    lines = [
        "CASE WHEN coverage of the SQL unit tests",
        f"{'model':<28} {'CASE':>5} {'branches':>9} {'reached':>8} {'coverage':>9}",
    ]
    for name, coverage in coverages.items():
        if coverage.error:
            lines.append(f"{name:<28} not measured: {coverage.error}")
            continue
        if not coverage.cases:
            lines.append(f"{name:<28} {0:>5} {'-':>9} {'-':>8} {'-':>9}")
            continue
        total, reached = coverage.branch_count, coverage.reached_count
        share = f"{100 * reached / total:.0f}%" if total else "-"
        lines.append(f"{name:<28} {len(coverage.cases):>5} {total:>9} {reached:>8} {share:>9}")
    missed = [
        f"  {coverage.file}, line {branch.line or case.line or '?'}: {case.title}: {branch.label}"
        for coverage in coverages.values()
        for case, branch in coverage.missed()
    ]
    if missed:
        lines += ["Branches no unit test reaches:", *missed]
    unmeasured = [
        f"  {coverage.file}: {case.title}: {case.not_measured}"
        for coverage in coverages.values()
        if not coverage.error
        for case in coverage.cases
        if case.not_measured
    ]
    if unmeasured:
        lines += ["CASE expressions not measured:", *unmeasured]
    notes = [f"  {coverage.model}: {note}" for coverage in coverages.values() for note in coverage.notes]
    if notes:
        lines += ["Notes:", *notes]
    return "\n".join(lines)
