"""Point from a line of rendered SQL back to the line of the model file that produced it.

Jinja keeps lines that hold no expression as they are, so the two texts are aligned line by line with difflib:
an unchanged line maps exactly, a rendered line inside a changed block maps to the block's corresponding line.
"""

from __future__ import annotations

import difflib
import re

_PARSE_POSITION = re.compile(r"line (\d+),? pos (\d+)")


def rendered_to_template_line(template: str, rendered: str, rendered_line: int) -> int:
    """The 1-based template line for the 1-based ``rendered_line``."""
    t_lines, r_lines = template.splitlines(), rendered.splitlines()
    index = rendered_line - 1
    matcher = difflib.SequenceMatcher(a=t_lines, b=r_lines, autojunk=False)
    for tag, t1, t2, r1, r2 in matcher.get_opcodes():
        if r1 <= index < r2 or (r1 == r2 == index):
            if tag == "equal":
                return t1 + (index - r1) + 1
            return min(t1 + (index - r1), max(t1, t2 - 1)) + 1
    return max(1, min(rendered_line, len(t_lines)))


def line_of_offset(text: str, offset: int) -> int:
    return text.count("\n", 0, max(0, offset)) + 1


def line_from_message(message: str) -> int | None:
    """Spark's parser reports ``line 3, pos 7``; take the line."""
    match = _PARSE_POSITION.search(message)
    return int(match.group(1)) if match else None


def excerpt(text: str, line: int | None, context: int = 2, label: str = "") -> str:
    """Lines around ``line`` with numbers and a marker, for error messages."""
    if not line:
        return ""
    lines = text.splitlines()
    start, end = max(1, line - context), min(len(lines), line + context)
    width = len(str(end))
    body = "\n".join(f"{'>' if n == line else ' '} {n:>{width}} | {lines[n - 1]}" for n in range(start, end + 1))
    return f"\n{label}{body}" if not label else f"\n{label}\n{body}"
