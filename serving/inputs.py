"""A prediction request read strictly: the body as standard JSON of bounded nesting, the user as a ``users.id``.

What a hostile client may send must be answered 4xx, not reach the model or the database as something else:

- the body must be one JSON object, at most ``max_depth`` levels deep (checked by a linear scan before the parser,
  whose recursion a deep document would exhaust), with no ``NaN`` or ``Infinity`` (not JSON; Python accepts them);
- ``user_id`` (the ``X-User-Id`` header, else the body's key) must be a whole number from 1 to 2**63 - 1, the range
  of ``users.id`` (``bigint``): ``true``, ``1.9``, ``"1e3"`` or ``2**70`` are refused, not read as some user.

Each refusal is a :class:`BadRequest` whose message names the field and says what is expected.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_USER_ID = 2**63 - 1  # PostgreSQL's bigint
_USER_ID_TEXT = re.compile(r"[0-9]{1,19}")
_STRUCTURE = re.compile(r'[\[\]{}"]')
_REST_OF_STRING = re.compile(r'(?:[^"\\]|\\.)*+"', re.DOTALL)  # possessive: one pass, no backtracking


class BadRequest(Exception):
    """A request the backend refuses (422); ``field`` names the input at fault when there is one."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class PredictionRequest:
    """The body as received (logged as is), the model's inputs and the user, all checked."""

    text: str
    inputs: dict[str, Any]
    user_id: int | None


def read_request(body: bytes, header_user_id: str | None, *, max_depth: int) -> PredictionRequest:
    """Parse and check one request; raises :class:`BadRequest`."""
    text = body.decode("utf-8", errors="replace")
    if nesting_exceeds(text, max_depth):
        raise BadRequest(
            f"The body nests arrays or objects more than {max_depth} levels deep (SERVING_MAX_JSON_DEPTH); a model's "
            "inputs are one flat JSON object."
        )
    try:
        payload = json.loads(text, parse_constant=_not_json)
    except ValueError as e:  # JSONDecodeError, a NaN/Infinity, an integer of more than 4300 digits
        raise BadRequest(f"The body must be a JSON object of the model's inputs ({_reason(e)}).") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"The body must be a JSON object of the model's inputs. Got a JSON {_kind(payload)} instead.")
    raw_user = header_user_id if header_user_id is not None else payload.get("user_id")
    inputs = {k: v for k, v in payload.items() if k != "user_id"}
    return PredictionRequest(text, inputs, user_id(raw_user))


def user_id(value: Any) -> int | None:
    """A ``users.id`` from the header's text or the body's value; None when absent or empty (an anonymous request)."""
    if value is None or value == "":
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _USER_ID_TEXT.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not 1 <= number <= MAX_USER_ID:
        raise BadRequest(
            f"user_id must be a whole number from 1 to {MAX_USER_ID} (the id of a row of users). "
            f"Got {_shown(value)} instead.",
            field="user_id",
        )
    return number


def nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether arrays and objects nest deeper than ``max_depth`` in ``text`` (strings skipped; linear time).

    A malformed document is not judged here: the parser refuses it next.
    """
    depth, position = 0, 0
    while match := _STRUCTURE.search(text, position):
        char, position = match.group(), match.end()
        if char == '"':
            rest = _REST_OF_STRING.match(text, position)
            if rest is None:
                return False  # an unterminated string
            position = rest.end()
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _reason(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno}, column {error.colno}"
    return str(error).split(":")[0][:100]


def _kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _shown(value: Any) -> str:
    """The value as the client sent it, cut short: a message must not echo a megabyte back."""
    text = repr(value) if not isinstance(value, int) or isinstance(value, bool) else str(value)
    return text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"
