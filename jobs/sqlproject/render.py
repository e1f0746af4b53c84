"""Render models with Jinja: ``ref``, ``source``, ``var``, ``config``, the run's dates, dbt's context names, the
project's macros and its packages' (``dbt_utils.star(...)``).

One render pass is also dbt's parse phase: ``ref()`` and ``source()`` record the model's dependencies while they
return the relations the SQL reads from (rendered as the temp views ``stg_predictions``, ``source__predictions``).
Undefined names are errors (``StrictUndefined``) and every error names the model file and line.

As in dbt, ``execute`` is false in that pass, and ``adapter.get_columns_in_relation`` knows no columns: a model
whose SQL depends on them (``dbt_utils.star``, ``union_relations``) is rendered again when it runs, with Spark
there to say what its inputs' columns are (``Renderer.render(model, columns=...)``).
"""

from __future__ import annotations

import logging
import os
import re
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from jobs.errors import CompilationError, DependencyError, SqlProjectError
from jobs.run_context import RunContext
from jobs.sqlproject.config import source_key
from jobs.sqlproject.dbtcontext import (
    Adapter,
    Column,
    Relation,
    env_var_function,
    exceptions_namespace,
    invocation_id,
    log_message,
    modules_namespace,
)
from jobs.sqlproject.folderconfig import config_for
from jobs.sqlproject.jinjaenv import (
    Dynamic,
    MacroReturn,
    Namespace,
    SqlEnvironment,
    current,
    dynamic_function,
    rendering,
    return_,
)
from jobs.sqlproject.literals import VarValue, sql_filter
from jobs.sqlproject.modelconfig import NO_EFFECT, ModelConfig, parse_config
from jobs.sqlproject.project import Model, SqlProject
from jobs.sqlproject.sourcemap import excerpt

log = logging.getLogger(__name__)

SOURCE_VIEW_PREFIX = "source__"
GENERIC_TEST_PREFIX = "test_"  # a {% test name(...) %} block is the macro test_<name>
#: the packages whose macros are also callable without their name, as dbt's own are
GLOBAL_PACKAGES = ("dbt",)


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
    #: the SQL depends on ``execute`` or on its inputs' columns: rendered again when it runs, with Spark at hand
    executes: bool = False

    @property
    def name(self) -> str:
        return self.model.name


def _arguments(function: str, args: tuple, allowed: tuple[int, ...], usage: str, names: int = 2) -> None:
    if len(args) not in allowed or not all(isinstance(a, str) for a in args[:names]):
        got = ", ".join(repr(a) for a in args)
        raise CompilationError(f"{function}() takes {usage}. Got {function}({got}) instead.")


@dataclass
class _Recorder:
    """What one render pass of one model calls, and what it is rendered for; a fresh one per model."""

    project: SqlProject
    model: Model
    warn: Callable[[str], None]
    #: Spark's answer to "what are the columns of this view?" while the model runs; None when rendering without it
    columns: Callable[[str], list[Column]] | None = None
    refs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    seeds: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    used_execute: bool = False
    #: the view of the model's previous output, in an incremental run (``is_incremental()`` is then true)
    previous_view: str | None = None

    @property
    def execute(self) -> bool:
        return self.columns is not None

    @property
    def this(self) -> Relation:
        """The model's own relation: its previous output in an incremental run, else its temp view."""
        target = self.project.target
        if self.previous_view is not None:
            return Relation(
                self.previous_view, identifier=self.model.name, schema=target.schema, database=target.database
            )
        return Relation(self.model.name, schema=target.schema, database=target.database)

    def is_incremental(self) -> bool:
        """dbt's ``is_incremental()``: the model is incremental, an earlier run built it, and this is no full
        refresh. Then ``{{ this }}`` is that output."""
        return self.previous_view is not None

    def ref(self, *args: Any) -> Relation:
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
        target = self.project.target
        if name in self.project.seeds and name not in self.project.models:
            if name not in self.seeds:
                self.seeds.append(name)
            return Relation(name, schema=target.schema, database=target.database)
        if name not in self.project.models:
            seeds = f"; seeds: {', '.join(sorted(self.project.seeds))}" if self.project.seeds else ""
            models = ", ".join(sorted(self.project.models))
            raise DependencyError(f"ref({name!r}) names no model. Models: {models}{seeds}.")
        if name == self.model.name:
            raise DependencyError(f"Model {name!r} refers to itself with ref({name!r}).")
        if name not in self.refs:
            self.refs.append(name)
        return Relation(name, schema=target.schema, database=target.database)

    def source(self, *args: Any) -> Relation:
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
        schema, _, identifier = (source.table or "").rpartition(".")
        return Relation(
            source_view(name), identifier=identifier or source.table_name, schema=schema or source.group or None
        )

    def var(self, *args: Any) -> VarValue:
        _arguments(
            "var",
            args,
            (1, 2),
            "a var's name and optionally a default: var('lookback_days') or var('lookback_days', 30)",
            names=1,
        )
        name = args[0]
        if name in self.project.vars:
            from_command_line = name in self.project.command_line_vars
            return VarValue(name, self.project.vars[name], from_command_line, self.warn)
        if len(args) == 2:
            return VarValue(name, args[1], False, self.warn)
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

    def columns_in(self, relation: Any) -> list[Column]:
        """``adapter.get_columns_in_relation``: the view's columns while the model runs, none before (dbt's parse)."""
        self.used_execute = True
        if self.columns is None:
            return []
        return self.columns(str(relation))


