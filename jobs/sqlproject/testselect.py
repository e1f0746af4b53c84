"""Which tests ``retrain test --select`` runs: dbt's selection of data tests and unit tests.

A selector that names models (a name, ``path:``, ``tag:``, ``config.materialized:``, with ``+`` and ``,``) selects
the tests that read one of them, as dbt's eager indirect selection does; ``tag:x`` also selects the tests tagged
``x``; ``test_type:unit``, ``test_type:data`` (and dbt's ``generic`` and ``singular``) select tests by kind; a unit
test's or a singular test's name selects that test. Spaces (or repeated options) are a union, ``,`` an
intersection, and ``--exclude`` removes what it matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobs.errors import DependencyError
from jobs.sqlproject.compiled import CompiledProject
from jobs.sqlproject.datatests import DataTest
from jobs.sqlproject.graph import select_one
from jobs.sqlproject.unittests import UnitTestCase, collect_cases

TEST_TYPES = ("unit", "data", "generic", "singular")


@dataclass(frozen=True)
class SelectedTests:
    """The data tests and unit tests to run, each in the project's order."""

    data: tuple[DataTest, ...]
    unit: tuple[UnitTestCase, ...]


class _Catalogue:
    """Every test of a project, each under a key: ``("data", index)`` or ``("unit", "<model>::<case>")``."""

    def __init__(self, compiled: CompiledProject) -> None:
        self.compiled = compiled
        self.data = {("data", str(i)): test for i, test in enumerate(compiled.tests)}
        self.unit = {("unit", case.id): case for case in collect_cases(compiled.project)}

    def all(self) -> set[tuple[str, str]]:
        return set(self.data) | set(self.unit)

    def of_models(self, models: set[str]) -> set[tuple[str, str]]:
        found = {key for key, test in self.data.items() if any(d in models for d in test.depends_on)}
        return found | {key for key, case in self.unit.items() if case.model.name in models}

    def term(self, term: str, option: str) -> set[tuple[str, str]]:
        method, _, value = term.rpartition(":")
        if method == "test_type":
            if value not in TEST_TYPES:
                raise DependencyError(f"{option} {term!r}: test_type is one of {', '.join(TEST_TYPES)}.")
            if value == "unit":
                return set(self.unit)
            return {k for k, t in self.data.items() if value == "data" or t.kind == value}
        named = {k for k, c in self.unit.items() if term in (c.name, c.id)}
        named |= {k for k, t in self.data.items() if t.kind == "singular" and t.name == term}
        named |= {k for k, t in self.data.items() if term in t.depends_on and term not in self.compiled.graph}
        tagged = {k for k, t in self.data.items() if method == "tag" and value in t.tags}
        if named and not tagged:
            return named
        try:
            models = select_one(self.compiled.graph, term, self.compiled.nodes, option)
        except DependencyError:
            if tagged:
                return tagged
            raise DependencyError(
                f"{option} {term!r} names no model and no test. Models: {', '.join(sorted(self.compiled.graph))}; "
                f"unit tests: {', '.join(sorted(c.id for c in self.unit.values())) or 'none'}; or test_type:unit, "
                "test_type:data."
            ) from None
        return tagged | self.of_models(models)

    def union(self, selectors: Sequence[str], option: str) -> set[tuple[str, str]]:
        chosen: set[tuple[str, str]] = set()
        for raw in selectors:
            for term in raw.split():
                parts = [self.term(part, option) for part in term.split(",") if part]
                chosen |= set.intersection(*parts) if parts else set()
        return chosen


def select_tests(
    compiled: CompiledProject, selectors: Sequence[str] | None = None, exclude: Sequence[str] | None = None
) -> SelectedTests:
    """The tests ``selectors`` pick (all without any), less those ``exclude`` picks."""
    catalogue = _Catalogue(compiled)
    chosen = catalogue.union(selectors, "--select") if selectors else catalogue.all()
    if exclude:
        chosen -= catalogue.union(exclude, "--exclude")
    return SelectedTests(
        data=tuple(test for key, test in catalogue.data.items() if key in chosen),
        unit=tuple(case for key, case in catalogue.unit.items() if key in chosen),
    )
