"""Input images are fetched and checked as the vendors do (§1.4.2, §1.4.3, §1.10, §2.3.1,
§2.3.3-§2.3.5): reachability, format, file size, pixel bounds, aspect ratio, alpha, similar
start and end frames; templates per model; `oss://` files bound to account, model and 48 h."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sim_helpers import DS_HEADERS, DS_KEY, IMAGE2VIDEO, bm_create, ds_create

from simulator.context import Sim
from simulator.imagegen import data_uri, jpeg, png, webp

OWN = "http://sim.test/media"  # the simulator's own file server, as the client reaches it
OSS_HEADERS = {**DS_HEADERS, "X-DashScope-OssResourceResolve": "enable"}


def i2v(url: str, model: str = "wanx2.1-i2v-turbo", **inputs: Any) -> dict[str, Any]:
    return {"model": model, "input": {"img_url": url, **inputs}}


def ds_error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body.get("code", ""), body.get("message", "")


def bm_error(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json().get("error", {})
    return response.status_code, error.get("code", ""), error.get("message", "")


async def test_the_file_server(client: httpx.AsyncClient) -> None:
    served = await client.get("/media/cat.png")
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content.startswith(b"\x89PNG")
    assert (await client.get("/media/portrait.jpg")).headers["content-type"] == "image/jpeg"
    for missing in ("/media/nope.png", "/media/landscape_720p_5s.mp4", "/media/..%2Fapp.py"):
        assert (await client.get(missing)).status_code == 404


# DashScope ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"{OWN}/cat.png",
        f"{OWN}/portrait.jpg",
        f"{OWN}/square.webp",
        f"{OWN}/frame.bmp",
        "https://example.com/cat.png",  # an `image_hosts` alias of the file server
        "https://example.com/any/path/cat-end.png",
        data_uri(jpeg(240, 8000), "image/jpeg"),
    ],
)
async def test_dashscope_takes_images_within_its_limits(
    client: httpx.AsyncClient, url: str
) -> None:
    response = await ds_create(client, i2v(url))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("url", "code", "words"),
    [
        ("https://elsewhere.test/cat.png", "InvalidParameter.DataInspection", "timed out"),
        ("https://example.com/dog.png", "InvalidParameter", "HTTP 404"),
        (f"{OWN}/tiny.png", "InvalidParameter", "200x150"),
        (f"{OWN}/alpha.png", "InvalidParameter.DataInspection", "alpha"),
        (data_uri(png(8001, 240), "image/png"), "InvalidParameter", "[240, 8000]"),
        ("data:image/png;base64,R0lGODlhAQABAAAAACw=", "InvalidParameter.DataInspection", "format"),
    ],
)
async def test_dashscope_refuses_images_it_cannot_use(
    client: httpx.AsyncClient, url: str, code: str, words: str
) -> None:
    status, got, message = ds_error(await ds_create(client, i2v(url)))
    assert (status, got) == (400, code)
    assert words in message


async def test_a_download_timeout_is_the_transient_data_inspection_error(
    client: httpx.AsyncClient,
) -> None:
    _, code, message = ds_error(await ds_create(client, i2v("https://elsewhere.test/cat.png")))
    assert code == "InvalidParameter.DataInspection"
    assert message.startswith(
        "Download the media resource timed out during the data inspection process."
    )


async def test_image_hosts_is_configurable(client: httpx.AsyncClient, sim: Sim) -> None:
    sim.config = sim.config.updated({"image_hosts": []})
    assert (await ds_create(client, i2v("https://example.com/cat.png"))).status_code == 400
    sim.config = sim.config.updated({"image_hosts": ["images.test"]})
    assert (await ds_create(client, i2v("https://images.test/cat.png"))).status_code == 200


async def test_kf2v_checks_both_frames(client: httpx.AsyncClient) -> None:
    body = {
        "model": "wanx2.1-kf2v-plus",
        "input": {"first_frame_url": f"{OWN}/cat.png", "last_frame_url": f"{OWN}/tiny.png"},
    }
    status, code, message = ds_error(await ds_create(client, body, IMAGE2VIDEO))
    assert (status, code) == (400, "InvalidParameter") and "input.last_frame_url" in message


@pytest.mark.parametrize(
    ("model", "template", "accepted"),
    [
        ("wanx2.1-i2v-turbo", "flying", True),
        ("wanx2.1-i2v-plus", "dance2", True),
        ("wanx2.1-i2v-turbo", "hanfu-1", False),  # a kf2v template
        ("wanx2.1-i2v-plus", "no-such-effect", False),
    ],
)
async def test_templates_are_the_models(
    client: httpx.AsyncClient, model: str, template: str, accepted: bool
) -> None:
    response = await ds_create(client, i2v(f"{OWN}/cat.png", model, template=template))
    assert (response.status_code == 200) is accepted, response.text


async def test_kf2v_takes_its_templates_with_or_without_a_last_frame(
    client: httpx.AsyncClient,
) -> None:
    first = f"{OWN}/cat.png"
    for inputs in (
        {"first_frame_url": first, "template": "hanfu-1"},
        {"first_frame_url": first, "last_frame_url": f"{OWN}/cat-end.png", "template": "mech1"},
    ):
        body = {"model": "wanx2.1-kf2v-plus", "input": inputs}
        assert (await ds_create(client, body, IMAGE2VIDEO)).status_code == 200
    body = {"model": "wanx2.1-kf2v-plus", "input": {"first_frame_url": first, "template": "flying"}}
    assert (await ds_create(client, body, IMAGE2VIDEO)).status_code == 400


# oss:// ---------------------------------------------------------------------------------------


async def upload(client: httpx.AsyncClient, **fields: Any) -> str:
    body = {"api_key": DS_KEY, "model": "wanx2.1-i2v-turbo", "file": "cat.png", **fields}
    response = await client.post("/_sim/uploads", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["url"])


async def test_an_uploaded_file_serves_its_account_and_model(
    client: httpx.AsyncClient, sim: Sim
) -> None:
    url = await upload(client)
    assert url.startswith("oss://dashscope-instant/")
    assert (await ds_create(client, i2v(url), headers=OSS_HEADERS)).status_code == 200
    # §1.10: bound to the model named at upload ...
    other_model = await ds_create(client, i2v(url, "wanx2.1-i2v-plus"), headers=OSS_HEADERS)
    assert ds_error(other_model)[:2] == (400, "invalid_parameter_error")
    assert "uploaded for wanx2.1-i2v-turbo" in ds_error(other_model)[2]
    # ... and to the account: a key of another account cannot use it ...
    stranger = {**OSS_HEADERS, "Authorization": "Bearer sk-stranger"}
    refused = await ds_create(client, i2v(url), headers=stranger)
    assert "another account" in ds_error(refused)[2]
    # ... a key of the same account can ...
    sim.config = sim.config.updated({"accounts": {"acct": [DS_KEY, "sk-sibling"]}})
    sibling = {**OSS_HEADERS, "Authorization": "Bearer sk-sibling"}
    url = await upload(client)
    assert (await ds_create(client, i2v(url), headers=sibling)).status_code == 200
    # ... for 48 h.
    sim.clock.advance(48 * 3600 + 1)
    expired = await ds_create(client, i2v(url), headers=OSS_HEADERS)
    assert "older than 48 h" in ds_error(expired)[2]


async def test_unknown_and_bad_uploads(client: httpx.AsyncClient) -> None:
    unknown = i2v("oss://dashscope-instant/nobody/cat.png")
    assert ds_error(await ds_create(client, unknown, headers=OSS_HEADERS))[:2] == (
        400,
        "invalid_parameter_error",
    )
    old = await upload(client, age_s=49 * 3600)
    assert "older than 48 h" in ds_error(await ds_create(client, i2v(old), headers=OSS_HEADERS))[2]
    alpha = await upload(client, file="alpha.png")
    refused = await ds_create(client, i2v(alpha), headers=OSS_HEADERS)
    assert ds_error(refused)[1] == "InvalidParameter.DataInspection"
    for bad in ({"file": "cat.png"}, {"model": "m", "file": "nope.png"}, {"model": "m"}):
        response = await client.post("/_sim/uploads", json={"api_key": DS_KEY, **bad})
        assert response.status_code == 400
    listed = (await client.get("/_sim/uploads")).json()["uploads"]
    assert [u["model"] for u in listed] == ["wanx2.1-i2v-turbo"] * 2


# BigModel -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"model": "cogvideox-flash", "image_url": f"{OWN}/portrait.jpg"},
        {"model": "viduq1-image", "image_url": f"{OWN}/square.webp"},
        {"model": "vidu2-image", "image_url": "https://example.com/cat.png", "with_audio": True},
        {"model": "viduq1-start-end", "image_url": [f"{OWN}/cat.png", f"{OWN}/cat-end.png"]},
        {
            "model": "vidu2-reference",
            "image_url": [f"{OWN}/cat.png", data_uri(webp(128, 512), "image/webp")],
        },
    ],
)
async def test_bigmodel_takes_images_within_its_limits(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await bm_create(client, body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"model": "cogvideox-2", "image_url": f"{OWN}/square.webp"}, "PNG/JPEG"),
        ({"model": "viduq1-image", "image_url": f"{OWN}/frame.bmp"}, "PNG/JPEG/WEBP"),
        ({"model": "vidu2-image", "image_url": f"{OWN}/banner.png"}, "aspect ratio"),
        ({"model": "vidu2-reference", "image_url": [f"{OWN}/icon.png"]}, ">= 128"),
        ({"model": "vidu2-image", "image_url": "https://elsewhere.test/a.png"}, "timed out"),
        ({"model": "vidu2-image", "image_url": f"{OWN}/nope.png"}, "HTTP 404"),
        (
            {"model": "vidu2-start-end", "image_url": [f"{OWN}/cat.png", f"{OWN}/large.png"]},
            "similar resolutions",
        ),
        (
            {"model": "viduq1-image", "image_url": f"{OWN}/cat.png", "with_audio": True},
            "4-second output",
        ),
    ],
)
async def test_bigmodel_refuses_images_it_cannot_use(
    client: httpx.AsyncClient, body: dict[str, Any], words: str
) -> None:
    status, code, message = bm_error(await bm_create(client, body))
    assert (status, code) == (400, "1214")
    assert words in message
