"""Socket-level faults against a real uvicorn: what an httpx client sees over the wire."""

from __future__ import annotations

import httpx
import pytest
from sim_helpers import BM_HEADERS, DS_HEADERS, IMAGE, VIDEO_GENERATION, t2v_body

BROKEN = (httpx.ReadError, httpx.RemoteProtocolError)


async def finished_video_url(remote: httpx.AsyncClient) -> str:
    created = await remote.post(VIDEO_GENERATION, json=t2v_body(), headers=DS_HEADERS)
    task_id = created.json()["output"]["task_id"]
    await remote.post("/_sim/clock", json={"advance_s": 10})
    output = (await remote.get(f"/api/v1/tasks/{task_id}", headers=DS_HEADERS)).json()["output"]
    return str(output["video_url"])


@pytest.mark.parametrize("stage", ["before", "after"])
async def test_reset_at_submit(remote: httpx.AsyncClient, stage: str) -> None:
    await remote.post("/_sim/faults", json={"action": "reset", "stage": stage, "times": 1})
    with pytest.raises(BROKEN):
        await remote.post(VIDEO_GENERATION, json=t2v_body("reset"), headers=DS_HEADERS)
    count = (await remote.get("/_sim/generations", params={"prompt": "reset"})).json()["count"]
    assert count == (1 if stage == "after" else 0)
    stats = (await remote.get("/_sim/stats")).json()
    assert stats["requests"]["dashscope"]["submit"]["by_status"] == {"reset": 1}


async def test_reset_at_query(remote: httpx.AsyncClient) -> None:
    body = {"model": "viduq1-image", "image_url": IMAGE}
    task = (
        await remote.post("/api/paas/v4/videos/generations", json=body, headers=BM_HEADERS)
    ).json()
    await remote.post("/_sim/faults", json={"action": "reset", "route": "query", "times": 1})
    with pytest.raises(BROKEN):
        await remote.get(f"/api/paas/v4/async-result/{task['id']}", headers=BM_HEADERS)
    retry = await remote.get(f"/api/paas/v4/async-result/{task['id']}", headers=BM_HEADERS)
    assert retry.status_code == 200


async def test_reset_at_download(remote: httpx.AsyncClient) -> None:
    url = await finished_video_url(remote)
    await remote.post("/_sim/faults", json={"action": "reset", "route": "download", "times": 1})
    with pytest.raises(BROKEN):
        await remote.get(url)
    assert (await remote.get(url)).content[4:8] == b"ftyp"


async def test_truncated_download(remote: httpx.AsyncClient) -> None:
    url = await finished_video_url(remote)
    await remote.post("/_sim/faults", json={"action": "truncate", "times": 1})
    with pytest.raises(httpx.RemoteProtocolError, match=r"complete message body"):
        await remote.get(url)
    whole = await remote.get(url)
    assert len(whole.content) == int(whole.headers["content-length"])


async def test_delay_trips_a_client_timeout(remote: httpx.AsyncClient) -> None:
    await remote.post(
        "/_sim/faults", json={"action": "delay", "route": "query", "seconds": 0.5, "times": 1}
    )
    with pytest.raises(httpx.ReadTimeout):
        await remote.get("/api/v1/tasks/x", headers=DS_HEADERS, timeout=0.1)


async def test_result_urls_use_the_servers_own_host(
    remote: httpx.AsyncClient, server_url: str
) -> None:
    assert (await finished_video_url(remote)).startswith(f"{server_url}/results/")
