"""A model's rendered SQL as a syntax tree, for what reads the SQL instead of running it: the JSON keys a model
reads (:mod:`jobs.sqlproject.jsonpaths`) and its CASE branches (:mod:`jobs.sqlproject.coverage`).

sqlglot parses Spark's dialect without Spark. Positions come from its tokens (identifiers and literals carry their
offset; a CASE keyword is matched to its expression by order), and are mapped back to the model file's line the
same way Spark's errors are (:mod:`jobs.sqlproject.sourcemap`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.errors import SqlProjectError
from jobs.sqlproject.sourcemap import line_of_offset, rendered_to_template_line

if TYPE_CHECKING:
    from sqlglot import exp

    from jobs.sqlproject.render import RenderedModel

DIALECT = "spark"


def parse(rendered: RenderedModel) -> exp.Expression:
    """The model's SQL as one statement's tree; an error names the model and sqlglot's reason."""
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        tree = sqlglot.parse_one(rendered.sql, dialect=DIALECT)
    except ParseError as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SqlProjectError(
            f"The SQL of {rendered.name} ({rendered.model.path.name}) could not be read as Spark SQL by sqlglot: "
            f"{reason}. Spark may still run it; what reads the SQL (JSON keys, CASE coverage) skips this model."
        ) from None
    if tree is None:
        raise SqlProjectError(f"The SQL of {rendered.name} ({rendered.model.path.name}) holds no statement.")
    return tree


def sql_of(node: exp.Expression) -> str:
    """A node as Spark SQL text, on one line."""
    return node.sql(dialect=DIALECT)


def first_offset(node: exp.Expression) -> int | None:
    """The offset in the rendered SQL of the node's first token that sqlglot placed (identifiers, literals)."""
    starts = [n.meta["start"] for n in node.walk() if isinstance(n.meta.get("start"), int)]
    return min(starts) if starts else None


class Positions:
    """Lines of one model's nodes: in the rendered SQL, and in the model file."""

    def __init__(self, rendered: RenderedModel, tree: exp.Expression) -> None:
        self.rendered = rendered
        self._case_offsets = _case_keyword_offsets(rendered.sql, tree)

    def offset(self, node: exp.Expression) -> int | None:
        return self._case_offsets.get(id(node), first_offset(node))

    def rendered_line(self, node: exp.Expression) -> int | None:
        offset = self.offset(node)
        return None if offset is None else line_of_offset(self.rendered.sql, offset)

    def file_line(self, node: exp.Expression) -> int | None:
        """The line of the model file that produced the node (a macro's output maps to the line calling it)."""
        line = self.rendered_line(node)
        return None if line is None else rendered_to_template_line(self.rendered.template, self.rendered.sql, line)


def _case_keyword_offsets(sql: str, tree: exp.Expression) -> dict[int, int]:
    """``id(case node) -> offset of its CASE keyword``: the keywords in text order are the CASE nodes ordered by
    their first token, an outer CASE before the inner one that starts on the same token. Empty when they differ
    in number (the first token's offset is used then)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.tokens import TokenType

    try:
        keywords = [t.start for t in sqlglot.tokenize(sql, read=DIALECT) if t.token_type == TokenType.CASE]
    except Exception:  # noqa: BLE001 - positions are a help, never a reason to fail
        return {}
    cases = list(tree.find_all(exp.Case))
    if len(cases) != len(keywords):
        return {}
    ordered = sorted(cases, key=lambda c: (first_offset(c) if first_offset(c) is not None else 1 << 62, c.depth))
    return {id(case): offset for case, offset in zip(ordered, keywords, strict=True)}
