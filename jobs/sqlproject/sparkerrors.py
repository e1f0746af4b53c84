"""Turn Spark's errors about a rendered model into messages that point at the model file and line."""

from __future__ import annotations

import re

from jobs.errors import ModelExecutionError
from jobs.sqlproject.project import SqlProject
from jobs.sqlproject.render import RenderedModel
from jobs.sqlproject.sourcemap import excerpt, line_from_message, line_of_offset, rendered_to_template_line

_NAME = re.compile(r"[`\"]([A-Za-z_][A-Za-z0-9_.]*)[`\"]")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _rendered_line(error: BaseException, sql: str) -> int | None:
    """Where in the rendered SQL Spark says the problem is: its query context, the parser's position, or a name."""
    contexts = error.getQueryContext() if hasattr(error, "getQueryContext") else []
    for context in contexts:
        try:
            start = context.startIndex()
        except Exception:  # a DataFrame-API context has no SQL position
            continue
        if start is not None and start >= 0:
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


def model_error(project: SqlProject, rendered: RenderedModel, error: BaseException, doing: str) -> ModelExecutionError:
    """A :class:`ModelExecutionError` naming the model, its file and line, with the offending rendered SQL."""
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
    return ModelExecutionError(f"Spark {doing} {rendered.name} ({where}): {_first_line(error)}{shown}")
