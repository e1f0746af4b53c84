"""The backend's outermost ASGI middleware: a request id for every request, the body limit, and the 500 answer.

- **Request id.** Every answer carries ``X-Request-Id`` (generated here, never taken from the request), and the log
  lines of an error name it, so a caller's report can be matched with the server's log.
- **Body limit.** A body longer than ``max_body_bytes`` gets ``413`` and is never read whole: a ``Content-Length``
  over the limit is refused before a byte of the body is read, and a chunked body as soon as it passes the limit.
  The answer closes the connection (``serving.protocol`` lingers so the client can read it).
- **Body deadline.** A body that has not arrived whole ``body_timeout_seconds`` after its headers gets ``408``, and
  the connection is closed: a client sending its body a byte at a time cannot hold a connection. A deadline for the
  whole body, not nginx's ``client_body_timeout`` between two reads, which a byte every few seconds would meet
  for days. The head's time limit is ``serving.protocol``'s.
- **Unexpected errors.** Any exception that escapes the app is logged with its traceback and the request id, and
  answered ``500`` with the request id in the body: never a connection dropped without an answer, never the
  exception's text (which may name files or values) in the answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"


class BodyTooLarge(Exception):
    """The request's body passed the limit while it was read."""


class BodyTimedOut(Exception):
    """The request's body did not arrive whole in time."""


class RequestGuard:
    """Wraps the app: request ids, the body's size and deadline (413, 408), and 500 with a request id for any unexpected
    error."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout_seconds: float = 10.0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        declared = _content_length(scope)
        received, body_done = 0, not (declared or _chunked(scope))

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
                if not body_done and (b"connection", b"close") not in headers:
                    # Answered before the body was read (a 404, a 401): the connection cannot carry another
                    # request, and closing it (lingering) stops a body sent slowly from holding it.
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(send_with_id, request_id)
            return
        deadline = asyncio.get_running_loop().time() + self.body_timeout_seconds

        async def limited_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # what the app awaits now is the client's going away: not timed
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except TimeoutError:
                raise BodyTimedOut from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
                body_done = not message.get("more_body", False)
            return message

        try:
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            if not started:
                await self._too_large(send_with_id, request_id)
        except BodyTimedOut:
            log.warning(
                "Closed a request from %s (request id %s): its body did not arrive whole within %g s (408).",
                peer(scope.get("client")),
                request_id,
                self.body_timeout_seconds,
            )
            if not started:
                detail = (
                    f"The request's body did not arrive whole within {self.body_timeout_seconds:g} s of its headers "
                    "(SERVING_CLIENT_TIMEOUT_SECONDS). Send the whole request at once."
                )
                await _answer(send_with_id, 408, {"detail": detail, "request_id": request_id}, close=True)
        except Exception:
            log.exception(
                "Unexpected error answering %s %s (request id %s).", scope.get("method"), scope.get("path"), request_id
            )
            if started:  # the answer is under way: the connection is all that can still be ended
                raise
            detail = (
                f"Internal error: the request could not be answered. The server's log has the details under request "
                f"id {request_id}; quote it when you report the problem."
            )
            await _answer(send_with_id, 500, {"detail": detail, "request_id": request_id})

    async def _too_large(self, send: Send, request_id: str) -> None:
        detail = (
            f"The request's body is longer than {self.max_body_bytes} bytes (SERVING_MAX_BODY_BYTES); a model's "
            "inputs are a small JSON object."
        )
        await _answer(send, 413, {"detail": detail, "request_id": request_id}, close=True)


def peer(client: tuple[str, int] | None) -> str:
    """``host:port`` of a client (an ASGI scope's ``client``, a protocol's), for a log line."""
    return f"{client[0]}:{client[1]}" if client else "an unknown client"


def _chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" and b"chunked" in value.lower() for name, value in scope.get("headers", []))


def _content_length(scope: Scope) -> int | None:
    """The declared ``Content-Length``, or None (absent; the HTTP parser has already refused a malformed one)."""
    for name, value in scope.get("headers", []):
        digits = value.strip()
        if name == b"content-length" and digits.isdigit():
            return int(digits) if len(digits) <= 18 else 1 << 62  # int() refuses very long digit strings
    return None


async def _answer(send: Send, status: int, body: dict[str, Any], *, close: bool = False) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    if close:  # the rest of the body is not read: this connection cannot carry another request
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
