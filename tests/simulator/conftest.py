"""Fixtures: an in-process simulator per test, and a real uvicorn server for socket-level faults."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from sim_helpers import free_port, sim_config
from starlette.applications import Starlette

from simulator import create_app
from simulator.context import Sim


@pytest.fixture
def app() -> Starlette:
    return create_app(sim_config())


@pytest.fixture
def sim(app: Starlette) -> Sim:
    return app.state.sim


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim.test") as client:
        yield client


@pytest.fixture(scope="session")
def server_app() -> Starlette:
    return create_app(sim_config())


@pytest.fixture(scope="session")
def server_url(server_app: Starlette) -> Iterator[str]:
    """A real uvicorn (h11) serving `server_app` on a free loopback port, in its own thread."""
    port = free_port()
    config = uvicorn.Config(server_app, host="127.0.0.1", port=port, http="h11", log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
async def remote(server_app: Starlette, server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the real server, whose simulator state starts fresh for each test."""
    server_app.state.sim.reset()
    async with httpx.AsyncClient(base_url=server_url) as client:
        yield client
