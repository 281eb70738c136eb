"""The service's HTTP/1.1 protocol under uvicorn: httptools, with a deadline and an answer for every bad request head.

Imported only where uvicorn runs the service. The classes are defined at module
level, so that a protocol configured for ``levelcare serve --workers N`` can be
sent to worker processes (which are spawned, and receive uvicorn's settings by
pickling).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ._limits import outcome_body

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
# After refusing a request whose head is still arriving, read and drop this much more
# (for at most _LINGER seconds) so the client is not reset before it reads the answer.
_LINGER_BYTES = 1_048_576
_LINGER = 2.0


def raw_response(status: int, code: str, problem: str) -> bytes:
    """A complete HTTP/1.1 response with an OperationOutcome that closes the connection."""
    body = outcome_body(code, [problem])
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/fhir+json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
        % (status, _REASONS[status], len(body))
    )
    return head + body


def protocol_class(*, max_header_bytes: int, header_timeout: float) -> Callable[..., Any]:
    """uvicorn's httptools protocol, with a size limit, a deadline and an answer for every malformed request head.

    uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but puts no
    deadline on a request head: a client that connects and sends nothing, or trickles
    its headers, holds the connection forever. This protocol gives the head
    ``header_timeout`` seconds from the first byte (or from the connection) and answers
    408; a head over ``max_header_bytes`` gets 431, and any other malformed request 400,
    each with an OperationOutcome instead of uvicorn's plain text.

    Args:
        max_header_bytes: The largest request head (request target and headers).
        header_timeout: Seconds allowed for a request head to arrive.

    Returns:
        A protocol factory for ``uvicorn.Config(http=...)``, which can be pickled for
        worker processes.
    """
    return functools.partial(EdgeProtocol, max_header_bytes=max_header_bytes, header_timeout=header_timeout)


def _no_delay(transport: asyncio.Transport) -> None:
    """Send each write at once (TCP_NODELAY).

    An answer goes out as two writes, its head and its body. With Nagle's algorithm
    on, the body waits for the client to acknowledge the head, and a client that
    delays its acknowledgements (Linux: up to 40 ms) stalls every answer. asyncio
    sets the option only on sockets made with protocol IPPROTO_TCP, which uvicorn's
    listening socket is not.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Lingering:
    """The connection's transport, writing each answer in one piece and closing so that a client still sending reads it.

    An answer's head and body are written one after the other in the same turn of
    the event loop; they are gathered and sent together at the end of that turn, so
    that one packet, not two, wakes the client.

    Closing a socket with unread data in it resets the connection, and the reset
    can destroy the answer before the client reads it (a 413 while the client is
    still sending, say). So while the client may still be sending, ``close``
    half-closes instead and drops what still arrives, for a bounded time and size.
    """

    def __init__(self, transport: asyncio.Transport, protocol: EdgeProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._pending: list[bytes] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._protocol.loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def flush(self) -> None:
        """Send what was written since the last flush."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        protocol = self._protocol
        if protocol.lingering or not protocol.client_sending() or not self._transport.can_write_eof():
            self._transport.close()
            return
        protocol.disarm()
        self._transport.write_eof()
        protocol.start_lingering()
        self._transport.resume_reading()
        protocol.loop.call_later(_LINGER, self._transport.close)


class HeadTooLong(Exception):
    """Raised from a parser callback when the request head outgrows its limit (the parser then stops)."""


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a size limit and a deadline on each request head, and an OperationOutcome for a bad one.

    ``max_header_bytes`` and ``header_timeout`` are given as keywords beside
    uvicorn's own (see :func:`protocol_class`).
    httptools keeps no more of a head than the header being read; the bytes of a
    head are counted as they arrive, and a head over the limit is refused before
    the rest is read.
    """

    _head_timer: asyncio.TimerHandle | None = None

    def __init__(self, *args: Any, max_header_bytes: int, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        #: Reading a request head (before its end); else a body, or a request in hand.
        self._in_head = True
        self._in_body = False
        self._errored = False
        #: Bytes received while reading the current head.
        self._head_bytes = 0
        #: The current head's size as parsed: request target and headers.
        self._head_size = 0
        self._lingering = -1

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        _no_delay(transport)
        super().connection_made(Lingering(transport, self))  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering >= 0:
            self._lingering += len(data)
            if self._lingering > _LINGER_BYTES:
                self.transport.close()
            return
        if self._errored:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._errored or self.transport.is_closing():
            return
        if self._in_head and self._head_bytes > self.max_header_bytes:
            self._head_too_long()
        elif self._in_head and self._head_bytes and self._head_timer is None:
            self._arm()  # the first bytes of a head that is not complete yet

    # --- parser callbacks ------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._grow(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.disarm()
        self._in_head, self._in_body = False, True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # What arrives from now on is the next request's head.
        self._in_head, self._in_body = True, False
        self._head_bytes = self._head_size = 0

    def _grow(self, count: int) -> None:
        self._head_size += count
        if self._head_size > self.max_header_bytes:
            raise HeadTooLong

    # --- answers of the protocol itself ----------------------------------------------

    @property
    def lingering(self) -> bool:
        """Whether the connection is half-closed, dropping what the client still sends."""
        return self._lingering >= 0

    def start_lingering(self) -> None:
        """Count, from now, the bytes that arrive after the half-close."""
        self._lingering = 0

    def client_sending(self) -> bool:
        """Whether the client may still be sending: a body, a bad request, or part of a head."""
        return self._errored or self._in_body or (self._in_head and self._head_bytes > 0)

    def send_400_response(self, msg: str) -> None:
        self._errored = True
        if self._head_size > self.max_header_bytes or self._head_bytes > self.max_header_bytes:
            self._head_too_long()
        else:
            self._refuse(400, "structure", "the request is not valid HTTP/1.1")

    def _head_too_long(self) -> None:
        self._errored = True
        self._refuse(431, "too-long", f"the request's headers are over {self.max_header_bytes} bytes")

    def _arm(self) -> None:
        self.disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_overdue)

    def disarm(self) -> None:
        """Cancel the deadline on the request head, if one is running."""
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, "timeout", f"the request head did not arrive within {self.header_timeout:g} seconds")

    def _refuse(self, status: int, code: str, problem: str) -> None:
        self.disarm()
        self.transport.write(raw_response(status, code, problem))
        self.transport.close()
