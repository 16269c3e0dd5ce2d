"""Constants and request helpers shared by the simulator tests (fixtures live in conftest.py).

Tests move the simulator's clock instead of sleeping: tasks are queued 1 s and run 2 s.
"""

from __future__ import annotations

import socket
from typing import Any

import httpx

from simulator import SimConfig
from simulator.context import Sim

QUEUED_S, RUNNING_S = 1.0, 2.0
DS_KEY = "sk-test"
BM_KEY = "abc123.secret456"
DS_HEADERS = {"Authorization": f"Bearer {DS_KEY}", "X-DashScope-Async": "enable"}
BM_HEADERS = {"Authorization": f"Bearer {BM_KEY}"}
VIDEO_GENERATION = "/api/v1/services/aigc/video-generation/video-synthesis"
IMAGE2VIDEO = "/api/v1/services/aigc/image2video/video-synthesis"
BM_CREATE = "/api/paas/v4/videos/generations"
IMAGE = "https://example.com/cat.png"


def sim_config(**changes: Any) -> SimConfig:
    return SimConfig.from_dict(
        {"timing": {"queued_s": QUEUED_S, "running_s": RUNNING_S}, **changes}
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def t2v_body(prompt: str = "a cat runs under the moon", **parameters: Any) -> dict[str, Any]:
    return {"model": "wanx2.1-t2v-turbo", "input": {"prompt": prompt}, "parameters": parameters}


async def ds_create(
    client: httpx.AsyncClient,
    body: dict[str, Any],
    path: str = VIDEO_GENERATION,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(path, json=body, headers=DS_HEADERS if headers is None else headers)


async def ds_task(
    client: httpx.AsyncClient, body: dict[str, Any], path: str = VIDEO_GENERATION
) -> str:
    response = await ds_create(client, body, path)
    assert response.status_code == 200, response.text
    return str(response.json()["output"]["task_id"])


async def ds_query(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/tasks/{task_id}", headers=DS_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


async def bm_create(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(BM_CREATE, json=body, headers=BM_HEADERS)


async def bm_query(client: httpx.AsyncClient, task_id: str) -> httpx.Response:
    return await client.get(f"/api/paas/v4/async-result/{task_id}", headers=BM_HEADERS)


def finish(sim: Sim) -> None:
    """Move the clock past every task's end."""
    sim.clock.advance(QUEUED_S + RUNNING_S + 0.01)
