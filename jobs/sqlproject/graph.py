"""The models' dependency graph: topological order, cycles reported with their path, and ``--select``."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence

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


def select(graph: Mapping[str, Sequence[str]], selectors: Sequence[str] | None) -> set[str]:
    """dbt's node selection: ``name``, ``+name`` (with its ancestors), ``name+`` (with its descendants).

    No selector selects every model; several selectors are a union; ``,`` and spaces also separate selectors.
    """
    if not selectors:
        return set(graph)
    children = downstream_edges(graph)
    chosen: set[str] = set()
    for raw in selectors:
        for selector in raw.replace(",", " ").split():
            name = selector.strip("+")
            if name not in graph:
                raise DependencyError(f"--select {selector!r} names no model. Models: {', '.join(sorted(graph))}.")
            chosen.add(name)
            if selector.startswith("+"):
                chosen |= reachable(name, graph)
            if selector.endswith("+"):
                chosen |= reachable(name, children)
    return chosen
