"""Each fault action, set through the control API, does what it says for both vendors."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sim_helpers import (
    DS_HEADERS,
    IMAGE,
    bm_create,
    bm_query,
    ds_create,
    ds_query,
    ds_task,
    finish,
    t2v_body,
)

from simulator.context import Sim

BM_BODY = {"model": "viduq1-image", "image_url": IMAGE, "prompt": "a bird"}


async def add_fault(client: httpx.AsyncClient, **rule: Any) -> dict[str, Any]:
    response = await client.post("/_sim/faults", json=rule)
    assert response.status_code == 201, response.text
    return response.json()["rules"][0]


async def ds_video_url(client: httpx.AsyncClient, sim: Sim, prompt: str = "x") -> str:
    task_id = await ds_task(client, t2v_body(prompt))
    finish(sim)
    return str((await ds_query(client, task_id))["output"]["video_url"])


@pytest.mark.parametrize(
    ("action", "status", "ds_code", "bm_code"),
    [
        ("429", 429, "Throttling.RateQuota", "1302"),
        ("500", 500, "InternalError", "500"),
        ("503", 503, "ServiceUnavailable", "1305"),
        ("504", 504, "GatewayTimeout", "500"),
        ("arrearage", 400, "Arrearage", None),
        ("moderation", 400, "DataInspectionFailed", "1301"),
    ],
)
async def test_submit_errors_are_vendor_shaped(
    client: httpx.AsyncClient, sim: Sim, action: str, status: int, ds_code: str, bm_code: str | None
) -> None:
    await add_fault(client, action=action, times=2)
    ds = await ds_create(client, t2v_body())
    assert ds.status_code == status and ds.json()["code"] == ds_code
    assert set(ds.json()) == {"code", "message", "request_id"}
    bm = await bm_create(client, BM_BODY)
    if action == "arrearage":  # BigModel answers arrears with 429 1113
        assert bm.status_code == 429 and bm.json()["error"]["code"] == "1113"
    else:
        assert bm.status_code == status and bm.json()["error"]["code"] == bm_code
    assert len(sim.tasks) == 0  # nothing was created, nothing billed
    assert (await ds_create(client, t2v_body())).status_code == 200  # the rule is spent


async def test_429_with_retry_after_and_own_code(client: httpx.AsyncClient) -> None:
    await add_fault(
        client, action="429", vendor="bigmodel", retry_after=2, code="1305", should_retry=True
    )
    response = await bm_create(client, BM_BODY)
    assert response.status_code == 429 and response.json()["error"]["code"] == "1305"
    assert response.headers["retry-after"] == "2" and response.headers["x-should-retry"] == "true"
    no_header = await client.post("/_sim/faults", json={"action": "429", "vendor": "dashscope"})
    assert no_header.status_code == 201
    assert "retry-after" not in (await ds_create(client, t2v_body())).headers


async def test_query_faults_and_filters(client: httpx.AsyncClient, sim: Sim) -> None:
    task_id = await ds_task(client, t2v_body("match me"))
    other = await ds_task(client, t2v_body("other"))
    await add_fault(client, action="503", route="query", prompt_contains="match", times=1)
    first = await client.get(f"/api/v1/tasks/{other}", headers=DS_HEADERS)
    assert first.status_code == 200
    hit = await client.get(f"/api/v1/tasks/{task_id}", headers=DS_HEADERS)
    assert hit.status_code == 503
    assert (await client.get(f"/api/v1/tasks/{task_id}", headers=DS_HEADERS)).status_code == 200


async def test_model_filter(client: httpx.AsyncClient) -> None:
    await add_fault(client, action="500", model="wanx2.1-t2v-plus")
    assert (await ds_create(client, t2v_body())).status_code == 200
    plus = {**t2v_body(), "model": "wanx2.1-t2v-plus"}
    assert (await ds_create(client, plus)).status_code == 500


async def test_stage_after_creates_the_task_then_fails(client: httpx.AsyncClient, sim: Sim) -> None:
    await add_fault(client, action="500", stage="after", times=1)
    assert (await ds_create(client, t2v_body("lost answer"))).status_code == 500
    generations = (await client.get("/_sim/generations", params={"prompt": "lost answer"})).json()
    assert generations["count"] == 1  # the vendor took (and bills) it


@pytest.mark.parametrize(
    ("code", "expected"),
    [(None, "InternalError.Algo"), ("DataInspectionFailed", "DataInspectionFailed")],
)
async def test_fail_task_dashscope(
    client: httpx.AsyncClient, sim: Sim, code: str | None, expected: str
) -> None:
    await add_fault(client, action="fail_task", code=code, times=1)
    task_id = await ds_task(client, t2v_body())
    sim.clock.advance(1.01)
    assert (await ds_query(client, task_id))["output"]["task_status"] == "RUNNING"
    finish(sim)
    body = await ds_query(client, task_id)
    assert body["output"]["task_status"] == "FAILED" and body["output"]["code"] == expected
    assert body["output"]["message"] and "usage" not in body and "end_time" in body["output"]


async def test_fail_task_bigmodel(client: httpx.AsyncClient, sim: Sim) -> None:
    await add_fault(client, action="fail_task", vendor="bigmodel", times=1)
    await add_fault(client, action="fail_task", vendor="bigmodel", code="1301", times=1)
    plain = (await bm_create(client, BM_BODY)).json()["id"]
    with_error = (await bm_create(client, BM_BODY)).json()["id"]
    finish(sim)
    failed_plain = (await bm_query(client, plain)).json()
    assert set(failed_plain) == {"model", "request_id", "task_status"}  # no error object
    assert failed_plain["task_status"] == "FAIL"
    failed = (await bm_query(client, with_error)).json()
    assert failed["task_status"] == "FAIL" and failed["error"]["code"] == "1301"
    assert "video_result" not in failed


async def test_unknown(client: httpx.AsyncClient, sim: Sim) -> None:
    await add_fault(client, action="unknown", times=2)
    task_id = await ds_task(client, t2v_body())
    assert (await ds_query(client, task_id))["output"]["task_status"] == "UNKNOWN"
    bm_id = (await bm_create(client, BM_BODY)).json()["id"]
    assert (await bm_query(client, bm_id)).json()["error"]["code"] == "1210"


async def test_expired_url_marked_at_submit(client: httpx.AsyncClient, sim: Sim) -> None:
    await add_fault(client, action="expired_url", times=1)
    url = await ds_video_url(client, sim)
    response = await client.get(url)
    assert response.status_code == 403 and b"<Code>AccessDenied</Code>" in response.content


async def test_expired_url_at_download(client: httpx.AsyncClient, sim: Sim) -> None:
    url = await ds_video_url(client, sim)
    await add_fault(client, action="expired_url", route="download", times=1)
    assert (await client.get(url)).status_code == 403
    assert (await client.get(url)).status_code == 200


async def test_not_mp4(client: httpx.AsyncClient, sim: Sim) -> None:
    url = await ds_video_url(client, sim)
    await add_fault(client, action="not_mp4", times=1)
    response = await client.get(url)
    assert response.status_code == 200 and response.content[4:8] != b"ftyp"
    assert response.headers["content-type"].startswith("text/html")


async def test_download_5xx_is_oss_xml(client: httpx.AsyncClient, sim: Sim) -> None:
    url = await ds_video_url(client, sim)
    await add_fault(client, action="503", route="download", times=1)
    response = await client.get(url)
    assert response.status_code == 503 and response.headers["content-type"] == "application/xml"


async def test_slow_download_and_delay(client: httpx.AsyncClient, sim: Sim) -> None:
    url = await ds_video_url(client, sim)
    await add_fault(client, action="slow_download", seconds=0.2, times=1)
    started = time.monotonic()
    response = await client.get(url)
    assert time.monotonic() - started >= 0.18
    assert response.content[4:8] == b"ftyp"
    await add_fault(client, action="delay", route="query", seconds=0.2, times=1)
    started = time.monotonic()
    await ds_query(client, "any")
    assert time.monotonic() - started >= 0.18


async def test_delay_at_submit_still_creates_the_task(client: httpx.AsyncClient) -> None:
    await add_fault(client, action="delay", seconds=0.05, times=1)
    assert (await ds_create(client, t2v_body("slow"))).status_code == 200
    assert (await client.get("/_sim/generations", params={"prompt": "slow"})).json()["count"] == 1


async def test_reset_in_process_raises_connection_reset(client: httpx.AsyncClient) -> None:
    await add_fault(client, action="reset", times=1)
    with pytest.raises(ConnectionResetError):
        await ds_create(client, t2v_body())


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "explode"},
        {"action": "truncate", "route": "submit"},
        {"action": "moderation", "route": "query"},
        {"action": "delay"},  # needs seconds
        {"action": "429", "times": 0},
        {"action": "429", "vendor": "openai"},
        {"action": "429", "colour": "red"},
        {"action": "429", "stage": "during"},
        {"action": "429", "retry_after": "2"},
        {"action": "slow_download", "seconds": -1},
    ],
)
async def test_bad_rules_are_refused(client: httpx.AsyncClient, rule: dict[str, Any]) -> None:
    response = await client.post("/_sim/faults", json=rule)
    assert response.status_code == 400 and response.json()["error"]


async def test_rules_can_be_listed_and_removed(client: httpx.AsyncClient) -> None:
    rule = await add_fault(client, action="500")
    assert [r["id"] for r in (await client.get("/_sim/faults")).json()["rules"]] == [rule["id"]]
    assert (await client.delete(f"/_sim/faults/{rule['id']}")).status_code == 200
    assert (await client.get("/_sim/faults")).json()["rules"] == []
    assert (await client.delete(f"/_sim/faults/{rule['id']}")).status_code == 404
    await client.post("/_sim/faults", json=[{"action": "500"}, {"action": "503"}])
    await client.delete("/_sim/faults")
    assert (await client.get("/_sim/faults")).json()["rules"] == []
