"""The metrics and health endpoint on METRICS_PORT: `/metrics`, `/livez`, `/readyz`.

`/livez` answers as long as the process and its event loop do (it is served on that loop): use
it for liveness, so that a MongoDB or Kafka outage does not restart every instance. `/readyz`
(and its older name `/healthz`) also checks Kafka and MongoDB.

A few lines of asyncio HTTP serve two GET paths; no web framework is needed for that.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger("video.health")

Check = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT_S = 3.0


class HealthServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        checks: dict[str, Check],
        port: int,
        host: str = "0.0.0.0",
    ) -> None:
        self._registry = registry
        self._checks = checks
        self._port = port
        self._host = host
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        log.info(
            "metrics on http://%s:%d/metrics, health on /livez, /readyz", self._host, self._port
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def health(self) -> dict[str, bool]:
        async def run(check: Check) -> bool:
            try:
                return await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
            except Exception:
                return False

        results = await asyncio.gather(*(run(c) for c in self._checks.values()))
        return dict(zip(self._checks, results, strict=True))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 10)
            while (await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b"\n", b""):
                pass  # headers are not needed
            method, path, *_ = request_line.decode("latin-1").split() or ["", ""]
            path = path.split("?", 1)[0]
            if method != "GET":
                status, content_type, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path == "/metrics":
                status, content_type, body = (
                    "200 OK",
                    CONTENT_TYPE_LATEST,
                    generate_latest(self._registry),
                )
            elif path == "/livez":
                status, content_type, body = "200 OK", "application/json", b'{"status":"ok"}'
            elif path in ("/readyz", "/healthz"):
                checks = await self.health()
                ok = all(checks.values())
                status = "200 OK" if ok else "503 Service Unavailable"
                content_type = "application/json"
                body = json.dumps({"status": "ok" if ok else "unavailable", **checks}).encode()
            else:
                status, content_type, body = (
                    "404 Not Found",
                    "text/plain",
                    b"try /metrics, /livez or /readyz\n",
                )
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
