"""The JSON keys each model reads, found in its rendered SQL, with the type it reads each as.

A key is read by ``from_json(column, '<schema>')`` (every field of the schema, the corrupt-record column aside),
``get_json_object(column, '$.key')`` or ``json_tuple(column, 'key', ...)``. The type is what the model makes of
the value: the CAST or TRY_CAST around it (through TRIM, LOWER, UPPER, NULLIF and parentheses), the values a
``CASE value WHEN 'a' ... END`` around it accepts, or else the type the schema gives it. The expression that
applies that type is kept (``usage``) so that :mod:`jobs.sqlproject.jsonhealth` can apply the same one to the
run's raw values and count those it turns into NULL.

This reads SQL only: no Spark, no data. A model sqlglot cannot read is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.errors import SqlProjectError
from jobs.sqlproject.sqltree import Positions, parse, sql_of

if TYPE_CHECKING:
    from sqlglot import exp

    from jobs.sqlproject.render import RenderedModel

#: stands for the key's raw value (its JSON text, a string's without quotes) in a ``usage`` expression
VALUE = "__json_value"
_CORRUPT_RECORD_OPTION = "columnnameofcorruptrecord"
_DEFAULT_CORRUPT_RECORD = "_corrupt_record"


@dataclass(frozen=True)
class JsonRead:
    """One key read by one model from one column holding JSON text."""

    model: str
    column: str  # the column holding the JSON text, as the model names it (``data``)
    key: str  # a top-level key, or a dotted path for a nested one (``address.city``)
    type: str  # what the model reads it as: DOUBLE, STRING, "one of 'true', 'yes', ..."
    usage: str  # SQL applying that type to ``__json_value``; NULL for a value it cannot use
    function: str  # from_json, get_json_object or json_tuple
    line: int | None  # in the model file

    @property
    def nested(self) -> bool:
        return "." in self.key

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("model", "column", "key", "type", "usage", "function", "line")}


_TRANSPARENT = ("Trim", "Lower", "Upper", "Paren")


def _usage(reference: exp.Expression, declared: str) -> tuple[str, str]:
    """``(type, usage SQL)`` for a key's value at ``reference``: climb the functions that keep the value what it
    is, then read the cast, or the simple CASE, that types it."""
    from sqlglot import exp

    node = reference
    while node.parent is not None and (
        type(node.parent).__name__ in _TRANSPARENT or (isinstance(node.parent, exp.Nullif) and node.arg_key == "this")
    ):
        node = node.parent
    parent = node.parent
    if isinstance(parent, exp.Cast):  # TRY_CAST too: a value the model's CAST would fail on counts as not castable
        to = parent.args["to"]
        return to.sql(dialect="spark").upper(), _usage_sql(
            parent, reference, lambda c: exp.TryCast(this=c.this, to=c.args["to"], safe=True)
        )
    if isinstance(parent, exp.Case) and node.arg_key == "this":
        values = [b.this for b in parent.args.get("ifs") or []]
        if values and all(isinstance(v, exp.Literal) for v in values):

            def accepted(case: exp.Expression) -> exp.Expression:
                for branch in case.args["ifs"]:
                    branch.set("true", exp.Literal.number(1))
                case.set("default", exp.Null())
                return case

            return f"one of {', '.join(sql_of(v) for v in values)}", _usage_sql(parent, reference, accepted)
    if declared.upper() != "STRING":
        to = exp.DataType.build(declared, dialect="spark")
        return declared.upper(), _usage_sql(node, reference, lambda c: exp.TryCast(this=c, to=to, safe=True))
    return "STRING", _usage_sql(node, reference)


def _usage_sql(top: exp.Expression, reference: exp.Expression, wrap=None) -> str:
    """The SQL of a copy of ``top`` whose ``reference`` (a node inside it, or itself) reads :data:`VALUE`, then
    given to ``wrap``."""
    from sqlglot import exp

    path = []
    node = reference
    while node is not top:
        children = node.parent.args[node.arg_key]
        path.append((node.arg_key, children.index(node) if isinstance(children, list) else None))
        node = node.parent
    copy = top.copy()
    target = copy
    for key, index in reversed(path):
        child = target.args[key]
        target = child[index] if index is not None else child
    placeholder = exp.column(VALUE)
    if target is copy:
        copy = placeholder
    else:
        target.replace(placeholder)
    return sql_of(wrap(copy) if wrap else copy)


def _schema_fields(schema: str) -> dict[str, str]:
    """``from_json``'s schema (DDL ``a STRING, b INT`` or ``STRUCT<...>``) -> {field: type}; {} for a MAP."""
    from sqlglot import exp

    text = schema.strip()
    if text.upper().startswith("MAP"):
        return {}
    if not text.upper().startswith("STRUCT"):
        text = f"STRUCT<{text}>"
    try:
        built = exp.DataType.build(text, dialect="spark")
    except Exception:  # noqa: BLE001 - an unreadable schema means keys we cannot name, reported as none
        return {}
    fields = {}
    for column in built.expressions:
        if isinstance(column, exp.ColumnDef):
            fields[column.name] = column.args["kind"].sql(dialect="spark").upper()
    return fields


