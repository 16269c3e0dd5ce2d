"""BigModel: auth, §2.3 validation per model, and PROCESSING -> SUCCESS / FAIL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sim_helpers import BM_CREATE, BM_HEADERS, IMAGE, bm_create, bm_query, finish

from simulator.context import Sim
from simulator.imagegen import data_uri, png

DATA_IMAGE = data_uri(png(640, 480), "image/png")
HAPPY: list[dict[str, Any]] = [
    {
        "model": "cogvideox-2",
        "prompt": "a fox",
        "quality": "quality",
        "size": "1080x1920",
        "fps": 60,
    },
    {"model": "cogvideox-flash", "image_url": DATA_IMAGE, "with_audio": True},
    {
        "model": "viduq1-text",
        "prompt": "a fox",
        "style": "anime",
        "duration": 5,
        "aspect_ratio": "9:16",
        "size": "1920x1080",
        "movement_amplitude": "large",
    },
    {"model": "viduq1-image", "image_url": IMAGE, "duration": 5, "size": "1920x1080"},
    {"model": "vidu2-image", "image_url": IMAGE, "prompt": "p", "duration": 4, "with_audio": True},
    {"model": "viduq1-start-end", "image_url": [IMAGE, IMAGE], "duration": 5},
    {"model": "vidu2-start-end", "image_url": [IMAGE], "size": "480x360"},
    {"model": "vidu2-reference", "image_url": [IMAGE, IMAGE, IMAGE], "aspect_ratio": "1:1"},
]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert set(response.json()) == {"error"} and set(response.json()["error"]) == {
        "code",
        "message",
    }


async def test_missing_auth_is_1001(client: httpx.AsyncClient) -> None:
    response = await client.post(BM_CREATE, json=HAPPY[0])
    assert_error(response, 401, "1001")
    assert_error(await client.get("/api/paas/v4/async-result/1"), 401, "1001")


@pytest.mark.parametrize("key", ["no-dot", "sk-abc", "a.b.c", "invalid.invalid"])
async def test_bad_key_is_1002(client: httpx.AsyncClient, key: str) -> None:
    response = await client.post(
        BM_CREATE, json=HAPPY[0], headers={"Authorization": f"Bearer {key}"}
    )
    assert_error(response, 401, "1002")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"prompt": "x"}, "1213"),
        ({"model": "cogvideox-9", "prompt": "x"}, "1211"),
        ({"model": "cogvideox-2"}, "1213"),  # neither prompt nor image_url
        ({"model": "cogvideox-2", "prompt": ""}, "1214"),
        ({"model": "viduq1-text"}, "1213"),
        ({"model": "viduq1-text", "prompt": "x" * 513}, "1261"),
        ({"model": "cogvideox-2", "prompt": "x", "size": "1280*720"}, "1214"),
        ({"model": "cogvideox-2", "prompt": "x", "size": "1280x720"}, "1214"),
        ({"model": "cogvideox-2", "prompt": "x", "fps": 24}, "1214"),
        ({"model": "cogvideox-2", "prompt": "x", "fps": "30"}, "1214"),
        ({"model": "cogvideox-2", "prompt": "x", "quality": "best"}, "1214"),
        ({"model": "cogvideox-2", "prompt": "x", "with_audio": "yes"}, "1214"),
        ({"model": "cogvideox-2", "image_url": [IMAGE]}, "1214"),  # arrays only for cogvideox-3
        ({"model": "cogvideox-2", "prompt": "x", "user_id": "abc"}, "1214"),
        ({"model": "cogvideox-2", "prompt": "x", "request_id": 42}, "1214"),
        ({"model": "viduq1-text", "prompt": "x", "duration": "5"}, "1214"),
        ({"model": "viduq1-text", "prompt": "x", "duration": 4}, "1214"),
        ({"model": "viduq1-text", "prompt": "x", "size": "1080x1920"}, "1214"),
        ({"model": "viduq1-text", "prompt": "x", "aspect_ratio": "4:3"}, "1214"),
        ({"model": "viduq1-text", "prompt": "x", "style": "noir"}, "1214"),
        ({"model": "viduq1-text", "prompt": "x", "movement_amplitude": "huge"}, "1214"),
        ({"model": "viduq1-image"}, "1213"),
        ({"model": "viduq1-image", "image_url": [IMAGE]}, "1214"),
        ({"model": "viduq1-image", "image_url": "cat.png"}, "1214"),
        ({"model": "vidu2-image", "image_url": IMAGE, "duration": 5}, "1214"),
        ({"model": "vidu2-image", "image_url": IMAGE, "size": "720x480"}, "1214"),
        ({"model": "viduq1-start-end", "image_url": []}, "1214"),
        ({"model": "viduq1-start-end", "image_url": [IMAGE, IMAGE, IMAGE]}, "1214"),
        ({"model": "viduq1-start-end", "image_url": IMAGE}, "1214"),
        ({"model": "vidu2-start-end", "image_url": [IMAGE, IMAGE], "size": "720x480"}, "1214"),
        ({"model": "vidu2-reference", "image_url": [IMAGE] * 4}, "1214"),
        ({"model": "vidu2-reference", "image_url": [IMAGE], "duration": 5}, "1214"),
        ({"model": "vidu2-reference"}, "1213"),
    ],
)
async def test_invalid_bodies(client: httpx.AsyncClient, body: dict[str, Any], code: str) -> None:
    assert_error(await bm_create(client, body), 400, code)


async def test_not_json_is_rejected(client: httpx.AsyncClient) -> None:
    response = await client.post(BM_CREATE, content=b"[", headers=BM_HEADERS)
    assert response.status_code == 400


@pytest.mark.parametrize("body", HAPPY, ids=[b["model"] for b in HAPPY])
async def test_happy_path(client: httpx.AsyncClient, sim: Sim, body: dict[str, Any]) -> None:
    created = await bm_create(client, {**body, "request_id": "req-1", "user_id": "user-42"})
    assert created.status_code == 200, created.text
    task = created.json()
    assert set(task) == {"model", "id", "request_id", "task_status"}
    assert task["model"] == body["model"] and task["request_id"] == "req-1"
    assert task["task_status"] == "PROCESSING" and task["id"].isdigit()

    processing = (await bm_query(client, task["id"])).json()
    assert processing == {
        "model": body["model"],
        "request_id": "req-1",
        "task_status": "PROCESSING",
    }

    finish(sim)
    done = (await bm_query(client, task["id"])).json()
    assert done["task_status"] == "SUCCESS"
    [result] = done["video_result"]
    assert set(result) == {"url", "cover_image_url"}
    video = await client.get(result["url"])
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    cover = await client.get(result["cover_image_url"])
    assert cover.status_code == 200 and cover.content.startswith(b"\x89PNG")


async def test_request_id_is_generated_when_absent(client: httpx.AsyncClient) -> None:
    task = (await bm_create(client, HAPPY[0])).json()
    assert task["request_id"].isdigit() and task["request_id"] != task["id"]


async def test_unknown_id_is_1210(client: httpx.AsyncClient) -> None:
    assert_error(await bm_query(client, "123"), 400, "1210")


async def test_task_expires_after_a_day(client: httpx.AsyncClient, sim: Sim) -> None:
    task = (await bm_create(client, HAPPY[0])).json()
    sim.clock.advance(86_400 + 1)
    assert_error(await bm_query(client, task["id"]), 400, "1210")


async def test_sdk_extras_are_tolerated(client: httpx.AsyncClient) -> None:
    body = {**HAPPY[0], "sensitive_word_check": {"type": "ALL", "status": "DISABLE"}, "duration": 5}
    assert (await bm_create(client, body)).status_code == 200
