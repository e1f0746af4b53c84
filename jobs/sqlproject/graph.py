"""The models' dependency graph: topological order, cycles reported with their path, and ``--select``."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jobs.errors import DependencyError
from jobs.sqlproject.render import RenderedModel


def dependencies(rendered: Mapping[str, RenderedModel]) -> dict[str, tuple[str, ...]]:
    """Model name -> the models it refs (sources are not nodes: they exist before any model runs)."""
    return {name: model.refs for name, model in rendered.items()}


def topological_order(graph: Mapping[str, Sequence[str]], describe: Mapping[str, str] | None = None) -> list[str]:
    """Models in an order where each comes after what it refs; ties broken by name, so runs are repeatable."""
    sorter = graphlib.TopologicalSorter({name: graph[name] for name in sorted(graph)})
    try:
        sorter.prepare()
    except graphlib.CycleError as e:
        cycle = list(e.args[1])
        where = "".join(
            f"\n  {name}: {describe[name]}" for name in dict.fromkeys(cycle) if describe and name in describe
        )
        raise DependencyError(
            f"Dependency cycle: {' -> '.join(reversed(cycle))} (each model refs the next). "
            f"Remove one of these refs.{where}"
        ) from e
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def levels(graph: Mapping[str, Sequence[str]], order: Sequence[str], names: Iterable[str]) -> list[list[str]]:
    """``names`` grouped by depth, each group in ``order`` (a topological order of ``graph``).

    A model's depth is one more than its deepest dependency's, so the models of one group never read each other
    and can be built at the same time once the groups before them are done.
    """
    depth: dict[str, int] = {}
    for name in order:
        depth[name] = 1 + max((depth[d] for d in graph.get(name, ()) if d in depth), default=-1)
    wanted = set(names)
    groups: list[list[str]] = [[] for _ in range(max((depth[n] for n in wanted), default=-1) + 1)]
    for name in order:
        if name in wanted:
            groups[depth[name]].append(name)
    return groups


def reachable(start: str, edges: Mapping[str, Iterable[str]]) -> set[str]:
    """Every node reachable from ``start`` along ``edges`` (its ancestors for the ref graph), ``start`` excluded."""
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def downstream_edges(graph: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """The graph reversed: model -> the models that ref it."""
    children: dict[str, set[str]] = {name: set() for name in graph}
    for name, parents in graph.items():
        for parent in parents:
            children.setdefault(parent, set()).add(name)
    return children


@dataclass(frozen=True)
class NodeInfo:
    """What selectors match on besides the name: the file's path in the project, tags and materialization."""

    parts: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    materialized: str = "view"


METHODS = ("path", "tag", "config.materialized")


def select(
    graph: Mapping[str, Sequence[str]],
    selectors: Sequence[str] | None,
    nodes: Mapping[str, NodeInfo] | None = None,
    exclude: Sequence[str] | None = None,
) -> set[str]:
    """dbt's node selection.

    A selector is a model name, ``path:staging`` (a folder or file; a bare folder name works too), ``tag:nightly``
    or ``config.materialized:table``, with ``+`` before it (and what it reads) and/or after it (and what reads
    it). Selectors separated by spaces (or repeated options) are a union; joined by ``,`` an intersection.
    No selector selects every model; ``exclude`` (same grammar) removes models from the result. A selector that
    matches nothing is an error, never an empty run.
    """
    nodes = nodes or {}
    chosen = _union(graph, selectors, nodes, "--select") if selectors else set(graph)
    if exclude:
        chosen -= _union(graph, exclude, nodes, "--exclude")
    return chosen


def _union(graph, selectors: Sequence[str], nodes, option: str) -> set[str]:
    chosen: set[str] = set()
    for raw in selectors:
        for term in raw.split():
            parts = [_one(graph, part, nodes, option) for part in term.split(",") if part]
            chosen |= set.intersection(*parts) if parts else set()
    return chosen


def select_one(
    graph: Mapping[str, Sequence[str]], selector: str, nodes: Mapping[str, NodeInfo], option: str = "--select"
) -> set[str]:
    """The models one selector (no spaces, no commas) matches; one that matches nothing is an error."""
    return _one(graph, selector, nodes, option)


def _one(graph, selector: str, nodes, option: str) -> set[str]:
    core = selector.strip("+")
    base = _method(graph, core, nodes, option, selector)
    chosen = set(base)
    if selector.startswith("+"):
        for name in base:
            chosen |= reachable(name, graph)
    if selector.endswith("+"):
        children = downstream_edges(graph)
        for name in base:
            chosen |= reachable(name, children)
    return chosen


def _method(graph, core: str, nodes, option: str, selector: str) -> set[str]:
    method, _, value = core.rpartition(":")
    if method and method not in METHODS:
        raise DependencyError(
            f"{option} {selector!r}: unknown selector method {method!r}. Methods: {', '.join(METHODS)} "
            "(or a model name)."
        )
    info = {name: nodes.get(name, NodeInfo()) for name in graph}
    if method == "tag":
        found = {name for name, node in info.items() if value in node.tags}
        known = sorted({t for node in info.values() for t in node.tags})
        what = f"Tags: {', '.join(known) or 'none'}"
    elif method == "config.materialized":
        found = {name for name, node in info.items() if node.materialized == value}
        what = "Materializations: " + ", ".join(sorted({n.materialized for n in info.values()}))
    elif method == "path" or (not method and core not in graph):
        wanted = tuple(p for p in value.replace("\\", "/").strip("/").removesuffix(".sql").split("/") if p)
        found = {name for name, node in info.items() if _under(node.parts, wanted)}
        what = (
            "Models: "
            + ", ".join(sorted(graph))
            + "; folders: "
            + ", ".join(sorted({"/".join(n.parts[:-1]) for n in info.values() if len(n.parts) > 1}))
        )
    else:
        found = {core} if core in graph else set()
        what = f"Models: {', '.join(sorted(graph))}"
    if not found:
        raise DependencyError(f"{option} {selector!r} names no model. {what}.")
    return found


def _under(parts: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    """``staging`` matches staging/x; ``sql/staging`` too (the project folder's own name may lead)."""
    return any(candidate and parts[: len(candidate)] == candidate for candidate in (wanted, wanted[1:]))
