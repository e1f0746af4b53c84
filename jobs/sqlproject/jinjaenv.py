"""The Jinja environment of an SQL project, with what dbt's Jinja adds: ``return()``, ``{% do %}``, macros that
find each other whatever file they are in, and packages' macros under their package's name (``dbt_utils.star``).

``return(value)`` ends a macro and hands ``value`` (a list, a mapping, a relation: any object) to its caller. dbt
implements it the same way, as an exception caught where the macro was called: every macro Jinja compiles here is a
:class:`ReturningMacro`, which catches it. Almost every macro of a real package ends with
``{{ return(adapter.dispatch('name', 'package')(...)) }}``.

Macros are loaded once, but the names they use while a model renders (``ref``, ``this``, ``var``, ...) belong to
that model: :func:`rendering` sets the model being rendered for the current thread, and :class:`Dynamic` names
reach it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import jinja2
from jinja2.compiler import CodeGenerator

from jobs.errors import CompilationError


class MacroReturn(Exception):  # noqa: N818 - a control-flow signal, as dbt's own MacroReturn
    """Raised by ``return(value)``; the macro being called catches it and returns ``value``."""

    def __init__(self, value: Any) -> None:
        super().__init__("return() outside a macro")
        self.value = value


def return_(value: Any = "") -> None:
    """dbt's ``return()``: the calling macro's result is ``value``, not the text it rendered."""
    raise MacroReturn(value)


class ReturningMacro(jinja2.runtime.Macro):
    """A Jinja macro that honours ``return()``."""

    def _invoke(self, arguments: list[Any], autoescape: bool) -> Any:
        try:
            return super()._invoke(arguments, autoescape)
        except MacroReturn as returned:
            return returned.value


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, building every macro (``{% macro %}``, ``{% call %}``) as a :class:`ReturningMacro`."""

    def macro_def(self, macro_ref, frame) -> None:  # noqa: ANN001 - Jinja's internal types
        arg_tuple = ", ".join(repr(x.name) for x in macro_ref.node.args)
        name = getattr(macro_ref.node, "name", None)
        if len(macro_ref.node.args) == 1:
            arg_tuple += ","
        self.write(
            f"environment.macro_class(environment, macro, {name!r}, ({arg_tuple}),"
            f" {macro_ref.accesses_kwargs!r}, {macro_ref.accesses_varargs!r},"
            f" {macro_ref.accesses_caller!r}, context.eval_ctx.autoescape)"
        )


class SqlEnvironment(jinja2.Environment):
    """Strict (an undefined name is an error, never empty SQL), no HTML escaping, lines kept, ``{% do %}`` on."""

    code_generator_class = _CodeGenerator
    macro_class = ReturningMacro

    def __init__(self, loader: jinja2.BaseLoader) -> None:
        super().__init__(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            extensions=["jinja2.ext.do"],
        )


class Namespace:
    """A package's macros as attributes: ``dbt_utils.star(...)``; an unknown one names the package's macros."""

    def __init__(self, name: str, macros: Mapping[str, Any], where: str) -> None:
        self._name = name
        self._macros = macros
        self._where = where

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") or attribute == "jinja_pass_arg":
            raise AttributeError(attribute)
        if attribute in self._macros:
            return self._macros[attribute]
        known = ", ".join(sorted(m for m in self._macros if not m.startswith("test_"))) or "none"
        raise CompilationError(
            f"{self._name}.{attribute} is undefined: the package {self._name!r} ({self._where}) has no macro "
            f"{attribute!r}. Its macros: {known}."
        )

    def __contains__(self, name: str) -> bool:
        return name in self._macros

    def __repr__(self) -> str:
        return f"<package {self._name}>"


_CURRENT: contextvars.ContextVar[Any] = contextvars.ContextVar("rendering", default=None)


@contextmanager
def rendering(state: Any) -> Iterator[None]:
    """While the block runs, names such as ``ref`` and ``this`` used inside macros are those of ``state``."""
    token = _CURRENT.set(state)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current(name: str) -> Any:
    state = _CURRENT.get()
    if state is None:
        raise CompilationError(f"{name} is only available while a model, a test or a seed's SQL is rendered.")
    return state


def dynamic_function(name: str, attribute: str) -> Callable[..., Any]:
    """``ref``, ``source``, ``var``, ``config``, ... as macros loaded once see them: those of the model rendering."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(current(f"{name}()"), attribute)(*args, **kwargs)

    call.__name__ = name
    return call


class Dynamic:
    """A value of the model rendering (``this``, ``model``) as macros loaded once see it."""

    def __init__(self, name: str, attribute: str) -> None:
        self._name = name
        self._attribute = attribute

    def _value(self) -> Any:
        return getattr(current(self._name), self._attribute)

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") or attribute == "jinja_pass_arg":
            raise AttributeError(attribute)
        return getattr(self._value(), attribute)

    def __getitem__(self, key: Any) -> Any:
        return self._value()[key]

    def __str__(self) -> str:
        return str(self._value())

    def __eq__(self, other: object) -> bool:
        return self._value() == other

    def __hash__(self) -> int:
        return hash(self._value())

    def __bool__(self) -> bool:
        return bool(self._value())
