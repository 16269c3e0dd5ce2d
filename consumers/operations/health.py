"""The metrics and health endpoint on METRICS_HOST:METRICS_PORT: `/metrics`, `/livez`, `/readyz`.

`/livez` answers as long as the process and its event loop do (it is served on that loop): use
it for liveness, so that a MongoDB or Kafka outage does not restart every instance. `/readyz`
(and its older name `/healthz`) also checks Kafka and MongoDB: 200 when both answer, otherwise
503 with the failing side named (`{"status": "unavailable", "kafka": true, "mongodb": false}`).
Concurrent `/readyz` requests share one run of the checks.

The port is open to whoever can reach it, so it is built to be cheap to abuse:

- **Whole-request deadline.** A client has REQUEST_DEADLINE_S (5 s) from its connection to the
  end of our answer: reading the request head (at most MAX_HEAD_BYTES), running the checks
  (CHECK_TIMEOUT_S each, in parallel) and writing the answer. Then the socket is closed, whatever
  the client still sends or fails to read. Every answer closes its connection (no keep-alive).
- **Connection cap.** At most MAX_CONNECTIONS (64) connections are open at once. A connection
  arriving at the cap evicts the oldest connection still waiting for its request head (a slow
  client; a real client sends its head in one packet), taken from the client address that holds
  the most such connections, so a host flooding the port evicts its own connections and a probe
  or a scrape from elsewhere still gets through. When every slot is being answered, the newcomer
  is closed at once.
- **Bind address** METRICS_HOST (default `0.0.0.0`, so container probes keep working); set it to
  `127.0.0.1` or a private interface's address to keep the port off other networks.

Why hand-written and not a library server: measured (`python -m benchmarks.health_slowloris`).
The library candidate was prometheus-client's ASGI app (`make_asgi_app`) plus two ASGI probe
routes under uvicorn 0.54 (`limit_concurrency=64`, `timeout_keep_alive=5`); FastStream's ASGI
support runs under the same uvicorn. Each server ran in its own process limited to 1,024 file
descriptors, against 1,000 slowloris clients (a request line, then a header line every 2 s) and
1,000 silent ones (connect, send nothing) from 127.0.0.2, for 30 s, while a client on 127.0.0.1
fetched `/metrics` and `/livez` every 0.25 s (2 shared cores; latencies are noisy):

| attackers | server | server fds (max) | probes answered | `/metrics` p50 / p99 |
|---|---|---|---|---|
| connect once | this module | 71 | 176 of 176 | 53 / 161 ms |
| connect once | uvicorn + prometheus ASGI | 1,024 (all) | 0 of 6 | none answered |
| connect once | this module before (10 s per line, no cap) | 1,024 (all) | 0 of 6 | none answered |
| reconnect 1 s after each drop | this module | 322 | 90 of 90 | 88 / 1,507 ms |
| reconnect 1 s after each drop | uvicorn + prometheus ASGI | 1,024 (all) | 0 of 6 | none answered |
| reconnect 1 s after each drop | this module before | 1,024 (all) | 0 of 6 | none answered |

(`/metrics` p50 without attackers: 23 to 69 ms, most of it the probe's own client start-up.)
uvicorn has no deadline for a request head (its keep-alive timer starts only after a first
response) and applies `limit_concurrency` only once a whole request has arrived, so every slow
client keeps its socket: at the descriptor limit, `accept` fails and nothing is answered. In
the service that limit is shared with the Kafka, MongoDB and download connections, so the
damage would not stop at the metrics port. uvicorn inside the service would also take over
SIGINT and SIGTERM from FastStream unless driven through its private `_serve`. This module keeps
its descriptors bounded: the cap, plus at most two accept batches of 128 (the listen backlog)
being refused or closed. A flood of new connections still costs event-loop time (accepting and
closing them), as it would with any server in this process: keep the port on a private network.
The code is one asyncio stream handler, and every limit is tested over a real socket
(tests/unit/test_health.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger("video.health")

Check = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT_S = 3.0
REQUEST_DEADLINE_S = 5.0
MAX_CONNECTIONS = 64
MAX_HEAD_BYTES = 8 * 1024


class _Connection:
    __slots__ = ("peer", "reading", "since", "writer")

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        self.since = time.monotonic()
        self.reading = True  # still waiting for its request head


class HealthServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        checks: dict[str, Check],
        port: int,
        host: str = "0.0.0.0",
        *,
        max_connections: int = MAX_CONNECTIONS,
        request_deadline_s: float = REQUEST_DEADLINE_S,
    ) -> None:
        self._registry = registry
        self._checks = checks
        self._port = port
        self._host = host
        self._max_connections = max_connections
        self._deadline_s = request_deadline_s
        self._server: asyncio.Server | None = None
        self._open: dict[asyncio.StreamWriter, _Connection] = {}
        self._checking: asyncio.Task[dict[str, bool]] | None = None
        self.refused = 0  # connections closed at once (the cap reached, none to evict)
        self.evicted = 0  # slow connections closed to make room

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._open)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=MAX_HEAD_BYTES, backlog=128
        )
        log.info(
            "metrics on http://%s:%d/metrics, health on /livez, /readyz", self._host, self.port
        )

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._open.values()):
            connection.writer.transport.abort()
        if self._checking is not None:
            self._checking.cancel()
        await self._server.wait_closed()
        self._server = None

    async def health(self) -> dict[str, bool]:
        """Each check's result; concurrent callers share one run of the checks."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._run_checks())
        return await asyncio.shield(self._checking)

    async def _run_checks(self) -> dict[str, bool]:
        async def run(check: Check) -> bool:
            try:
                return bool(await asyncio.wait_for(check(), CHECK_TIMEOUT_S))
            except Exception:
                return False

        results = await asyncio.gather(*(run(c) for c in self._checks.values()))
        return dict(zip(self._checks, results, strict=True))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = _Connection(writer)
        if not self._admit(connection):
            self.refused += 1
            writer.transport.abort()
            return
        self._open[writer] = connection
        try:
            async with asyncio.timeout(self._deadline_s):
                head = await reader.readuntil(b"\r\n\r\n")
                connection.reading = False
                status, content_type, body = await self._answer(head)
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                writer.close()
                await writer.wait_closed()
        except asyncio.LimitOverrunError:
            writer.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            writer.close()  # a few bytes: they leave at once, or the client is gone
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()  # too slow, gone, or not reading its answer
        finally:
            self._open.pop(writer, None)

    def _admit(self, newcomer: _Connection) -> bool:
        """Room for one more connection: at the cap, the oldest connection still reading its
        head is closed, taken from the peer address that holds the most such connections (the
        newcomer counted), so one flooding host evicts its own connections, not a probe's."""
        if len(self._open) < self._max_connections:
            return True
        waiting = [c for c in self._open.values() if c.reading]
        if not waiting:
            return False
        held = Counter(c.peer for c in waiting)
        held[newcomer.peer] += 1
        heaviest = max(held, key=lambda peer: held[peer])
        candidates = [c for c in waiting if c.peer == heaviest] or waiting
        oldest = min(candidates, key=lambda c: c.since)
        self._open.pop(oldest.writer, None)
        oldest.writer.transport.abort()
        self.evicted += 1
        return True

    async def _answer(self, head: bytes) -> tuple[str, str, bytes]:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) < 2:
            return "400 Bad Request", "text/plain", b"not an HTTP request\n"
        method, path = parts[0], parts[1].split("?", 1)[0]
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self._registry)
        if path == "/livez":
            return "200 OK", "application/json", b'{"status":"ok"}'
        if path in ("/readyz", "/healthz"):
            checks = await self.health()
            ok = all(checks.values())
            body = json.dumps({"status": "ok" if ok else "unavailable", **checks}).encode()
            status = "200 OK" if ok else "503 Service Unavailable"
            return status, "application/json", body
        return "404 Not Found", "text/plain", b"try /metrics, /livez or /readyz\n"
