"""The names dbt projects use in their Jinja, with dbt's meaning on Spark: relations, ``target``, ``adapter``,
``env_var``, ``invocation_id``, ``run_started_at``, ``log``, ``exceptions`` and ``modules``.

Time is the run's, not the clock's: ``run_started_at`` is the run's data-interval end and ``invocation_id`` is
derived from the project and the run, so rendering a date again gives the same SQL (the model store records a hash
of each model's SQL).
"""

from __future__ import annotations

import datetime
import itertools
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from jobs.errors import CompilationError

log = logging.getLogger("jobs.sqlproject.models")

ADAPTER_TYPE = "spark"
#: dbt's dispatch prefixes for Spark, most specific first
DISPATCH_PREFIXES = (f"{ADAPTER_TYPE}__", "default__")
#: where temp views resolve: Spark's session catalog and its current database
CATALOG, SCHEMA = "spark_catalog", "default"
#: settings whose values are secrets, and dbt's own marker of one: a model's SQL is printed by `retrain compile`,
#: logged in errors and kept in Spark's plans, so env_var() never puts them there
SECRET_VARIABLES = ("DATABASE_URL", "ADMIN_JWT_TOKEN", "SECRET_KEY", "NOTIFY_WEBHOOK_URL", "PGPASSWORD")
SECRET_PREFIX = "DBT_ENV_SECRET_"


class Relation(str):
    """A relation a model reads or is (``ref()``, ``source()``, ``this``): renders as the temp view Spark reads.

    A ``str`` (the view's name), so SQL built from it by concatenation or ``~`` is unchanged, with dbt's attributes
    on top: ``identifier``/``name`` (the model's, seed's or source table's name), ``schema``, ``database`` and
    ``type``. ``this`` is the model's own view; a later materialization that reads a model's previous output
    (``incremental``) gives ``this`` the view holding that output, through ``view`` (see :meth:`for_view`).
    """

    identifier: str
    schema: str | None
    database: str | None
    type: str

    def __new__(
        cls,
        view: str,
        *,
        identifier: str | None = None,
        schema: str | None = SCHEMA,
        database: str | None = CATALOG,
        type: str = "view",  # noqa: A002 - dbt's attribute name
    ) -> Relation:
        relation = super().__new__(cls, view)
        relation.identifier = identifier or view
        relation.schema = schema
        relation.database = database
        relation.type = type
        return relation

    @property
    def name(self) -> str:
        return self.identifier

    @property
    def table(self) -> str:
        return self.identifier

    @property
    def view(self) -> str:
        """The temp view's name: what the relation renders as."""
        return str.__str__(self)

    @property
    def is_table(self) -> bool:
        return self.type == "table"

    @property
    def is_view(self) -> bool:
        return self.type in ("view", "ephemeral")

    def for_view(self, view: str) -> Relation:
        """The same relation read through another temp view (a model's previous output, say)."""
        return Relation(view, identifier=self.identifier, schema=self.schema, database=self.database, type=self.type)

    def render(self) -> str:
        return self.view

    def include(self, database: bool = True, schema: bool = True, identifier: bool = True) -> Relation:
        """dbt's way to leave parts out of the rendered name; a temp view has only its name, so it is unchanged."""
        return self

    def quote(self, *args: Any, **kwargs: Any) -> Relation:
        return self

    def incorporate(self, path: Mapping[str, str] | None = None, type: str | None = None) -> Relation:  # noqa: A002
        path = path or {}
        return Relation(
            self.view,
            identifier=path.get("identifier", self.identifier),
            schema=path.get("schema", self.schema),
            database=path.get("database", self.database),
            type=type or self.type,
        )

    def __repr__(self) -> str:
        return f"<Relation {self.view}>"


@dataclass(frozen=True)
class Column:
    """One column of a relation, as ``adapter.get_columns_in_relation`` returns it."""

    name: str
    dtype: str

    @property
    def column(self) -> str:
        return self.name

    @property
    def data_type(self) -> str:
        return self.dtype

    @property
    def quoted(self) -> str:
        return f"`{self.name}`"

    def is_string(self) -> bool:
        return self.dtype.lower() in ("string", "varchar", "char") or self.dtype.lower().startswith(("varchar", "char"))

    def is_integer(self) -> bool:
        return self.dtype.lower() in ("tinyint", "smallint", "int", "integer", "bigint")

    def is_float(self) -> bool:
        return self.dtype.lower() in ("float", "double", "real")

    def is_numeric(self) -> bool:
        return self.dtype.lower().startswith("decimal")

    def is_number(self) -> bool:
        return self.is_integer() or self.is_float() or self.is_numeric()


@dataclass(frozen=True)
class Target:
    """dbt's ``target``: the environment a run is for. ``name`` is ``SQL_TARGET`` (or ``--target``), and the
    relations live in Spark's session catalog and its default database."""

    name: str = "prod"
    threads: int = 4
    profile_name: str = "retrain"
    schema: str = SCHEMA
    database: str = CATALOG
    type: str = ADAPTER_TYPE

    @property
    def catalog(self) -> str:
        return self.database

    @property
    def target_name(self) -> str:
        return self.name

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


