"""The SQL project built once for one run: rendered models, their graph, the run order and the compiled data tests.

``compile``, ``ls``, ``check``, ``transform``, ``test`` and the SQL unit tests all start from
:meth:`CompiledProject.build`, so they render the same SQL, report a cycle with the same file names and refuse the
same broken YAML. Building needs no Spark.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.errors import SqlProjectError
from jobs.run_context import RunContext
from jobs.sqlproject.datatests import DataTest, generic_tests, singular_tests
from jobs.sqlproject.graph import NodeInfo, dependencies, reachable, select, topological_order
from jobs.sqlproject.incremental import PreviousOutput
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
    #: models that could not be rendered, with why (built with ``keep_going``): in the graph, not in ``rendered``
    problems: Mapping[str, SqlProjectError] = field(default_factory=dict)
    #: data tests that could not be compiled (``keep_going``)
    test_errors: tuple[SqlProjectError, ...] = ()
    #: the incremental models this run builds on an earlier output (``is_incremental()`` is true for them)
    incremental: Mapping[str, PreviousOutput] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        project: SqlProject,
        ctx: RunContext,
        keep_going: bool = False,
        previous: Callable[[RenderedModel], PreviousOutput | None] | None = None,
    ) -> CompiledProject:
        """Render every model, order them (a cycle names the files), compile every data test.

        With ``keep_going``, a model that does not render is kept in :attr:`problems` and the others are rendered
        still, as dbt goes on past a failing node: ``ls`` and ``--select`` work on the rest, and ``transform``
        skips only what reads it. A dependency cycle still stops here.
        ``previous``: an incremental model's earlier output to build on, or None; without it (``compile``,
        ``--full-refresh``), every model renders as on its first run, ``is_incremental()`` false.
        """
        renderer = Renderer.create(project, ctx)
        rendered: dict[str, RenderedModel] = {}
        problems: dict[str, SqlProjectError] = {}
        incremental: dict[str, PreviousOutput] = {}
        for name, model in project.models.items():
            try:
                rendered[name] = renderer.render(model)
                earlier = previous(rendered[name]) if previous and rendered[name].config.is_incremental else None
                if earlier is not None:  # rendered again, now that is_incremental() is true
                    renderer.previous[name] = earlier.view
                    rendered[name] = renderer.render(model)
                    incremental[name] = earlier
            except SqlProjectError as e:
                if not keep_going:
                    raise
                problems[name] = e
        graph = {**dependencies(rendered), **{name: () for name in problems}}
        graph = {name: graph[name] for name in project.models}
        describe = {name: project.relative(m.path) for name, m in project.models.items()}
        order = tuple(topological_order(graph, describe))
        errors: list[SqlProjectError] | None = [] if keep_going else None
        tests = tuple(generic_tests(project, renderer, errors) + singular_tests(project, renderer, errors))
        return cls(project, ctx, renderer, rendered, graph, order, tests, problems, tuple(errors or ()), incremental)

    @property
    def warnings(self) -> list[str]:
        """What rendering found questionable (a var that looks like quoted SQL, ``exceptions.warn``)."""
        return list(self.renderer.warnings)

    @classmethod
    def load(cls, root: Path, ctx: RunContext, vars_overrides: Mapping[str, Any] | None = None) -> CompiledProject:
        return cls.build(load_project(root, vars_overrides), ctx)

    @property
    def nodes(self) -> dict[str, NodeInfo]:
        nodes = {
            name: NodeInfo(m.model.parts, m.config.tags, m.config.materialized) for name, m in self.rendered.items()
        }
        for name in self.problems:  # what its folder and property file say; its own config() is unknown
            model = self.project.models[name]
            config = self.renderer.merged_config(model, {})
            tags = config.get("tags") or ()
            nodes[name] = NodeInfo(model.parts, tuple(tags), str(config.get("materialized") or "view"))
        return nodes

    def selected_names(self, selectors: Sequence[str] | None, exclude: Sequence[str] | None = None) -> set[str]:
        return select(self.graph, selectors, self.nodes, exclude)

    def selected(
        self, selectors: Sequence[str] | None = None, exclude: Sequence[str] | None = None
    ) -> list[RenderedModel]:
        """The selected models that rendered, in the order they run (see :meth:`broken` for the others)."""
        chosen = self.selected_names(selectors, exclude)
        return [self.rendered[name] for name in self.order if name in chosen and name in self.rendered]

    def broken(self, names: set[str] | None = None) -> list[tuple[str, SqlProjectError]]:
        """The models of ``names`` (default: all) that could not be rendered, in run order, with why."""
        return [(n, self.problems[n]) for n in self.order if n in self.problems and (names is None or n in names)]

    def with_ancestors(self, chosen: set[str]) -> set[str]:
        needed = set(chosen)
        for name in chosen:
            needed |= reachable(name, self.graph)
        return needed
