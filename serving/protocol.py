"""The HTTP/1.1 protocol the backend runs under uvicorn: uvicorn's own (httptools), with limits on a request's head:
its size (431) and how long it may take to arrive (408).

uvicorn's httptools protocol reads a request line and headers of any length before the app sees them: a 49 MB
``Authorization`` header was read in full before its 401. This subclass counts the bytes of each request's head as
they arrive and answers ``431 Request Header Fields Too Large`` as soon as they pass ``max_header_bytes``, without
reading the rest. A head that arrives whole in one read is measured exactly when its headers are complete.

Closing a TCP connection while the client is still sending makes the kernel reset it, and a reset can overtake the
answer, so a refused connection is closed the way nginx's ``lingering_close`` does: the answer is sent, the
sending side shut (FIN), and what the client still sends is read and dropped for at most ``LINGER_SECONDS`` and
``LINGER_BYTES`` before the connection is closed. The body limit (413) is the ASGI middleware's
(``serving.guard``); it ends its connection through the same lingering close.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serving.guard import peer

log = logging.getLogger(__name__)

LINGER_SECONDS = 2.0
LINGER_BYTES = 1 << 20
_HEADER_OVERHEAD = 4  # ": " and CRLF around each header


def head_limited(max_header_bytes: int, header_timeout_seconds: float = 10.0) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn (``http=``), refusing heads longer than ``max_header_bytes`` or slower
    than ``header_timeout_seconds``."""

    class HeadLimitedProtocol(_HeadLimitedProtocol):
        max_head = max_header_bytes
        max_head_seconds = header_timeout_seconds

    return HeadLimitedProtocol


class _HeadLimitedProtocol(HttpToolsProtocol):
    max_head = 16_384
    max_head_seconds = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # until a request's headers are complete
        self._raw_head = 0  # bytes received while in a head (a whole read counted)
        self._exact_head = 0  # request line and headers, as parsed
        self._head_refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_begun = False  # a request's first byte is parsed, its headers not yet complete

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(LingeringTransport(transport, self._client_still_sending))
        self._start_head_timer()  # a connection that never sends a request is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        transport = self.transport
        super().connection_lost(exc)
        if isinstance(transport, LingeringTransport):
            transport.connection_lost()

    # A slow client (one byte of header every few seconds: slowloris) would hold a connection, and enough of them
    # every connection. The head must arrive whole within max_head_seconds of the connection's start, or of the
    # first byte of a later request on a kept-alive connection (uvicorn's keep-alive timeout closes an idle one),
    # or of the end of the answer before it. The timer never runs while the app answers, however long that takes.

    def _start_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.max_head_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self._head_refused or self.transport.is_closing():
            return
        self._head_refused = True
        log.warning(
            "Closed a connection from %s: its request's line and headers did not arrive within %g s (408).",
            peer(self.client),
            self.max_head_seconds,
        )
        detail = (
            f"The request's line and headers did not arrive within {self.max_head_seconds:g} s "
            "(SERVING_CLIENT_TIMEOUT_SECONDS). Send the whole request at once."
        )
        refuse(self.transport, 408, "Request Timeout", {"detail": detail})

    def _client_still_sending(self) -> bool:
        """Whether closing now would cut off a request being received (a refused head, or a body not read)."""
        if self._in_head:
            return self._raw_head > 0
        return self.cycle is not None and self.cycle.more_body

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if isinstance(transport, LingeringTransport) and transport.lingering:
            transport.dropped(len(data))
            return
        if self._in_head:
            self._raw_head += len(data)
        super().data_received(data)
        # Still in the head after this read, and past the limit: refuse now, without reading the rest.
        if self._in_head and self._raw_head > self.max_head and not self._head_refused:
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._exact_head = 0
        self._head_begun = True
        if self._head_timer is None and self._answered():
            self._start_head_timer()  # the first byte of a later request on a kept-alive connection

    def on_url(self, url: bytes) -> None:
        self._exact_head += len(url)
        self._check_exact()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._exact_head += len(name) + len(value) + _HEADER_OVERHEAD
        self._check_exact()
        super().on_header(name, value)

    def _answered(self) -> bool:
        """Whether no request of this connection is being answered: a pipelined head waits for the answer before
        it, untimed (its 408 would replace that answer), and is timed once it is sent."""
        return self.cycle is None or self.cycle.response_complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._head_begun and self._head_timer is None and not self.transport.is_closing():
            self._start_head_timer()  # a pipelined head, begun while the answer before it was written

    def on_headers_complete(self) -> None:
        self._in_head = self._head_begun = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._raw_head = True, 0

    def _check_exact(self) -> None:
        if self._exact_head > self.max_head:
            # Raised inside the parser, which stops; uvicorn then calls send_400_response, answered below as 431.
            self._head_refused = True
            raise HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        if self._head_refused:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def _refuse_head(self) -> None:
        self._head_refused = True
        log.warning("Refused a request from %s: its head passed %d bytes (431).", peer(self.client), self.max_head)
        detail = (
            f"The request's line and headers are longer than {self.max_head} bytes "
            "(SERVING_MAX_HEADER_BYTES). Send a shorter request: an admin token is about 200 bytes."
        )
        refuse(self.transport, 431, "Request Header Fields Too Large", {"detail": detail})


class HeadTooLarge(Exception):
    """A request's head passed the limit while the parser read it."""


def refuse(transport: Any, status: int, reason: str, body: dict[str, Any]) -> None:
    """Answer ``status`` with a JSON body outside any request cycle, then close the connection lingering."""
    data = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("ascii")
    transport.write(head + data)
    transport.close()


class LingeringTransport:
    """A transport whose ``close``, while the client is still sending, sends what is queued, shuts the sending side,
    and drops what still arrives; any other close is the wrapped transport's, as is everything else.

    A lingering connection is closed for good after ``LINGER_SECONDS``, after ``LINGER_BYTES`` dropped, or when the
    client closes its side, whichever comes first.
    """

    def __init__(self, transport: asyncio.Transport, client_still_sending: Callable[[], bool]) -> None:
        self._transport = transport
        self._client_still_sending = client_still_sending
        self.lingering = False
        self._dropped = 0
        self._timer: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.lingering or self._transport.is_closing():
            return
        if not self._client_still_sending():
            self._transport.close()
            return
        self.lingering = True
        try:
            self._transport.write_eof()  # FIN once the answer is sent
            self._transport.resume_reading()  # flow control may have paused it: the client's bytes must drain
        except (OSError, RuntimeError, NotImplementedError):
            self._transport.close()
            return
        self._timer = asyncio.get_running_loop().call_later(LINGER_SECONDS, self._transport.close)

    def dropped(self, n: int) -> None:
        self._dropped += n
        if self._dropped > LINGER_BYTES:
            self._close_now()

    def _close_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport.close()

    def connection_lost(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
