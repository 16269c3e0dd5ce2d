"""DashScope refuses what the docs say it refuses, with the documented status and code."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sim_helpers import (
    DS_HEADERS,
    DS_KEY,
    IMAGE,
    IMAGE2VIDEO,
    VIDEO_GENERATION,
    ds_create,
    t2v_body,
)

from simulator.imagegen import data_uri, png


def i2v_body(model: str = "wanx2.1-i2v-turbo", **parameters: Any) -> dict[str, Any]:
    return {"model": model, "input": {"img_url": IMAGE}, "parameters": parameters}


def kf2v_body(**inputs: Any) -> dict[str, Any]:
    return {
        "model": "wanx2.1-kf2v-plus",
        "input": {"first_frame_url": IMAGE, "last_frame_url": IMAGE, **inputs},
    }


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message", "request_id"}
    assert body["code"] == code
    return body


async def test_missing_key_is_401_no_api_key(client: httpx.AsyncClient) -> None:
    response = await ds_create(client, t2v_body(), headers={"X-DashScope-Async": "enable"})
    assert assert_error(response, 401, "InvalidApiKey")["message"] == "No API-key provided."


@pytest.mark.parametrize("key", ["sk-invalid", "not-an-sk-key", ""])
async def test_bad_key_is_401_invalid_api_key(client: httpx.AsyncClient, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}", "X-DashScope-Async": "enable"}
    response = await ds_create(client, t2v_body(), headers=headers)
    assert assert_error(response, 401, "InvalidApiKey")["message"] == "Invalid API-key provided."


async def test_query_and_cancel_need_a_key(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/api/v1/tasks/x"), 401, "InvalidApiKey")
    assert_error(await client.post("/api/v1/tasks/x/cancel"), 401, "InvalidApiKey")


@pytest.mark.parametrize("value", [None, "disable"])
async def test_create_without_async_header_is_403(
    client: httpx.AsyncClient, value: str | None
) -> None:
    headers = {"Authorization": DS_HEADERS["Authorization"]}
    if value is not None:
        headers["X-DashScope-Async"] = value
    body = assert_error(await ds_create(client, t2v_body(), headers=headers), 403, "AccessDenied")
    assert body["message"] == "current user api does not support synchronous calls"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (VIDEO_GENERATION, kf2v_body()),
        (IMAGE2VIDEO, t2v_body()),
        (IMAGE2VIDEO, i2v_body()),
    ],
)
async def test_model_on_the_wrong_path_is_url_error(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await ds_create(client, body, path)
    assert (
        assert_error(response, 400, "InvalidParameter")["message"] == "url error, please check url!"
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"input": {"prompt": "x"}}, "BadRequest.EmptyModel"),
        ({"model": "", "input": {"prompt": "x"}}, "BadRequest.EmptyModel"),
        ({"model": "wanx2.1-t2v-turbo"}, "BadRequest.EmptyInput"),
        ({"model": "wanx2.1-t2v-turbo", "input": {}}, "BadRequest.EmptyInput"),
        ({"model": "wanx9-t2v", "input": {"prompt": "x"}}, "InvalidParameter"),
        ({"model": "wanx2.1-t2v-turbo", "input": {"prompt": ""}}, "InvalidParameter"),
        ({"model": "wanx2.1-t2v-turbo", "input": "a cat"}, "InvalidParameter"),
        (
            {"model": "wanx2.1-t2v-turbo", "prompt": "flat body", "input": {}},
            "BadRequest.EmptyInput",
        ),
    ],
)
async def test_missing_or_malformed_essentials(
    client: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    assert_error(await ds_create(client, body), 400, code)


async def test_not_json_is_invalid_parameter(client: httpx.AsyncClient) -> None:
    response = await client.post(VIDEO_GENERATION, content=b"{nope", headers=DS_HEADERS)
    assert_error(response, 400, "InvalidParameter")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (VIDEO_GENERATION, {"model": "wanx2.1-i2v-plus", "input": {"prompt": "x"}}),
        (IMAGE2VIDEO, {"model": "wanx2.1-kf2v-plus", "input": {"last_frame_url": IMAGE}}),
    ],
)
async def test_required_images(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    assert_error(await ds_create(client, body, path), 400, "InvalidParameter")


@pytest.mark.parametrize(
    "body",
    [
        t2v_body(size="1280x720"),  # `x`, not `*`
        t2v_body(size="720P"),
        {**t2v_body(size="832*480"), "model": "wanx2.1-t2v-plus"},  # plus: 720P sizes only
        t2v_body(resolution="720P"),  # t2v takes size, never resolution
        t2v_body(duration=4),
        t2v_body(duration="5"),
        t2v_body(seed=-1),
        t2v_body(seed=2_147_483_648),
        t2v_body(seed=1.5),
        t2v_body(prompt_extend="true"),
        t2v_body(watermark=1),
        i2v_body(size="1280*720"),  # i2v takes resolution, never size
        i2v_body(resolution="1080P"),
        i2v_body("wanx2.1-i2v-plus", resolution="480P"),
        i2v_body("wanx2.1-i2v-plus", duration=3),
        i2v_body(duration=6),
    ],
)
async def test_parameter_values_outside_the_docs(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert_error(await ds_create(client, body), 400, "InvalidParameter")


@pytest.mark.parametrize(
    "body",
    [
        kf2v_body(function="image_reference"),
        {**kf2v_body(), "parameters": {"obj_or_bg": ["obj", "bg"]}},
        {**kf2v_body(), "parameters": {"resolution": "480P"}},
        {**kf2v_body(), "parameters": {"duration": 4}},
    ],
)
async def test_kf2v_refuses_vace_fields_and_other_values(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    assert_error(await ds_create(client, body, IMAGE2VIDEO), 400, "InvalidParameter")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        # The official SDK always sends these; unknown keys are tolerated.
        (
            VIDEO_GENERATION,
            {
                **t2v_body(),
                "input": {"prompt": "x", "extend_prompt": True, "function": "video-synthesis"},
            },
        ),
        (IMAGE2VIDEO, kf2v_body(function="video-synthesis", extend_prompt=True)),
        (
            VIDEO_GENERATION,
            t2v_body(size="624*624", seed=0, watermark=True, prompt_extend=False, future_knob=1),
        ),
        (VIDEO_GENERATION, i2v_body(resolution="480P", duration=3)),
        (
            VIDEO_GENERATION,
            {
                "model": "wanx2.1-i2v-plus",
                "input": {"img_url": data_uri(png(640, 480), "image/png")},
            },
        ),
        (
            IMAGE2VIDEO,
            {
                "model": "wanx2.1-kf2v-plus",
                "input": {"first_frame_url": IMAGE, "template": "hanfu-1"},
            },
        ),
    ],
)
async def test_documented_variants_are_accepted(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await ds_create(client, body, path)
    assert response.status_code == 200, response.text


async def test_oss_url_needs_the_resolve_header(client: httpx.AsyncClient) -> None:
    upload = {"api_key": DS_KEY, "model": "wanx2.1-i2v-turbo", "file": "cat.png"}
    url = (await client.post("/_sim/uploads", json=upload)).json()["url"]
    body = {"model": "wanx2.1-i2v-turbo", "input": {"img_url": url}}
    assert_error(await ds_create(client, body), 400, "InvalidParameter.DataInspection")
    headers = {**DS_HEADERS, "X-DashScope-OssResourceResolve": "enable"}
    assert (await ds_create(client, body, headers=headers)).status_code == 200


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("ftp://example.com/a.png", "InvalidURL"),
        ("cat.png", "InvalidURL"),
        ("data:text/plain,hello", "InvalidParameter"),
    ],
)
async def test_unusable_image_urls(client: httpx.AsyncClient, url: str, code: str) -> None:
    body = {"model": "wanx2.1-i2v-turbo", "input": {"img_url": url}}
    assert_error(await ds_create(client, body), 400, code)
