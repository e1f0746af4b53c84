"""Render models with Jinja: ``ref``, ``source``, ``var``, ``config``, the run's dates and the project's macros.

One render pass is also dbt's parse phase: ``ref()`` and ``source()`` record the model's dependencies while they
return the temp-view names the SQL reads from (``stg_predictions``, ``source__predictions``). Undefined names are
errors (``StrictUndefined``) and every error names the model file and line.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from jobs.errors import CompilationError, DependencyError, SqlProjectError
from jobs.run_context import RunContext
from jobs.sqlproject.config import source_key
from jobs.sqlproject.folderconfig import config_for
from jobs.sqlproject.literals import sql_literal
from jobs.sqlproject.modelconfig import ModelConfig, parse_config
from jobs.sqlproject.project import GENERIC_TESTS_DIR, MACROS_DIR, Model, SqlProject
from jobs.sqlproject.sourcemap import excerpt

SOURCE_VIEW_PREFIX = "source__"
GENERIC_TEST_PREFIX = "test_"  # a {% test name(...) %} block is the macro test_<name>


def source_view(name: str) -> str:
    """The temp-view name a source is registered under."""
    return f"{SOURCE_VIEW_PREFIX}{name}"


@dataclass(frozen=True)
class RenderedModel:
    """A model's SQL as Spark will run it, with what it depends on and its configuration."""

    model: Model
    sql: str
    template: str
    refs: tuple[str, ...]
    sources: tuple[str, ...]
    config: ModelConfig
    seeds: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.model.name


def _arguments(function: str, args: tuple, allowed: tuple[int, ...], usage: str, names: int = 2) -> None:
    if len(args) not in allowed or not all(isinstance(a, str) for a in args[:names]):
        got = ", ".join(repr(a) for a in args)
        raise CompilationError(f"{function}() takes {usage}. Got {function}({got}) instead.")


@dataclass
class _Recorder:
    """Collects what one render pass calls; a fresh one per model."""

    project: SqlProject
    model: Model
    refs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    seeds: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def ref(self, *args: Any) -> str:
        project_name = self.project.name or "<the project's name>"
        _arguments(
            "ref",
            args,
            (1, 2),
            f"a model or seed name, optionally after the project's name: ref('stg_orders') "
            f"or ref('{project_name}', 'stg_orders')",
        )
        if len(args) == 2 and args[0] != self.project.name:
            raise DependencyError(
                f"ref({args[0]!r}, {args[1]!r}): {args[0]!r} is not this project ({project_name!r}); "
                "models of other packages are not supported."
            )
        name = args[-1]
        if name in self.project.seeds and name not in self.project.models:
            if name not in self.seeds:
                self.seeds.append(name)
            return name
        if name not in self.project.models:
            seeds = f"; seeds: {', '.join(sorted(self.project.seeds))}" if self.project.seeds else ""
            models = ", ".join(sorted(self.project.models))
            raise DependencyError(f"ref({name!r}) names no model. Models: {models}{seeds}.")
        if name == self.model.name:
            raise DependencyError(f"Model {name!r} refers to itself with ref({name!r}).")
        if name not in self.refs:
            self.refs.append(name)
        return name

    def source(self, *args: Any) -> str:
        _arguments(
            "source",
            args,
            (1, 2),
            "a source's name, or a group and a table as in dbt: source('predictions') "
            "or source('ecom', 'raw_customers')",
        )
        name = source_key(args[0] if len(args) == 2 else None, args[-1])
        source = self.project.sources.get(name)
        if source is None or (len(args) == 1 and source.group):
            known = ", ".join(s.call for s in self.project.sources.values())
            call = "source(" + ", ".join(repr(a) for a in args) + ")"
            raise DependencyError(f"{call} names no source in sources.yml. Sources: {known}.")
        if name not in self.sources:
            self.sources.append(name)
        return source_view(name)

    def var(self, *args: Any) -> str:
        _arguments(
            "var",
            args,
            (1, 2),
            "a var's name and optionally a default: var('lookback_days') or var('lookback_days', 30)",
            names=1,
        )
        name = args[0]
        if name in self.project.vars:
            return sql_literal(self.project.vars[name], name)
        if len(args) == 2:
            return sql_literal(args[1], name)
        raise CompilationError(
            f"var({name!r}) has no value and no default. Set it in project.yml 'vars:' or with "
            f"--vars '{{\"{name}\": ...}}', or give a default: var({name!r}, 30). Vars: "
            f"{', '.join(sorted(self.project.vars)) or 'none'}."
        )

    def set_config(self, *args: Any, **kwargs: Any) -> str:
        if args:
            raise CompilationError(
                f"config() takes keyword arguments only, like config(materialized='table'). Got positional {args!r}."
            )
        self.config.update(kwargs)
        return ""