def _corrupt_record_field(options: exp.Expression | None) -> str:
    """The field from_json's ``columnNameOfCorruptRecord`` option names: a marker, not a key of the data."""
    from sqlglot import exp

    if isinstance(options, exp.VarMap):
        keys, values = options.args["keys"].expressions, options.args["values"].expressions
        for key, value in zip(keys, values, strict=False):
            if isinstance(key, exp.Literal) and key.this.lower() == _CORRUPT_RECORD_OPTION:
                return str(value.this)
    return _DEFAULT_CORRUPT_RECORD


def _column_name(node: exp.Expression) -> str | None:
    from sqlglot import exp

    return node.name if isinstance(node, exp.Column) else None


def _from_json_reads(tree: exp.Expression, positions: Positions, model: str) -> list[JsonRead]:
    from sqlglot import exp

    reads = []
    for call in tree.find_all(exp.FromJson):
        column = _column_name(call.this)
        schema = call.expression
        if column is None or not isinstance(schema, exp.Literal):
            continue
        corrupt = _corrupt_record_field(call.args.get("options"))
        fields = {k: v for k, v in _schema_fields(schema.this).items() if k != corrupt}
        alias = call.parent.alias if isinstance(call.parent, exp.Alias) else None
        references: dict[str, list[exp.Expression]] = {}
        if alias:
            for ref in tree.find_all(exp.Column):
                if ref.table == alias and ref.name in fields:
                    references.setdefault(ref.name, []).append(ref)
        elif isinstance(call.parent, exp.Dot) and call.parent.name in fields:
            references.setdefault(call.parent.name, []).append(call.parent)
        for key, declared in fields.items():
            seen = set()
            for ref in references.get(key) or [None]:
                kind, usage = _usage(ref, declared) if ref is not None else (declared, VALUE)
                if (kind, usage) in seen:
                    continue
                seen.add((kind, usage))
                line = positions.file_line(ref if ref is not None else call)
                reads.append(JsonRead(model, column, key, kind, usage, "from_json", line))
    return reads


def _json_path_key(path: exp.Expression) -> str | None:
    """``$.a.b`` -> ``a.b``; None for a path with subscripts or wildcards (not a key the data names)."""
    from sqlglot import exp

    if not isinstance(path, exp.JSONPath):
        return None
    keys = []
    for part in path.expressions:
        if isinstance(part, exp.JSONPathRoot):
            continue
        if not isinstance(part, exp.JSONPathKey) or not isinstance(part.this, str):
            return None
        keys.append(part.this)
    return ".".join(keys) or None


def _get_json_object_reads(tree: exp.Expression, positions: Positions, model: str) -> list[JsonRead]:
    from sqlglot import exp

    reads = []
    for call in tree.find_all(exp.JSONExtractScalar, exp.JSONExtract):
        column = _column_name(call.this)
        key = _json_path_key(call.expression)
        if column is None or key is None:
            continue
        kind, usage = _usage(call, "STRING")
        reads.append(JsonRead(model, column, key, kind, usage, "get_json_object", positions.file_line(call)))
    return reads


def _json_tuple_reads(tree: exp.Expression, positions: Positions, model: str) -> list[JsonRead]:
    from sqlglot import exp

    reads = []
    for call in tree.find_all(exp.Anonymous):
        if str(call.this).lower() != "json_tuple" or not call.expressions:
            continue
        column = _column_name(call.expressions[0])
        if column is None:
            continue
        for literal in call.expressions[1:]:
            if isinstance(literal, exp.Literal) and literal.is_string:
                line = positions.file_line(literal)
                reads.append(JsonRead(model, column, literal.this, "STRING", VALUE, "json_tuple", line))
    return reads


def json_reads(rendered: RenderedModel) -> list[JsonRead]:
    """Every key the model reads from JSON text; raises :class:`SqlProjectError` when sqlglot cannot read it."""
    tree = parse(rendered)
    positions = Positions(rendered, tree)
    found = (
        _from_json_reads(tree, positions, rendered.name)
        + _get_json_object_reads(tree, positions, rendered.name)
        + _json_tuple_reads(tree, positions, rendered.name)
    )
    return sorted(found, key=lambda r: (r.column, r.key, r.line or 0))


def project_json_reads(models: Iterable[RenderedModel]) -> tuple[list[JsonRead], dict[str, str]]:
    """Every model's reads, and the models skipped with why."""
    reads, skipped = [], {}
    for rendered in models:
        try:
            reads.extend(json_reads(rendered))
        except SqlProjectError as e:
            skipped[rendered.name] = str(e)
    return reads, skipped


def keys_read_from(rendered: RenderedModel, column: str) -> list[str]:
    """The top-level keys the model reads from ``column``, sorted (what ``json_keys_present`` looks for)."""
    return sorted({read.key.split(".", 1)[0] for read in json_reads(rendered) if read.column == column})
