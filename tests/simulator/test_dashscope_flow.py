"""DashScope tasks go PENDING -> RUNNING -> SUCCEEDED in the §1.6 shapes, and can be cancelled."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sim_helpers import (
    DS_HEADERS,
    IMAGE,
    IMAGE2VIDEO,
    QUEUED_S,
    RUNNING_S,
    VIDEO_GENERATION,
    ds_create,
    ds_query,
    ds_task,
    finish,
    t2v_body,
)

from simulator.context import Sim

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
SHAPES = [
    (VIDEO_GENERATION, t2v_body(size="832*480"), "832*480", (832, 480)),
    (
        VIDEO_GENERATION,
        {"model": "wanx2.1-i2v-turbo", "input": {"prompt": "waves", "img_url": IMAGE}},
        "standard",
        (1280, 720),
    ),
    (
        IMAGE2VIDEO,
        {
            "model": "wanx2.1-kf2v-plus",
            "input": {"prompt": "bloom", "first_frame_url": IMAGE, "last_frame_url": IMAGE},
        },
        "standard",
        (1280, 720),
    ),
]


async def test_create_answers_pending_with_uuids(client: httpx.AsyncClient) -> None:
    response = await ds_create(client, t2v_body())
    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"output", "request_id"}
    assert body["output"]["task_status"] == "PENDING"
    assert UUID.match(body["output"]["task_id"]) and UUID.match(body["request_id"])


@pytest.mark.parametrize(("path", "body", "ratio", "size"), SHAPES)
async def test_happy_path(
    client: httpx.AsyncClient,
    sim: Sim,
    path: str,
    body: dict[str, Any],
    ratio: str,
    size: tuple[int, int],
) -> None:
    task_id = await ds_task(client, body, path)

    pending = await ds_query(client, task_id)
    assert pending["output"]["task_status"] == "PENDING"
    assert set(pending["output"]) == {"task_id", "task_status", "submit_time"}

    sim.clock.advance(QUEUED_S + 0.01)
    running = await ds_query(client, task_id)
    assert running["output"]["task_status"] == "RUNNING"
    assert set(running["output"]) == {"task_id", "task_status", "submit_time", "scheduled_time"}

    sim.clock.advance(RUNNING_S)
    done = await ds_query(client, task_id)
    output = done["output"]
    assert output["task_status"] == "SUCCEEDED"
    for name in ("submit_time", "scheduled_time", "end_time"):
        assert TIME.match(output[name]), output[name]
    assert output["orig_prompt"] == body["input"]["prompt"]
    assert output["actual_prompt"]  # prompt_extend defaults to true
    assert done["usage"] == {"video_duration": 5, "video_ratio": ratio, "video_count": 1}
    assert output["video_url"].startswith(f"http://sim.test/results/{task_id}.mp4?Expires=")

    video = await client.get(output["video_url"])
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/mp4"
    assert video.content[4:8] == b"ftyp"
    assert int(video.headers["content-length"]) == len(video.content)
    task = sim.tasks.find(task_id)
    assert task is not None and (task.output.width, task.output.height) == size


async def test_result_file_matches_the_size(client: httpx.AsyncClient, sim: Sim) -> None:
    portrait = await ds_task(client, t2v_body(size="720*1280"))
    landscape = await ds_task(client, t2v_body(size="832*480"))
    finish(sim)
    sizes = []
    for task_id in (portrait, landscape):
        url = (await ds_query(client, task_id))["output"]["video_url"]
        sizes.append(len((await client.get(url)).content))
    assert sizes == [85266, 56005]  # portrait_720p_4s.mp4, landscape_480p_5s.mp4


async def test_no_actual_prompt_without_prompt_extend(client: httpx.AsyncClient, sim: Sim) -> None:
    task_id = await ds_task(client, t2v_body(prompt_extend=False))
    finish(sim)
    output = (await ds_query(client, task_id))["output"]
    assert output["orig_prompt"] == "a cat runs under the moon"
    assert "actual_prompt" not in output


async def test_i2v_turbo_duration_is_reported(client: httpx.AsyncClient, sim: Sim) -> None:
    body = {
        "model": "wanx2.1-i2v-turbo",
        "input": {"img_url": IMAGE},
        "parameters": {"duration": 3},
    }
    task_id = await ds_task(client, body)
    finish(sim)
    done = await ds_query(client, task_id)
    assert done["usage"]["video_duration"] == 3
    assert "orig_prompt" not in done["output"]  # no prompt was sent


async def test_unknown_task_is_unknown(client: httpx.AsyncClient) -> None:
    body = await ds_query(client, "no-such-task")
    assert body["output"] == {"task_id": "no-such-task", "task_status": "UNKNOWN"}


async def test_task_is_unknown_after_24_hours(client: httpx.AsyncClient, sim: Sim) -> None:
    task_id = await ds_task(client, t2v_body())
    sim.clock.advance(86_400 + 1)
    assert (await ds_query(client, task_id))["output"]["task_status"] == "UNKNOWN"


async def test_cancel_pending_task(client: httpx.AsyncClient, sim: Sim) -> None:
    task_id = await ds_task(client, t2v_body())
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=DS_HEADERS)
    assert response.status_code == 200 and set(response.json()) == {"request_id"}
    finish(sim)
    body = await ds_query(client, task_id)
    assert body["output"] == {"task_id": task_id, "task_status": "CANCELED"}
    assert "usage" not in body


@pytest.mark.parametrize("advance", [QUEUED_S + 0.01, QUEUED_S + RUNNING_S + 0.01])
async def test_cancel_after_pending_is_unsupported(
    client: httpx.AsyncClient, sim: Sim, advance: float
) -> None:
    task_id = await ds_task(client, t2v_body())
    sim.clock.advance(advance)
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=DS_HEADERS)
    assert response.status_code == 400
    assert response.json()["code"] == "UnsupportedOperation"


async def test_cancel_unknown_task_is_unsupported(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/tasks/nope/cancel", headers=DS_HEADERS)
    assert response.status_code == 400 and response.json()["code"] == "UnsupportedOperation"


async def test_a_task_of_one_vendor_is_unknown_to_the_other(client: httpx.AsyncClient) -> None:
    task_id = await ds_task(client, t2v_body())
    response = await client.get(
        f"/api/paas/v4/async-result/{task_id}", headers={"Authorization": "Bearer a.b"}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "1210"


async def test_invalid_values_as_failed_tasks(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"invalid_params_as": "failed_task"})
    task_id = await ds_task(client, t2v_body(size="1280x720"))
    finish(sim)
    body = await ds_query(client, task_id)
    assert body["output"]["task_status"] == "FAILED"
    assert body["output"]["code"] == "InvalidParameter"
    assert "size" in body["output"]["message"]
    assert "usage" not in body and "video_url" not in body["output"]
