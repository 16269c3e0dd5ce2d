"""Connection-level faults: a dropped connection, and a body cut short.

ASGI has no way to say "close the socket", so under uvicorn we reach the server's connection
object: the `send` uvicorn hands to the app is a bound method of its per-request cycle, which
holds the asyncio transport (see `remember_connection`). In-process (httpx.ASGITransport) there
is no socket; the app then raises ConnectionResetError, which ASGITransport passes to the client.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

CYCLE_KEY = "simulator.connection"


def remember_connection(scope: Scope, send: Send) -> None:
    """Keep uvicorn's request cycle in the scope (called before any middleware wraps `send`)."""
    cycle = getattr(send, "__self__", None)
    if getattr(cycle, "transport", None) is not None:
        scope[CYCLE_KEY] = cycle


async def _close(scope: Scope, *, reset: bool) -> None:
    cycle: Any = scope.get(CYCLE_KEY)
    if cycle is None:
        raise ConnectionResetError("simulated connection reset (in-process, no socket)")
    transport = cycle.transport
    sock = transport.get_extra_info("socket")
    if reset and sock is not None:
        # Linger 0: close() sends RST instead of FIN, so the client sees "connection reset".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()  # flushes what was sent, then FIN
    for _ in range(200):  # until uvicorn notices, so it does not log a half-sent response
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.005)


class DroppedConnection(Response):
    """No answer at all: the connection is reset while the client waits for the response."""

    label = "reset"

    def __init__(self) -> None:
        super().__init__(status_code=599)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _close(scope, reset=True)


class TruncatedResponse(Response):
    """Promises `declared` bytes in Content-Length, sends `body`, then closes the connection."""

    label = "truncated"

    def __init__(self, body: bytes, declared: int, media_type: str) -> None:
        super().__init__(status_code=200, media_type=media_type)
        self.partial = body
        self.headers["content-length"] = str(declared)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.partial, "more_body": True})
        await _close(scope, reset=False)