class _Execute:
    """dbt's ``execute``: false while models are parsed (rendered without Spark), true when one runs."""

    def __bool__(self) -> bool:
        state = current("execute")
        state.used_execute = True
        return state.execute

    def __eq__(self, other: object) -> bool:
        return bool(self) == other

    def __hash__(self) -> int:
        return hash(bool(self))

    def __str__(self) -> str:
        return str(bool(self))


_COLUMNS_IN = dynamic_function("adapter.get_columns_in_relation", "columns_in")
_TEST_BLOCK = re.compile(r"{%(-?)\s*test\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_END_TEST = re.compile(r"{%(-?)\s*endtest\s*(-?)%}")


class _ProjectLoader(jinja2.BaseLoader):
    """Reads templates by path (the project's, or a package's anywhere) as dbt does: ``{% test name(...) %}`` is
    the macro ``test_name``, lines kept intact."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_source(self, environment: jinja2.Environment, template: str):
        path = Path(template) if Path(template).is_absolute() else self.root / template
        try:
            source = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise jinja2.TemplateNotFound(template) from None
        if "test" in source:
            source = _TEST_BLOCK.sub(rf"{{%\1 macro {GENERIC_TEST_PREFIX}\2(", source)
            source = _END_TEST.sub(r"{%\1 endmacro \2%}", source)
        mtime = path.stat().st_mtime
        return source, str(path), lambda: path.is_file() and path.stat().st_mtime == mtime


class Renderer:
    """Renders the models of one project for one run; :meth:`create` builds its Jinja environment and macros."""

    def __init__(self, project: SqlProject, ctx: RunContext, env: jinja2.Environment) -> None:
        self.project = project
        self.ctx = ctx
        self.env = env
        #: macros by package (None: the project's own)
        self.scopes: dict[str | None, dict[str, Any]] = {}
        self.macro_files: set[Path] = set()
        #: what a render found questionable (a var that looks like quoted SQL, ``exceptions.warn``), said once each
        self.warnings: list[str] = []
        self.notices: list[str] = []
        #: incremental models built on an earlier output: model -> the view of that output (``{{ this }}``)
        self.previous: dict[str, str] = {}

    @classmethod
    def create(cls, project: SqlProject, ctx: RunContext, environ: Mapping[str, str] | None = None) -> Renderer:
        """``environ``: what ``env_var()`` reads (default: this process's environment, which dbt's ``env_var`` is
        for; secrets are refused)."""
        env = SqlEnvironment(_ProjectLoader(project.root))
        renderer = cls(project, ctx, env)
        env.filters["sql"] = sql_filter
        env.globals.update(
            {
                "ds": ctx.ds_str,
                "data_interval_start": ctx.data_interval_start.isoformat(),
                "data_interval_end": ctx.data_interval_end.isoformat(),
                "target": project.target,
                "env_var": env_var_function(os.environ if environ is None else environ),
                "invocation_id": invocation_id(
                    project.name, ctx.ds_str, (ctx.data_interval_start, ctx.data_interval_end)
                ),
                "run_started_at": ctx.data_interval_end,
                "log": log_message,
                "exceptions": exceptions_namespace(renderer.warn),
                "modules": modules_namespace(),
                "adapter": Adapter(
                    renderer.scopes.get,
                    project.dispatch,
                    dynamic_function("adapter.get_columns_in_relation", "columns_in"),
                ),
                "return": return_,
                "execute": _Execute(),
                "ref": dynamic_function("ref", "ref"),
                "source": dynamic_function("source", "source"),
                "var": dynamic_function("var", "var"),
                "config": dynamic_function("config", "set_config"),
                "this": Dynamic("this", "this"),
                "is_incremental": dynamic_function("is_incremental", "is_incremental"),
            }
        )
        renderer._load_macros()
        return renderer

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
            log.warning("%s", message)

    def _module_macros(self, path: Path, scope: Mapping[str, Any], what: str) -> dict[str, Any]:
        """The macros a file defines, its names resolved in ``scope`` (filled later: any order works)."""
        try:
            template = self.env.get_template(str(path))
            context = template.new_context(scope, shared=True)  # type: ignore[arg-type]
            for _ in template.root_render_func(context):
                pass
        except jinja2.TemplateError as e:
            raise CompilationError(_jinja_message(self.project, path, e, what)) from e
        return {name: value for name, value in context.vars.items() if isinstance(value, jinja2.runtime.Macro)}

    def _load_macros(self) -> None:
        """Every package's macros under its name, then the project's; a macro may call one of any file."""
        from collections import ChainMap

        packages = {p.name: p for p in self.project.packages}
        for name, package in packages.items():
            self.scopes[name] = {}
            self.env.globals[name] = Namespace(name, self.scopes[name], package.where)
        for name, package in packages.items():
            scope = ChainMap(self.scopes[name], self.env.globals)
            for path in package.macro_files:
                self.macro_files.add(path)
                self.scopes[name].update(self._module_macros(path, scope, f"Macro file of package {name}"))
            if name in GLOBAL_PACKAGES:
                self.env.globals.update(self.scopes[name])
        own: dict[str, Any] = {}
        self.scopes[None] = own
        if self.project.name and self.project.name not in packages:
            self.env.globals[self.project.name] = Namespace(self.project.name, own, "this project")
            self.scopes[self.project.name] = own
        for path in self.project.macro_files:
            self.macro_files.add(path)
            own.update(self._module_macros(path, self.env.globals, "Macro file"))
        self.env.globals.update(own)

    @contextmanager
    def scope(self, model: Model, columns: Callable[[str], list[Column]] | None = None) -> Iterator[_Recorder]:
        """Names such as ``ref`` and ``this`` are ``model``'s while the block runs (a test's macro, say)."""
        previous = self.previous.get(model.name)
        recorder = _Recorder(self.project, model, self._warner(model), columns, previous_view=previous)
        with rendering(recorder):
            yield recorder

    def _warner(self, model: Model) -> Callable[[str], None]:
        where = self.project.relative(model.path)
        return lambda message: self.warn(f"{model.name} ({where}): {message}")

    def render(self, model: Model, columns: Callable[[str], list[Column]] | None = None) -> RenderedModel:
        """Render ``model``; with ``columns`` (Spark's view of its inputs) as it runs, ``execute`` being true."""
        with self.scope(model, columns) as recorder:
            name = str(model.path)
            context = {
                "ref": recorder.ref,
                "source": recorder.source,
                "var": recorder.var,
                "config": recorder.set_config,
                "this": recorder.this,
                "is_incremental": recorder.is_incremental,
            }
            try:
                template = self.env.get_template(name)
                sql = template.render(context)
            except MacroReturn as e:
                raise CompilationError(
                    _located(self.project, model, e, "return() is only valid inside a macro.")
                ) from None
            except SqlProjectError as e:
                raise type(e)(_located(self.project, model, e, str(e))) from e
            except jinja2.TemplateError as e:
                raise CompilationError(
                    _jinja_message(self.project, model.path, e, f"Compilation error in {model.name}")
                ) from e
            except Exception as e:  # an error inside a macro's Python-level call, e.g. a wrong argument type
                raise CompilationError(_located(self.project, model, e, f"{type(e).__name__}: {e}")) from e
        where = f"{model.name} ({self.project.relative(model.path)})"
        own = dict(recorder.config)
        props = self.project.properties.models.get(model.name)
        for key in [*own, *(props.config if props is not None and props.config else ())]:
            if key in NO_EFFECT:
                self.notice(f"{where}: config {key!r} has no effect here: {NO_EFFECT[key]}.")
        config = parse_config(self.merged_config(model, own), where)
        source_text = model.path.read_text(encoding="utf-8")
        return RenderedModel(
            model=model,
            sql=_strip_statement(sql),
            template=source_text,
            refs=tuple(recorder.refs),
            sources=tuple(recorder.sources),
            config=config,
            seeds=tuple(recorder.seeds),
            executes=recorder.used_execute,
        )

    def notice(self, message: str) -> None:
        if message not in self.notices:
            self.notices.append(message)
            log.info("Notice: %s", message)

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
        """The ``{% test name(...) %}`` blocks by name (Jinja registers each as the macro ``test_<name>``): the
        project's own as ``name``, a package's as ``package.name`` (``dbt_utils.accepted_range``)."""
        found = {}
        for package in [None, *(p.name for p in self.project.packages)]:
            for name, macro in self.scopes.get(package, {}).items():
                if name.startswith(GENERIC_TEST_PREFIX):
                    test = name.removeprefix(GENERIC_TEST_PREFIX)
                    found[test if package is None else f"{package}.{test}"] = macro
        return found

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
    text = filename.read_text(encoding="utf-8") if filename.is_file() else None
    if isinstance(error, jinja2.TemplateSyntaxError) and text is not None:
        hint, opened = _syntax_hint(text, error)
        if opened:  # an unclosed block: shown where it opens, not where the file ended
            line, where = opened, f"{project.relative(filename)}, line {opened}"
    if isinstance(error, jinja2.UndefinedError):
        hint = (
            " Available in a model: ref(), source(), var(), config(), ds, data_interval_start, "
            "data_interval_end, this, and the macros of macros/; dbt's target, env_var(), invocation_id, "
            "run_started_at, log(), execute, exceptions, modules, adapter, return(); and the packages' macros "
            "as <package>.<macro> (dbt_utils.star)."
        )
    snippet = excerpt(text, line) if line and text is not None else ""
    message = (error.message or type(error).__name__).rstrip(".")
    return f"{what} ({where}): {message}.{hint}{_in_macro(project, error)}{snippet}"


#: Jinja's tags that open a block closed by ``end<tag>`` (``set`` only without ``=``: a block set)
_BLOCK_TAGS = ("if", "for", "macro", "call", "filter", "raw", "with", "set", "test", "materialization", "docs")
_TAG = re.compile(r"\{%-?\s*(\w+)([^%]*)%\}")


def _syntax_hint(text: str, error: jinja2.TemplateSyntaxError) -> tuple[str, int | None]:
    """How to fix a Jinja syntax error, and the line of the block it leaves open (None for another error)."""
    stack: list[tuple[str, int]] = []
    for match in _TAG.finditer(text):
        tag, rest = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 1
        if tag.startswith("end") and stack and stack[-1][0] == tag[3:]:
            stack.pop()
        elif tag in _BLOCK_TAGS and not (tag == "set" and "=" in rest):
            stack.append((tag, line))
    if "end of template" in (error.message or "") and stack:
        tag, line = stack[-1]
        return f" The {{% {tag} %}} at line {line} is never closed: add {{% end{tag} %}} where it should end.", line
    return (
        " Jinja's delimiters are {{ ... }} for a value, {% ... %} for a statement and {# ... #} for a comment: "
        "check that each one on this line is closed.",
        None,
    )


def _in_macro(project: SqlProject, error: BaseException) -> str:
    """Where inside a macro file the error happened, when the model's line is only the macro's call."""
    macro_files = set(project.macro_files) | {path for package in project.packages for path in package.macro_files}
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) in macro_files]
    if not frames:
        return ""
    return f" Raised inside a macro at {project.relative(Path(frames[-1].filename))}, line {frames[-1].lineno}."
