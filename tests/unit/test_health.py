"""The metrics and health endpoint, over a real socket."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Counter

from consumers.operations.health import HealthServer
from tests.harness import free_port


async def up() -> bool:
    return True


async def broken() -> bool:
    raise ConnectionError("unreachable")


async def test_healthz_is_200_only_when_every_check_passes() -> None:
    registry = CollectorRegistry()
    Counter("video_probe_total", "A metric to find.", registry=registry).inc()
    port = free_port()
    server = HealthServer(registry, {"kafka": up, "mongodb": broken}, port, host="127.0.0.1")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            unhealthy = await client.get("/healthz")
            assert unhealthy.status_code == 503
            assert unhealthy.json() == {"status": "unavailable", "kafka": True, "mongodb": False}
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200 and "video_probe_total 1.0" in metrics.text
            assert (await client.get("/nowhere")).status_code == 404
            assert (await client.post("/healthz")).status_code == 405
    finally:
        await server.stop()

    healthy_port = free_port()
    healthy = HealthServer(registry, {"kafka": up, "mongodb": up}, healthy_port, host="127.0.0.1")
    await healthy.start()
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{healthy_port}/healthz")
            assert response.status_code == 200 and response.json()["status"] == "ok"
    finally:
        await healthy.stop()
