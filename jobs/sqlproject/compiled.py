"""The SQL project built once for one run: rendered models, their graph, the run order and the compiled data tests.

``compile``, ``ls``, ``check``, ``transform``, ``test-data`` and the SQL unit tests all start from
:meth:`CompiledProject.build`, so they render the same SQL, report a cycle with the same file names and refuse the
same broken YAML. Building needs no Spark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.run_context import RunContext
from jobs.sqlproject.datatests import DataTest, generic_tests, singular_tests
from jobs.sqlproject.graph import NodeInfo, dependencies, reachable, select, topological_order
from jobs.sqlproject.project import SqlProject, load_project
from jobs.sqlproject.render import RenderedModel, Renderer


@dataclass(frozen=True)
class CompiledProject:
    project: SqlProject
    ctx: RunContext
    renderer: Renderer
    rendered: Mapping[str, RenderedModel]
    graph: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]
    tests: tuple[DataTest, ...]

    @classmethod
    def build(cls, project: SqlProject, ctx: RunContext) -> CompiledProject:
        """Render every model, order them (a cycle names the files), compile every data test."""
        renderer = Renderer.create(project, ctx)
        rendered = renderer.render_all()
        graph = dependencies(rendered)
        describe = {name: project.relative(m.model.path) for name, m in rendered.items()}
        order = topological_order(graph, describe)
        tests = generic_tests(project, renderer) + singular_tests(project, renderer)
        return cls(project, ctx, renderer, rendered, graph, tuple(order), tuple(tests))

    @classmethod
    def load(cls, root: Path, ctx: RunContext, vars_overrides: Mapping[str, Any] | None = None) -> CompiledProject:
        return cls.build(load_project(root, vars_overrides), ctx)

    @property
    def nodes(self) -> dict[str, NodeInfo]:
        return {
            name: NodeInfo(m.model.parts, m.config.tags, m.config.materialized) for name, m in self.rendered.items()
        }

    def selected_names(self, selectors: Sequence[str] | None, exclude: Sequence[str] | None = None) -> set[str]:
        return select(self.graph, selectors, self.nodes, exclude)

    def selected(
        self, selectors: Sequence[str] | None = None, exclude: Sequence[str] | None = None
    ) -> list[RenderedModel]:
        """The selected models, in the order they run."""
        chosen = self.selected_names(selectors, exclude)
        return [self.rendered[name] for name in self.order if name in chosen]

    def with_ancestors(self, chosen: set[str]) -> set[str]:
        needed = set(chosen)
        for name in chosen:
            needed |= reachable(name, self.graph)
        return needed
