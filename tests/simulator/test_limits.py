"""Running-task limits (429 like the vendors, or queueing) and request-rate limits."""

from __future__ import annotations

import time
from dataclasses import replace

import httpx
from sim_helpers import (
    DS_HEADERS,
    IMAGE,
    QUEUED_S,
    RUNNING_S,
    bm_create,
    ds_create,
    ds_query,
    ds_task,
    finish,
    t2v_body,
)

from simulator.context import Sim

BM_BODY = {"model": "vidu2-image", "image_url": IMAGE}


async def test_running_limit_rejects_like_dashscope(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"running_limit": 2})
    await ds_task(client, t2v_body())
    second = await ds_task(client, t2v_body())
    refused = await ds_create(client, t2v_body())
    assert refused.status_code == 429 and refused.json()["code"] == "Throttling.RateQuota"
    other_model = {**t2v_body(), "model": "wanx2.1-t2v-plus"}
    assert (await ds_create(client, other_model)).status_code == 200  # per model
    other_key = {**DS_HEADERS, "Authorization": "Bearer sk-other"}
    assert (await ds_create(client, t2v_body(), headers=other_key)).status_code == 200  # per key
    await client.post(f"/api/v1/tasks/{second}/cancel", headers=DS_HEADERS)
    assert (await ds_create(client, t2v_body())).status_code == 200  # a cancel frees a slot
    finish(sim)
    assert (await ds_create(client, t2v_body())).status_code == 200


async def test_running_limit_rejects_like_bigmodel(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"running_limit": 1})
    assert (await bm_create(client, BM_BODY)).status_code == 200
    refused = await bm_create(client, BM_BODY)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "1302"
    finish(sim)
    assert (await bm_create(client, BM_BODY)).status_code == 200


async def test_queue_mode_keeps_extra_tasks_pending(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"running_limit": 1, "running_limit_mode": "queue"})
    first = await ds_task(client, t2v_body())
    second = await ds_task(client, t2v_body())
    sim.clock.advance(QUEUED_S + 0.01)
    assert (await ds_query(client, first))["output"]["task_status"] == "RUNNING"
    assert (await ds_query(client, second))["output"]["task_status"] == "PENDING"
    sim.clock.advance(RUNNING_S)
    assert (await ds_query(client, first))["output"]["task_status"] == "SUCCEEDED"
    assert (await ds_query(client, second))["output"]["task_status"] == "RUNNING"
    sim.clock.advance(RUNNING_S)
    assert (await ds_query(client, second))["output"]["task_status"] == "SUCCEEDED"


async def test_submit_qps(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"submit_qps": 2})
    assert (await ds_create(client, t2v_body())).status_code == 200
    assert (await ds_create(client, t2v_body())).status_code == 200
    refused = await ds_create(client, t2v_body())
    assert refused.status_code == 429 and refused.json()["code"] == "Throttling.RateQuota"
    sim.clock.advance(1.01)
    assert (await ds_create(client, t2v_body())).status_code == 200
    assert len(sim.tasks) == 3


async def test_query_qps(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"query_qps": 1})
    assert (await client.get("/api/v1/tasks/a", headers=DS_HEADERS)).status_code == 200
    assert (await client.get("/api/v1/tasks/a", headers=DS_HEADERS)).status_code == 429
    sim.clock.advance(1.01)
    assert (await client.get("/api/v1/tasks/a", headers=DS_HEADERS)).status_code == 200


async def test_ten_thousand_tasks_in_flight_are_cheap(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"running_limit": 20_000})
    template = sim.tasks.find(await ds_task(client, t2v_body()))
    assert template is not None
    started = time.monotonic()
    for n in range(10_000):
        sim.add_task(replace(template, task_id=f"bulk-{n}"))
    assert (await ds_create(client, t2v_body())).status_code == 200  # the limit check stays cheap
    stats = (await client.get("/_sim/stats")).json()
    assert stats["tasks"]["dashscope"]["by_status"] == {"PENDING": 10_002}
    assert time.monotonic() - started < 2.0
