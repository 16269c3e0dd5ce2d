"""The metrics and health endpoint, over a real socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from consumers.operations.health import HealthServer
from tests.harness import free_port

Check = Callable[[], Awaitable[bool]]


async def up() -> bool:
    return True


async def broken() -> bool:
    raise ConnectionError("unreachable")


async def hangs() -> bool:
    await asyncio.sleep(3600)
    return True


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


# --- the limits ---------------------------------------------------------------------------


async def serving(checks: dict[str, Check] | None = None, **limits: float) -> HealthServer:
    server = HealthServer(
        CollectorRegistry(),
        checks if checks is not None else {"kafka": up, "mongodb": up},
        0,
        "127.0.0.1",
        **limits,  # type: ignore[arg-type]
    )
    await server.start()
    return server


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[HealthServer]:
    limits = getattr(request, "param", {})
    running = await serving(**limits)
    yield running
    await running.stop()


async def connect(
    server: HealthServer, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source, 0))


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the server closes (or resets) the connection within `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def get(server: HealthServer, path: str, source: str = "127.0.0.1") -> int:
    reader, writer = await connect(server, source)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return int(answer.split(b" ", 2)[1])


async def test_livez_answers_while_the_checks_fail_or_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("consumers.operations.health.CHECK_TIMEOUT_S", 0.3)
    server = await serving({"kafka": hangs, "mongodb": broken})
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            started = time.monotonic()
            live = await client.get("/livez")
            assert live.status_code == 200 and time.monotonic() - started < 1
            ready = await client.get("/readyz", timeout=10)
            assert ready.status_code == 503
            assert ready.json() == {"status": "unavailable", "kafka": False, "mongodb": False}
    finally:
        await server.stop()


@pytest.mark.parametrize("server", [{"request_deadline_s": 0.5}], indirect=True)
async def test_a_slow_request_is_cut_at_the_whole_request_deadline(server: HealthServer) -> None:
    # One header line every 0.1 s: a timeout per line would never fire.
    reader, writer = await connect(server)
    writer.write(b"GET /metrics HTTP/1.1\r\n")
    started = time.monotonic()

    async def trickle() -> None:
        while True:
            await asyncio.sleep(0.1)
            writer.write(b"X-Pad: y\r\n")
            await writer.drain()

    dripping = asyncio.create_task(trickle())
    try:
        assert await closed_within(reader, 3)
    finally:
        dripping.cancel()
        writer.transport.abort()
    assert 0.4 < time.monotonic() - started < 1.5
    await asyncio.sleep(0.05)
    assert server.connections == 0


@pytest.mark.parametrize("server", [{"request_deadline_s": 0.3}], indirect=True)
async def test_a_silent_connection_is_cut_at_the_deadline(server: HealthServer) -> None:
    reader, writer = await connect(server)
    assert await closed_within(reader, 2)
    writer.close()


@pytest.mark.parametrize("server", [{"max_connections": 4}], indirect=True)
async def test_at_the_cap_a_request_evicts_the_oldest_slow_connection(
    server: HealthServer,
) -> None:
    idle = [await connect(server) for _ in range(4)]
    await asyncio.sleep(0.05)
    assert server.connections == 4
    assert await get(server, "/livez") == 200  # a real request still gets through
    assert await closed_within(idle[0][0], 1)  # the oldest silent one made room
    assert server.evicted == 1 and server.connections <= 4
    for _, writer in idle:
        writer.transport.abort()


@pytest.mark.parametrize("server", [{"max_connections": 4}], indirect=True)
async def test_a_flooding_host_evicts_its_own_connections(server: HealthServer) -> None:
    # A slow connection from 127.0.0.1 (say, a probe whose head is still on its way) is the
    # oldest; a host flooding from 127.0.0.2 evicts its own connections, not that one.
    probe = await connect(server, "127.0.0.1")
    await asyncio.sleep(0.02)
    flood = [await connect(server, "127.0.0.2") for _ in range(10)]
    await asyncio.sleep(0.1)
    assert server.connections == 4
    assert not await closed_within(probe[0], 0.1)
    probe[1].write(b"GET /livez HTTP/1.1\r\n\r\n")
    assert b"200 OK" in await asyncio.wait_for(probe[0].read(), 2)
    for _, writer in flood:
        writer.transport.abort()


async def test_when_every_slot_is_answering_a_newcomer_is_refused_at_once() -> None:
    server = await serving({"kafka": hangs}, max_connections=2, request_deadline_s=5)
    try:
        waiting = [asyncio.create_task(get(server, "/readyz")) for _ in range(2)]
        await asyncio.sleep(0.1)  # both read their head and wait for the check
        reader, writer = await connect(server)
        assert await closed_within(reader, 0.5)
        assert server.refused == 1
        writer.close()
        for task in waiting:
            task.cancel()
    finally:
        await server.stop()


async def test_concurrent_readiness_requests_share_one_run_of_the_checks() -> None:
    calls = 0

    async def counted() -> bool:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return True

    server = await serving({"kafka": counted, "mongodb": counted})
    try:
        statuses = await asyncio.gather(*(get(server, "/readyz") for _ in range(10)))
        assert statuses == [200] * 10
        assert calls == 2  # one run: each check once
    finally:
        await server.stop()


async def test_an_oversized_or_malformed_head_is_refused(server: HealthServer) -> None:
    reader, writer = await connect(server)
    writer.write(b"GET /metrics HTTP/1.1\r\n" + b"X-Pad: " + b"y" * 10_000 + b"\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 2)).startswith(b"HTTP/1.1 431 ")
    writer.close()
    reader, writer = await connect(server)
    writer.write(b"HELLO\r\n\r\n")
    assert (await asyncio.wait_for(reader.read(), 2)).startswith(b"HTTP/1.1 400 ")
    writer.close()


async def test_the_bind_address_is_honoured() -> None:
    port = free_port()
    server = HealthServer(CollectorRegistry(), {}, port, "127.0.0.2")
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.2", port)
        writer.write(b"GET /livez HTTP/1.1\r\n\r\n")
        assert b"200 OK" in await asyncio.wait_for(reader.read(), 2)
        writer.close()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
    finally:
        await server.stop()
