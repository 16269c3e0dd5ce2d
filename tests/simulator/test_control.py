"""The control API: generation counts, task records, counters, config, clock, reset, expiry."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sim_helpers import (
    DS_HEADERS,
    DS_KEY,
    IMAGE,
    bm_create,
    bm_query,
    ds_query,
    ds_task,
    finish,
    free_port,
    t2v_body,
)

from simulator.context import Sim
from simulator.state import fingerprint

REPO = Path(__file__).resolve().parents[2]


async def test_generations_by_bigmodel_request_id(client: httpx.AsyncClient) -> None:
    body = {"model": "viduq1-image", "image_url": IMAGE, "request_id": "order-42-a1"}
    await bm_create(client, body)
    assert (await bm_create(client, body)).json()["error"]["code"] == "1231"  # not billed
    await bm_create(client, {**body, "request_id": "order-42-a2"})
    await bm_create(client, {**body, "request_id": "order-43-a1"})
    counted = (await client.get("/_sim/generations", params={"request_id": "order-42-a1"})).json()
    assert counted["count"] == 1 and len(counted["task_ids"]) == 1
    prefix = {"request_id_prefix": "order-42-"}
    assert (await client.get("/_sim/generations", params=prefix)).json()["count"] == 2


async def test_generations_by_dashscope_model_and_prompt(client: httpx.AsyncClient) -> None:
    await ds_task(client, t2v_body("req:order-7 a cat"))
    await ds_task(client, {**t2v_body("req:order-7 a cat"), "model": "wanx2.1-t2v-plus"})
    params = {"model": "wanx2.1-t2v-turbo", "prompt": "req:order-7 a cat"}
    assert (await client.get("/_sim/generations", params=params)).json()["count"] == 1
    contains = {"prompt_contains": "req:order-7"}
    assert (await client.get("/_sim/generations", params=contains)).json()["count"] == 2


async def test_failed_creates_are_not_generations(client: httpx.AsyncClient) -> None:
    await client.post("/_sim/faults", json={"action": "429", "times": 1})
    await bm_create(client, {"model": "viduq1-image", "image_url": IMAGE, "request_id": "r"})
    await bm_create(client, {"model": "viduq1-image", "request_id": "r"})  # invalid: no image
    assert (await client.get("/_sim/generations", params={"request_id": "r"})).json()["count"] == 0


async def test_task_records(client: httpx.AsyncClient, sim: Sim) -> None:
    body = t2v_body("recorded", size="960*960")
    task_id = await ds_task(client, body)
    await ds_query(client, task_id)
    [record] = (await client.get("/_sim/tasks", params={"vendor": "dashscope"})).json()["tasks"]
    assert record["task_id"] == task_id and record["body"] == body
    assert record["path"] == "/api/v1/services/aigc/video-generation/video-synthesis"
    assert record["key_fingerprint"] == fingerprint(DS_KEY) and DS_KEY not in str(record)
    assert record["queries"] == 1 and record["query_key_fingerprints"] == [fingerprint(DS_KEY)]
    assert record["status"] == "PENDING"
    single = (await client.get(f"/_sim/tasks/{task_id}")).json()
    assert single == record
    assert (await client.get("/_sim/tasks/nope")).status_code == 404
    finish(sim)
    assert (await client.get("/_sim/tasks", params={"status": "SUCCEEDED"})).json()["tasks"]


async def test_stats_count_every_route(client: httpx.AsyncClient, sim: Sim) -> None:
    task_id = await ds_task(client, t2v_body())
    await client.post("/api/v1/services/aigc/video-generation/video-synthesis", json={})
    bm = (await bm_create(client, {"model": "viduq1-text", "prompt": "x"})).json()["id"]
    for _ in range(3):
        await ds_query(client, task_id)
    await bm_query(client, bm)
    await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=DS_HEADERS)
    stats = (await client.get("/_sim/stats")).json()
    dashscope = stats["requests"]["dashscope"]
    assert dashscope["submit"] == {"total": 2, "by_status": {"200": 1, "401": 1}}
    assert dashscope["query"]["total"] == 3 and dashscope["cancel"]["total"] == 1
    assert stats["requests"]["bigmodel"]["query"]["total"] == 1
    assert stats["generations"] == 2
    assert stats["tasks"]["dashscope"]["by_status"] == {"CANCELED": 1}


async def test_result_url_expires(client: httpx.AsyncClient, sim: Sim) -> None:
    task_id = await ds_task(client, t2v_body())
    finish(sim)
    url = (await ds_query(client, task_id))["output"]["video_url"]
    expires = int(httpx.URL(url).params["Expires"])
    assert expires - sim.clock.now() == pytest.approx(86_400, abs=5)
    assert (await client.get(url)).status_code == 200
    response = await client.post("/_sim/clock", json={"advance_s": 86_401})
    assert response.json()["offset_s"] > 86_400
    expired = await client.get(url)
    assert expired.status_code == 403 and b"AccessDenied" in expired.content


async def test_tampered_url_is_refused(client: httpx.AsyncClient, sim: Sim) -> None:
    task_id = await ds_task(client, t2v_body())
    finish(sim)
    url = httpx.URL((await ds_query(client, task_id))["output"]["video_url"])
    later = url.copy_set_param("Expires", str(int(url.params["Expires"]) + 10**6))
    assert (await client.get(later)).status_code == 403
    assert (await client.get(url.copy_with(query=None))).status_code == 403
    assert (await client.get("/results/nope.mp4")).status_code == 404


async def test_config_patch_and_reset(client: httpx.AsyncClient, sim: Sim) -> None:
    patched = await client.patch("/_sim/config", json={"timing": {"queued_s": 0, "running_s": 0}})
    assert patched.status_code == 200 and patched.json()["timing"] == {
        "queued_s": 0,
        "running_s": 0,
    }
    task_id = await ds_task(client, t2v_body())
    assert (await ds_query(client, task_id))["output"]["task_status"] == "SUCCEEDED"
    bad = await client.patch("/_sim/config", json={"queued": 1})
    assert bad.status_code == 400 and "unknown config keys" in bad.json()["error"]
    per_model = {"model_timing": {"wanx2.1-t2v-turbo": {"queued_s": 5, "running_s": 5}}}
    assert (await client.patch("/_sim/config", json=per_model)).status_code == 200
    slow = await ds_task(client, t2v_body())
    assert (await ds_query(client, slow))["output"]["task_status"] == "PENDING"
    await client.post("/_sim/faults", json={"action": "500"})
    assert (await client.post("/_sim/reset")).json() == {"ok": True}
    assert len(sim.tasks) == 0 and sim.faults.rules() == [] and sim.config.model_timing == {}
    assert (await client.get("/_sim/stats")).json()["requests"] == {}


async def test_configured_keys(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"dashscope_keys": ["sk-only"], "bigmodel_keys": ["id.only"]})
    assert (await client.get("/api/v1/tasks/x", headers=DS_HEADERS)).status_code == 401
    ok = {"Authorization": "Bearer sk-only"}
    assert (await client.get("/api/v1/tasks/x", headers=ok)).status_code == 200
    assert (await bm_query(client, "1")).status_code == 401


async def test_clock_validation(client: httpx.AsyncClient) -> None:
    assert (await client.post("/_sim/clock", json={"advance_s": -1})).status_code == 400
    assert (await client.get("/_sim/health")).json() == {"ok": True}


def test_runs_as_a_process(tmp_path: Path) -> None:
    config = tmp_path / "sim.json"
    config.write_text('{"timing": {"queued_s": 0, "running_s": 0}}')
    port = free_port()
    command = [sys.executable, "-m", "simulator", "--port", str(port), "--config", str(config)]
    process = subprocess.Popen(command, cwd=REPO)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/_sim/config", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the simulator process did not start"
                time.sleep(0.05)
        assert response.json()["timing"] == {"queued_s": 0.0, "running_s": 0.0}
    finally:
        process.terminate()
        process.wait(timeout=5)
