"""Turn Spark's errors about a rendered model into messages that point at the model file and line."""

from __future__ import annotations

import re
from collections.abc import Iterable

from jobs.errors import ModelExecutionError, SparkConnectUnavailableError
from jobs.spark.messages import first_line
from jobs.spark.remote import server_gone, unavailable
from jobs.sqlproject.project import SqlProject
from jobs.sqlproject.render import RenderedModel
from jobs.sqlproject.sourcemap import excerpt, line_from_message, line_of_offset, rendered_to_template_line

_POSITION_SUFFIX = re.compile(r";\s*line \d+,? pos \d+;?\s*$")
_NAME = re.compile(r"[`\"]([A-Za-z_][A-Za-z0-9_.]*)[`\"]")


def _first_line(error: BaseException) -> str:
    """Spark's message without its plan and without its own (rendered-SQL) position, which we translate."""
    return _POSITION_SUFFIX.sub("", first_line(error))


def _context_positions(error: BaseException) -> list[tuple[int, str]]:
    """(offset, fragment) of each SQL query context Spark attached to the error."""
    positions = []
    for context in error.getQueryContext() if hasattr(error, "getQueryContext") else []:
        try:
            start, fragment = context.startIndex(), context.fragment()
        except Exception:  # a DataFrame-API context has no SQL position
            continue
        if start is not None and start >= 0:
            positions.append((start, fragment or ""))
    return positions


def _owner(error: BaseException, rendered: RenderedModel, others: Iterable[RenderedModel]) -> RenderedModel:
    """The model whose SQL the error points into: a failing view is only computed inside the table reading it."""
    for start, fragment in _context_positions(error):
        if not fragment or rendered.sql[start : start + len(fragment)] == fragment:
            return rendered
        for other in others:
            if other.sql[start : start + len(fragment)] == fragment:
                return other
    return rendered


def _rendered_line(error: BaseException, sql: str) -> int | None:
    """Where in the rendered SQL Spark says the problem is: its query context, the parser's position, or a name."""
    for start, _ in _context_positions(error):
        return line_of_offset(sql, start)
    line = line_from_message(str(error))
    if line:
        return line
    params = error.getMessageParameters() if hasattr(error, "getMessageParameters") else None
    for value in (params or {}).values():
        for name in _NAME.findall(value or ""):
            bare = name.split(".")[-1]
            for number, text in enumerate(sql.splitlines(), start=1):
                if re.search(rf"\b{re.escape(bare)}\b", text):
                    return number
    return None


def model_error(
    project: SqlProject,
    running: RenderedModel,
    error: BaseException,
    doing: str,
    others: Iterable[RenderedModel] = (),
) -> ModelExecutionError | SparkConnectUnavailableError:
    """A :class:`ModelExecutionError` naming the model, its file and line, with the offending rendered SQL.

    ``others`` are the models ``running`` reads: an error inside one of them is reported at that model's line.
    A Spark Connect server that stopped answering is no fault of the model's: that error says so instead.
    """
    gone = server_gone(error)
    if gone is not None:
        return unavailable(None, gone, f"running {running.name}")
    rendered = _owner(error, running, others)
    line = _rendered_line(error, rendered.sql)
    path = project.relative(rendered.model.path)
    if line is None:
        where = path
        shown = ""
    else:
        template_line = rendered_to_template_line(rendered.template, rendered.sql, line)
        where = f"{path}, line {template_line}"
        shown = excerpt(
            rendered.sql, line, label="Rendered SQL (see `retrain compile --select " + rendered.name + "`):"
        )
    subject = running.name if rendered is running else f"{running.name}, in {rendered.name} which it reads"
    return ModelExecutionError(f"Spark {doing} {subject} ({where}): {_first_line(error)}{shown}")