_TEST_BLOCK = re.compile(r"{%(-?)\s*test\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_END_TEST = re.compile(r"{%(-?)\s*endtest\s*(-?)%}")


class _ProjectLoader(jinja2.FileSystemLoader):
    """Reads templates as dbt does: ``{% test name(...) %}`` is the macro ``test_name``, lines kept intact."""

    def get_source(self, environment: jinja2.Environment, template: str):
        source, filename, uptodate = super().get_source(environment, template)
        if "test" in source:
            source = _TEST_BLOCK.sub(rf"{{%\1 macro {GENERIC_TEST_PREFIX}\2(", source)
            source = _END_TEST.sub(r"{%\1 endmacro \2%}", source)
        return source, filename, uptodate


class Renderer:
    """Renders the models of one project for one run; :meth:`create` builds its Jinja environment and macros."""

    def __init__(self, project: SqlProject, ctx: RunContext, env: jinja2.Environment) -> None:
        self.project = project
        self.ctx = ctx
        self.env = env

    @classmethod
    def create(cls, project: SqlProject, ctx: RunContext) -> Renderer:
        env = jinja2.Environment(
            loader=_ProjectLoader(str(project.root)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )
        env.globals.update(
            {
                "ds": ctx.ds_str,
                "data_interval_start": ctx.data_interval_start.isoformat(),
                "data_interval_end": ctx.data_interval_end.isoformat(),
            }
        )
        renderer = cls(project, ctx, env)
        renderer._load_macros()
        return renderer

    def _load_macros(self) -> None:
        """Macros of ``macros/*.sql``, in file-name order; a macro may call macros of earlier files."""
        for path in self.project.macro_files:
            name = path.relative_to(self.project.root).as_posix()
            try:
                module = self.env.get_template(name).make_module()
            except jinja2.TemplateError as e:
                raise CompilationError(_jinja_message(self.project, path, e, "Macro file")) from e
            macros = {key: getattr(module, key) for key in dir(module) if not key.startswith("_")}
            self.env.globals.update(macros)

    def render(self, model: Model) -> RenderedModel:
        recorder = _Recorder(self.project, model)
        name = model.path.relative_to(self.project.root).as_posix()
        context = {
            "ref": recorder.ref,
            "source": recorder.source,
            "var": recorder.var,
            "config": recorder.set_config,
            "this": model.name,
        }
        try:
            template = self.env.get_template(name)
            sql = template.render(context)
        except SqlProjectError as e:
            raise type(e)(_located(self.project, model, e, str(e))) from e
        except jinja2.TemplateError as e:
            raise CompilationError(
                _jinja_message(self.project, model.path, e, f"Compilation error in {model.name}")
            ) from e
        except Exception as e:  # an error inside a macro's Python-level call, e.g. a wrong argument type
            raise CompilationError(_located(self.project, model, e, f"{type(e).__name__}: {e}")) from e
        config = parse_config(
            self.merged_config(model, recorder.config), f"{model.name} ({self.project.relative(model.path)})"
        )
        source_text = model.path.read_text(encoding="utf-8")
        return RenderedModel(
            model=model,
            sql=_strip_statement(sql),
            template=source_text,
            refs=tuple(recorder.refs),
            sources=tuple(recorder.sources),
            config=config,
            seeds=tuple(recorder.seeds),
        )

    def merged_config(self, model: Model, own: Mapping[str, Any]) -> dict[str, Any]:
        """Folder config of project.yml < the property file's ``config:`` < the model's ``config()``; tags add up."""
        layers = [config_for(model.parts, self.project.model_folder_configs)] if model.parts else []
        props = self.project.properties.models.get(model.name)
        if props is not None and props.config:
            layers.append(dict(props.config))
        layers.append(dict(own))
        merged: dict[str, Any] = {}
        tags: list[str] = []
        for layer in layers:
            value = layer.pop("tags", None)
            if value is not None:
                tags.extend([value] if isinstance(value, str) else list(value) if isinstance(value, list) else [value])
            merged.update(layer)
        if tags:
            merged["tags"] = list(dict.fromkeys(tags))
        return merged

    def generic_tests(self) -> dict[str, jinja2.runtime.Macro]:
        """The project's ``{% test name(...) %}`` blocks by name (Jinja registers each as the macro ``test_<name>``)."""
        return {
            name.removeprefix(GENERIC_TEST_PREFIX): macro
            for name, macro in self.env.globals.items()
            if name.startswith(GENERIC_TEST_PREFIX) and isinstance(macro, jinja2.runtime.Macro)
        }

    def render_all(self, models: Mapping[str, Model] | None = None) -> dict[str, RenderedModel]:
        return {name: self.render(model) for name, model in (models or self.project.models).items()}


def _strip_statement(sql: str) -> str:
    """Spark's ``sql()`` takes one statement: drop a trailing semicolon, keep line numbers intact."""
    stripped = sql.rstrip()
    if stripped.endswith(";"):
        stripped = stripped[:-1]
    return stripped + "\n"


def _template_line(error: BaseException, path: Path) -> int | None:
    """The template line Jinja's rewritten traceback points at, for the given file."""
    lineno = getattr(error, "lineno", None)
    if lineno and getattr(error, "filename", None) in (str(path), None):
        return lineno
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
    return frames[-1].lineno if frames else None


def _located(project: SqlProject, model: Model, error: BaseException, message: str) -> str:
    line = _template_line(error, model.path)
    where = f"{project.relative(model.path)}, line {line}" if line else project.relative(model.path)
    snippet = excerpt(model.path.read_text(encoding="utf-8"), line) if line else ""
    return f"Compilation error in {model.name} ({where}): {message}{_in_macro(project, error)}{snippet}"


def _jinja_message(project: SqlProject, path: Path, error: jinja2.TemplateError, what: str) -> str:
    filename = Path(getattr(error, "filename", None) or path)
    line = getattr(error, "lineno", None) or _template_line(error, path)
    where = f"{project.relative(filename)}, line {line}" if line else project.relative(filename)
    hint = ""
    if isinstance(error, jinja2.UndefinedError):
        hint = (
            " Available in a model: ref(), source(), var(), config(), ds, data_interval_start, "
            "data_interval_end, this, and the macros of macros/."
        )
    snippet = excerpt(filename.read_text(encoding="utf-8"), line) if line and filename.is_file() else ""
    return f"{what} ({where}): {error.message or type(error).__name__}.{hint}{_in_macro(project, error)}{snippet}"


def _in_macro(project: SqlProject, error: BaseException) -> str:
    """Where inside a macro file the error happened, when the model's line is only the macro's call."""
    macro_dirs = {project.root / MACROS_DIR, project.root / GENERIC_TESTS_DIR}
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).parent in macro_dirs]
    if not frames:
        return ""
    return f" Raised inside a macro at {project.relative(Path(frames[-1].filename))}, line {frames[-1].lineno}."
