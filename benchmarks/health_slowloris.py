"""The metrics/health port under slow clients: the service's HealthServer against uvicorn.

    python -m benchmarks.health_slowloris [--kind service|uvicorn|MODULE:CLASS] [--slow 1000]
        [--silent 1000] [--seconds 30] [--reconnect-s 1] [--nofile 1024]

Starts the server in its own process (file descriptors limited to `--nofile`, a common default),
with the service's metrics registry filled with every model's series. Then, for `--seconds`,
`--slow` slowloris clients (a request line, then one header line every 2 s, never finishing) and
`--silent` clients (connect, send nothing) hold connections from 127.0.0.2, each reconnecting
`--reconnect-s` after the server drops it (-1: never), while a client on 127.0.0.1 fetches
`/metrics` and `/livez` every 0.25 s. Prints the attackers' connections open (their view,
median of 1 s samples), the server's file descriptors, the probes answered and the `/metrics`
latency before and under the attack. Needs no services. Figures: consumers/operations/health.py.

`--kind uvicorn` is prometheus-client's ASGI app (`make_asgi_app`) plus two ASGI probe routes,
served by uvicorn with `limit_concurrency=64` and `timeout_keep_alive=5`. `MODULE:CLASS` is any
class with HealthServer's constructor and start/stop (e.g. an older version of it, importable
through PYTHONPATH).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, make_asgi_app

from consumers.operations.metrics import Metrics
from providers.catalog import MODELS
from tests.harness import free_port

SERVICE = "consumers.operations.health:HealthServer"
ATTACKER = "127.0.0.2"  # the attackers' source address; the probes come from 127.0.0.1


def registry() -> CollectorRegistry:
    """The service's metrics with every model's series present (about what a busy instance has)."""
    metrics = Metrics()
    for name, model in MODELS.items():
        provider = model.provider
        for status in ("accepted", "submitted", "running", "downloading", "completed", "failed"):
            metrics.statuses.labels(provider, name, status).inc()
        for code in ("timeout", "upstream_failed", "download_failed"):
            metrics.errors.labels(provider, name, code).inc()
        metrics.task_seconds.labels(provider, name, "completed").observe(60)
        metrics.generation_seconds.labels(provider, name).observe(50)
        metrics.download_seconds.labels(provider, name).observe(1)
    return metrics.registry


async def up() -> bool:
    return True


async def serve(kind: str, port: int) -> None:
    reg = registry()
    if kind == "uvicorn":
        import uvicorn

        metrics_app = make_asgi_app(reg)

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["path"] == "/metrics":
                await metrics_app(scope, receive, send)
                return
            status, body = (200, b'{"status":"ok"}') if scope["path"] == "/livez" else (404, b"")
            headers = [(b"content-type", b"application/json")]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_level="warning",
            access_log=False,
            limit_concurrency=64,
            timeout_keep_alive=5,
        )
        await uvicorn.Server(config).serve()
        return
    module, _, name = (SERVICE if kind == "service" else kind).partition(":")
    server = getattr(importlib.import_module(module), name)(reg, {"kafka": up}, port, "127.0.0.1")
    await server.start()
    await asyncio.Event().wait()


class Attack:
    def __init__(self, port: int, reconnect_s: float | None) -> None:
        self.port = port
        self.reconnect_s = reconnect_s
        self.open = 0
        self.made = 0
        self.failed = 0
        self.stop = False

    async def slot(self, slow: bool) -> None:
        while not self.stop:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", self.port, local_addr=(ATTACKER, 0)), 5
                )
            except (OSError, TimeoutError):
                self.failed += 1
                await asyncio.sleep(0.5)
                continue
            self.made += 1
            self.open += 1
            try:
                if slow:
                    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                closed = asyncio.ensure_future(reader.read(1))
                while not self.stop and not closed.done():
                    await asyncio.wait([closed], timeout=2)
                    if slow and not closed.done():
                        writer.write(b"X-Pad: y\r\n")
                        await writer.drain()
                closed.cancel()
            except OSError:
                pass
            finally:
                self.open -= 1
                writer.transport.abort()
            if self.reconnect_s is None:
                return
            await asyncio.sleep(self.reconnect_s)


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def probe(port: int, seconds: float, pid: int) -> tuple[list[float], int, int, list[int]]:
    """(/metrics latencies of answered probes, answered, asked, fd samples)."""
    latencies: list[float] = []
    answered = asked = 0
    samples: list[int] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(fds(pid))
        for path in ("/metrics", "/livez"):
            asked += 1
            started = time.monotonic()
            try:
                async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
                    response = await client.get(f"http://127.0.0.1:{port}{path}")
                if response.status_code == 200:
                    answered += 1
                    if path == "/metrics":
                        latencies.append(time.monotonic() - started)
            except httpx.HTTPError:
                pass
        await asyncio.sleep(0.25)
    return latencies, answered, asked, samples


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


async def attack(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    child = subprocess.Popen(
        [
            *(sys.executable, "-m", "benchmarks.health_slowloris", "--serve", args.kind),
            *("--port", str(port), "--nofile", str(args.nofile)),
        ],
        stderr=subprocess.DEVNULL,  # "accept() out of system resource", once per accept
    )
    try:
        for _ in range(100):
            try:
                async with httpx.AsyncClient(trust_env=False) as client:
                    await client.get(f"http://127.0.0.1:{port}/livez", timeout=1)
                break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        baseline, _, _, fds_before = await probe(port, 3, child.pid)
        attack = Attack(port, None if args.reconnect_s < 0 else args.reconnect_s)
        slots = [asyncio.create_task(attack.slot(True)) for _ in range(args.slow)]
        slots += [asyncio.create_task(attack.slot(False)) for _ in range(args.silent)]
        held: list[int] = []

        async def sample() -> None:
            while not attack.stop:
                await asyncio.sleep(1)
                held.append(attack.open)

        sampler = asyncio.create_task(sample())
        await asyncio.sleep(2)  # let the attack build up
        latencies, answered, asked, fd_samples = await probe(port, args.seconds, child.pid)
        attack.stop = True
        await asyncio.gather(*slots, sampler, return_exceptions=True)
        return {
            "kind": args.kind,
            "reconnect after s": args.reconnect_s,
            "attackers": args.slow + args.silent,
            "attacker connections open (median of samples)": statistics.median(held),
            "attacker connections made": attack.made,
            "attacker connects failed": attack.failed,
            "server fds max": max(fd_samples),
            "server fds before": max(fds_before),
            "probes answered": f"{answered}/{asked}",
            "/metrics p50 ms before": round(quantile(baseline, 0.5) * 1000, 1),
            "/metrics p50 ms under attack": round(quantile(latencies, 0.5) * 1000, 1),
            "/metrics p99 ms under attack": round(quantile(latencies, 0.99) * 1000, 1),
        }
    finally:
        child.terminate()
        child.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", default="service")
    parser.add_argument("--slow", type=int, default=1000)
    parser.add_argument("--silent", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--reconnect-s", type=float, default=1.0, help="-1: never reconnect")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, args.nofile))
        asyncio.run(serve(args.serve, args.port))
        return
    print(json.dumps(asyncio.run(attack(args)), indent=2))


if __name__ == "__main__":
    main()
