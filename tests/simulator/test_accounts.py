"""Accounts: limits, task visibility and BigModel's request_id uniqueness are per account; the
DashScope task list shows the account's tasks (§1.2, §1.6, §1.9, §2.3, §2.7, Z-ERR 1231)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sim_helpers import (
    BM_HEADERS,
    DS_HEADERS,
    DS_KEY,
    IMAGE,
    bm_create,
    bm_query,
    ds_create,
    ds_task,
    finish,
    t2v_body,
)

from simulator.context import Sim
from simulator.state import fingerprint

BEIJING = timezone(timedelta(hours=8))
SIBLING = {**DS_HEADERS, "Authorization": "Bearer sk-sibling"}  # same account as DS_KEY
STRANGER = {**DS_HEADERS, "Authorization": "Bearer sk-stranger"}  # an account of its own
BM_BODY = {"model": "vidu2-image", "image_url": IMAGE}


@pytest.fixture(autouse=True)
def two_keys_one_account(sim: Sim) -> None:
    sim.config = sim.config.updated({"accounts": {"acct-a": [DS_KEY, "sk-sibling"]}})


async def test_limits_are_the_accounts(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"running_limit": 1, "submit_qps": 5})
    await ds_task(client, t2v_body())
    refused = await ds_create(client, t2v_body(), headers=SIBLING)
    assert refused.status_code == 429 and refused.json()["code"] == "Throttling.RateQuota"
    assert (await ds_create(client, t2v_body(), headers=STRANGER)).status_code == 200
    finish(sim)
    assert (await ds_create(client, t2v_body(), headers=SIBLING)).status_code == 200


async def test_query_rate_is_the_accounts(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"query_qps": 1})
    assert (await client.get("/api/v1/tasks/a", headers=DS_HEADERS)).status_code == 200
    assert (await client.get("/api/v1/tasks/a", headers=SIBLING)).status_code == 429
    assert (await client.get("/api/v1/tasks/a", headers=STRANGER)).status_code == 200


async def test_any_key_of_the_account_sees_its_tasks_others_do_not(
    client: httpx.AsyncClient,
) -> None:
    task_id = await ds_task(client, t2v_body())
    mine = await client.get(f"/api/v1/tasks/{task_id}", headers=SIBLING)
    assert mine.json()["output"]["task_status"] == "PENDING"
    theirs = await client.get(f"/api/v1/tasks/{task_id}", headers=STRANGER)
    assert theirs.json()["output"]["task_status"] == "UNKNOWN"
    cancel = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=STRANGER)
    assert cancel.status_code == 400
    records = (await client.get("/_sim/tasks", params={"account": "acct-a"})).json()["tasks"]
    assert [r["task_id"] for r in records] == [task_id]


# BigModel request_id -------------------------------------------------------------------------


async def test_a_repeated_request_id_is_1231_and_not_billed(
    client: httpx.AsyncClient, sim: Sim
) -> None:
    body = {**BM_BODY, "request_id": "order-1-a1"}
    created = await bm_create(client, body)
    assert created.status_code == 200 and created.json()["request_id"] == "order-1-a1"
    again = await bm_create(client, body)
    assert again.status_code == 400
    assert again.json() == {
        "error": {"code": "1231", "message": "You already have a request: order-1-a1"}
    }
    assert len(sim.tasks) == 1
    assert (await bm_create(client, {**body, "request_id": "order-1-a2"})).status_code == 200
    other_account = {"Authorization": "Bearer other.account"}
    response = await client.post(
        "/api/paas/v4/videos/generations", json=body, headers=other_account
    )
    assert response.status_code == 200  # uniqueness is per account (inferred)
    assert (await bm_create(client, {**BM_BODY})).status_code == 200  # no request_id: generated


async def test_a_request_id_is_free_again_once_its_task_is_gone(
    client: httpx.AsyncClient, sim: Sim
) -> None:
    body = {**BM_BODY, "request_id": "order-2-a1"}
    assert (await bm_create(client, body)).status_code == 200
    sim.clock.advance(sim.config.task_ttl_s + 1)
    assert (await bm_create(client, body)).status_code == 200


async def test_bigmodel_tasks_are_the_accounts(client: httpx.AsyncClient) -> None:
    task_id = (await bm_create(client, BM_BODY)).json()["id"]
    assert (await bm_query(client, task_id)).status_code == 200
    other = await client.get(
        f"/api/paas/v4/async-result/{task_id}", headers={"Authorization": "Bearer x.y"}
    )
    assert other.status_code == 400 and other.json()["error"]["code"] == "1210"
    assert BM_HEADERS  # the creating key is its own account


# The DashScope task list ---------------------------------------------------------------------


def list_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, BEIJING).strftime("%Y%m%d%H%M%S")


async def listed(client: httpx.AsyncClient, headers: dict[str, str], **query: Any) -> Any:
    response = await client.get("/api/v1/tasks", params=query, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_task_list(client: httpx.AsyncClient, sim: Sim) -> None:
    turbo = await ds_task(client, t2v_body())
    plus = await ds_task(client, {**t2v_body(), "model": "wanx2.1-t2v-plus"})
    await ds_create(client, t2v_body(), headers=STRANGER)
    body = await listed(client, SIBLING)
    assert [row["task_id"] for row in body["data"]] == [plus, turbo]  # newest first
    assert (body["page_no"], body["page_size"], body["total"], body["total_page"]) == (1, 10, 2, 1)
    task = sim.tasks.find(turbo)
    assert task is not None
    row = body["data"][1]
    assert row["status"] == "PENDING" and row["model_name"] == "wanx2.1-t2v-turbo"
    assert row["gmt_create"] == int(task.created * 1000)
    assert row["api_key_id"] == fingerprint(DS_KEY) and row["region"] == "cn-beijing"
    only_turbo = await listed(client, DS_HEADERS, model_name="wanx2.1-t2v-turbo")
    assert [row["task_id"] for row in only_turbo["data"]] == [turbo]
    finish(sim)
    done = await listed(client, DS_HEADERS, status="SUCCEEDED")
    assert done["total"] == 2
    assert (await listed(client, DS_HEADERS, status="PENDING"))["total"] == 0


async def test_the_task_list_by_time_and_page(client: httpx.AsyncClient, sim: Sim) -> None:
    first = await ds_task(client, t2v_body())
    sim.clock.advance(120)
    second = await ds_task(client, t2v_body())
    now = sim.clock.now()
    recent = await listed(client, DS_HEADERS, start_time=list_time(now - 60))
    assert [row["task_id"] for row in recent["data"]] == [second]
    early = await listed(client, DS_HEADERS, end_time=list_time(now - 60))
    assert [row["task_id"] for row in early["data"]] == [first]
    page_two = await listed(client, DS_HEADERS, page_size=1, page_no=2)
    assert [row["task_id"] for row in page_two["data"]] == [first]
    assert page_two["total_page"] == 2
    sim.clock.advance(sim.config.task_ttl_s - 60)
    assert (await listed(client, DS_HEADERS))["total"] == 1  # kept 24 h (§1.9)


@pytest.mark.parametrize(
    "query",
    [
        {"page_size": "0"},
        {"page_size": "101"},
        {"page_no": "x"},
        {"start_time": "2025-04-18"},
        {"status": "DONE"},
    ],
)
async def test_a_bad_task_list_query_is_400(
    client: httpx.AsyncClient, query: dict[str, str]
) -> None:
    response = await client.get("/api/v1/tasks", params=query, headers=DS_HEADERS)
    assert response.status_code == 400 and response.json()["code"] == "InvalidParameter"


async def test_the_task_list_needs_a_key_and_obeys_faults(
    client: httpx.AsyncClient, sim: Sim
) -> None:
    assert (await client.get("/api/v1/tasks")).status_code == 401
    await client.post("/_sim/faults", json={"action": "500", "route": "list", "times": 1})
    failed = await client.get("/api/v1/tasks", headers=DS_HEADERS)
    assert failed.status_code == 500 and failed.json()["request_id"]
    assert (await client.get("/api/v1/tasks", headers=DS_HEADERS)).status_code == 200
    assert sim.stats.count("dashscope", "list") == 3