def invocation_id(project: str | None, ds: str, interval: Sequence[datetime.datetime]) -> str:
    """A UUID for the run: the same for a re-run of the same date, so its SQL (and the hash recorded) stays."""
    key = f"retrain:{project or ''}:{ds}:{interval[0].isoformat()}:{interval[1].isoformat()}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def env_var_function(environ: Mapping[str, str]) -> Callable[..., str]:
    """dbt's ``env_var(name, default)``: an unset variable without a default is an error; secrets are refused."""

    def env_var(name: Any = None, default: Any = None) -> str:
        if not isinstance(name, str) or not name:
            raise CompilationError(f"env_var() takes a variable's name, like env_var('REGION'). Got {name!r}.")
        if name.upper() in SECRET_VARIABLES or name.upper().startswith(SECRET_PREFIX):
            raise CompilationError(
                f"env_var({name!r}) is refused: it holds a secret, and a model's SQL is printed by `retrain compile`, "
                "shown in errors and kept in Spark's plans. Read the value another way (a source, a var)."
            )
        if name in environ:
            return environ[name]
        if default is not None:
            return str(default)
        raise CompilationError(
            f"env_var({name!r}): the environment variable {name} is not set and no default is given. Set it, or "
            f"give a default: env_var({name!r}, 'value')."
        )

    return env_var


def log_message(message: Any = "", info: bool = False) -> str:
    """dbt's ``log()``: the message in the command's log (INFO with ``info=True``, else DEBUG); renders nothing."""
    log.log(logging.INFO if info else logging.DEBUG, "%s", message)
    return ""


def exceptions_namespace(warn: Callable[[str], None]) -> SimpleNamespace:
    """dbt's ``exceptions``: ``raise_compiler_error`` stops with the model's file and line, ``warn`` reports."""

    def raise_compiler_error(message: Any = "", node: Any = None) -> None:
        raise CompilationError(str(message))

    def raise_not_implemented(message: Any = "") -> None:
        raise CompilationError(f"Not implemented: {message}")

    def warning(message: Any = "", node: Any = None) -> str:
        warn(str(message))
        return ""

    return SimpleNamespace(
        raise_compiler_error=raise_compiler_error,
        raise_not_implemented=raise_not_implemented,
        warn=warning,
    )


def modules_namespace() -> SimpleNamespace:
    """dbt's ``modules``: the Python modules a template may use (``pytz`` when it is installed, as pandas brings it)."""
    modules = SimpleNamespace(datetime=datetime, re=re, itertools=itertools)
    try:
        import pytz
    except ImportError:
        return modules
    modules.pytz = pytz
    return modules


class Adapter:
    """dbt's ``adapter`` on Spark: ``dispatch``, ``quote``, ``get_columns_in_relation``, ``type``.

    ``dispatch(name, namespace)`` finds ``spark__name``, else ``default__name``, in the packages of the project's
    ``dispatch:`` search order for that namespace, else in the namespace itself (the root project when none).
    ``get_columns_in_relation`` asks the model being rendered, which knows the columns only while it runs (dbt's
    ``execute``): rendered without Spark (``compile``, ``ls``) it gives an empty list.
    """

    def __init__(
        self,
        macros: Callable[[str | None], Mapping[str, Any] | None],
        search_order: Mapping[str, Sequence[str]],
        columns: Callable[[Any], list[Column]],
    ) -> None:
        self._macros = macros
        self._search_order = search_order
        self._columns = columns

    def dispatch(self, macro_name: Any = None, macro_namespace: Any = None, packages: Any = None) -> Any:
        if not isinstance(macro_name, str) or not macro_name:
            raise CompilationError(f"adapter.dispatch() takes a macro's name. Got {macro_name!r}.")
        namespaces = list(self._search_order.get(macro_namespace, [macro_namespace])) if macro_namespace else [None]
        tried = []
        for namespace in namespaces:
            macros = self._macros(namespace)
            if macros is None:
                raise CompilationError(
                    f"adapter.dispatch({macro_name!r}, {macro_namespace!r}): no package is named {namespace!r}. "
                    "List it under packages: in the project file."
                )
            for prefix in DISPATCH_PREFIXES:
                candidate = f"{prefix}{macro_name}"
                if candidate in macros:
                    return macros[candidate]
                tried.append(f"{namespace + '.' if namespace else ''}{candidate}")
        raise CompilationError(
            f"adapter.dispatch({macro_name!r}, {macro_namespace!r}) found none of {', '.join(tried)}. Define one "
            "of them as a macro."
        )

    def quote(self, identifier: Any) -> str:
        return "`" + str(identifier).replace("`", "``") + "`"

    def get_columns_in_relation(self, relation: Any) -> list[Column]:
        return self._columns(relation)

    def type(self) -> str:
        return ADAPTER_TYPE

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "jinja_pass_arg":
            raise AttributeError(name)
        raise CompilationError(
            f"adapter.{name} is not available: models are rendered before Spark runs them, so only "
            "adapter.dispatch, adapter.quote, adapter.get_columns_in_relation and adapter.type are."
        )
