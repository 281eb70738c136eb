"""The service's HTTP/1.1 protocol under uvicorn: h11, with a deadline and an answer for every bad request head.

Imported only where uvicorn runs the service. The classes are defined at module
level, so that a protocol configured for ``levelcare serve --workers N`` can be
sent to worker processes (which are spawned, and receive uvicorn's settings by
pickling).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._limits import _LINGER, _LINGER_BYTES, raw_response


class Lingering:
    """The connection's transport, whose ``close`` lets a client that is still sending read the answer.

    Closing a socket with unread data in it resets the connection, and the reset
    can destroy the answer before the client reads it (a 413 while the client is
    still sending, say). So while the client may still be sending, ``close``
    half-closes instead and drops what still arrives, for a bounded time and size.
    """

    def __init__(self, transport: asyncio.Transport, protocol: EdgeProtocol) -> None:
        self._transport = transport
        self._protocol = protocol

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._protocol.lingering or self._transport.is_closing()

    def close(self) -> None:
        protocol = self._protocol
        if protocol.lingering or not protocol.client_sending() or not self._transport.can_write_eof():
            self._transport.close()
            return
        protocol.disarm()
        self._transport.write_eof()
        protocol.start_lingering()
        self._transport.resume_reading()
        protocol.loop.call_later(_LINGER, self._transport.close)


class EdgeProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head and an OperationOutcome for a bad one.

    ``max_header_bytes`` and ``header_timeout`` are given as keywords beside
    uvicorn's own (see :func:`levelcare._adapters._limits.protocol_class`).
    """

    _head_timer: asyncio.TimerHandle | None = None
    _head_bytes = 0
    _lingering = -1

    def __init__(self, *args: Any, max_header_bytes: int, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
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
        if self.conn.their_state is h11.ERROR:
            return
        waiting = self.conn.their_state is h11.IDLE
        if waiting:
            self._head_bytes += len(data)
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._head_timer is None and self._head_bytes:
                self._arm()
        else:
            self.disarm()
            self._head_bytes = 0

    @property
    def lingering(self) -> bool:
        """Whether the connection is half-closed, dropping what the client still sends."""
        return self._lingering >= 0

    def start_lingering(self) -> None:
        """Count, from now, the bytes that arrive after the half-close."""
        self._lingering = 0

    def client_sending(self) -> bool:
        """Whether the client may still be sending: a body, a bad request, or part of a head."""
        state = self.conn.their_state
        return state in (h11.SEND_BODY, h11.ERROR) or (state is h11.IDLE and self._head_bytes > 0)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined head is measured from here; an idle wait is the keep-alive timer's.
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        if self._head_bytes > self.max_header_bytes:
            self._refuse(431, "too-long", f"the request's headers are over {self.max_header_bytes} bytes")
        else:
            self._refuse(400, "structure", "the request is not valid HTTP/1.1")

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
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._refuse(408, "timeout", f"the request head did not arrive within {self.header_timeout:g} seconds")

    def _refuse(self, status: int, code: str, problem: str) -> None:
        self.disarm()
        self.transport.write(raw_response(status, code, problem))
        self.transport.close()
