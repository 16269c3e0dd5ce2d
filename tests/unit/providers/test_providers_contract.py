"""One contract suite for the 13 models and both providers, against the upstream simulator
served in-process through `httpx.ASGITransport` (no network): a valid request reaches the vendor
exactly as the wire mapping built it and polls to a result; each class of vendor error becomes
the right contract code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from providers import (
    MODELS,
    Provider,
    ProviderError,
    UpstreamState,
    create_providers,
    get_model,
    validate_parameters,
)
from providers.aliyun import wire as dashscope_wire
from providers.zhipuai import wire as bigmodel_wire
from schemas.errors import ErrorCode
from simulator import SimConfig, create_app
from simulator.context import Sim

IMG = "https://example.com/cat.png"
KEYS = {"aliyun": "sk-contract", "zhipuai": "contract.secret"}
ENV = {
    "ALIYUN_API_KEY": KEYS["aliyun"],
    "ZHIPUAI_API_KEY": KEYS["zhipuai"],
    "ALIYUN_BASE_URL": "http://sim.test",
    "ZHIPUAI_BASE_URL": "http://sim.test",
    "ALIYUN_SUBMITS_PER_S": "0",
    "ZHIPUAI_SUBMITS_PER_S": "0",
}
REQUESTS: dict[str, dict[str, Any]] = {
    "wanx2.1-t2v-turbo": {"prompt": "contract", "resolution": "480P", "seed": -1},
    "wanx2.1-t2v-plus": {"prompt": "contract", "size": "832*1088", "duration": "5"},
    "wanx2.1-i2v-turbo": {"prompt": "contract", "img_url": IMG, "duration": 4, "watermark": True},
    "wanx2.1-i2v-plus": {"prompt": "contract", "img_url": "oss://dashscope-instant/a/cat.png"},
    "wanx2.1-kf2v-plus": {"prompt": "contract", "first_frame_url": IMG, "last_frame_url": IMG},
    "cogvideox-2": {"prompt": "contract", "quality": "speed", "fps": 30},
    "cogvideox-flash": {"prompt": "contract", "image_url": IMG, "size": "1080x1920"},
    "viduq1-text": {"prompt": "contract", "aspect_ratio": "1:1"},
    "viduq1-image": {"prompt": "contract", "image_url": IMG},
    "viduq1-start-end": {"prompt": "contract", "image_url": [IMG, IMG]},
    "vidu2-image": {"prompt": "contract", "image_url": IMG, "with_audio": True},
    "vidu2-start-end": {"prompt": "contract", "image_url": [IMG], "size": "480x360"},
    "vidu2-reference": {"prompt": "contract", "image_url": [IMG, IMG, IMG]},
}
WIRES = {"aliyun": dashscope_wire, "zhipuai": bigmodel_wire}
SIM_VENDOR = {"aliyun": "dashscope", "zhipuai": "bigmodel"}


@dataclass
class World:
    sim: Sim
    providers: dict[str, Provider]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    app = create_app(SimConfig.from_dict({"timing": {"queued_s": 1, "running_s": 2}}))
    providers = create_providers(ENV, transport=httpx.ASGITransport(app))
    yield World(app.state.sim, providers)
    for provider in providers.values():
        await provider.aclose()


async def submit(world: World, model: str, request_id: str = "contract-1") -> Any:
    provider = world.providers[get_model(model).provider]
    return await provider.submit(request_id, model, validate_parameters(model, REQUESTS[model]))


def add_fault(world: World, model: str, **rule: Any) -> None:
    world.sim.faults.add({"vendor": SIM_VENDOR[get_model(model).provider], **rule})


def test_every_model_is_in_the_suite() -> None:
    assert set(REQUESTS) == set(MODELS)


@pytest.mark.parametrize("model", list(REQUESTS))
async def test_a_valid_request_polls_to_its_video(world: World, model: str) -> None:
    spec = get_model(model)
    provider = world.providers[spec.provider]
    submitted = await submit(world, model, f"contract-{model}")

    received = world.sim.tasks.find(submitted.upstream_task_id)
    assert received is not None
    params = validate_parameters(model, REQUESTS[model])
    expected = WIRES[spec.provider].build_submit(model, params, f"contract-{model}", "k")
    assert received.body == expected.json

    first = await provider.poll(submitted.upstream_task_id, submitted.key_id)
    assert first.state in (UpstreamState.QUEUED, UpstreamState.RUNNING)
    world.sim.clock.advance(10)
    done = await provider.poll(submitted.upstream_task_id, submitted.key_id)
    assert done.state is UpstreamState.SUCCEEDED, done.error
    assert done.videos and done.videos[0].url.startswith("http://sim.test/results/")
    if spec.provider == "aliyun":
        assert done.usage is not None and done.usage["video_count"] == 1
        assert done.orig_prompt == "contract"


ERROR_CLASSES = [
    # fault rule, contract code, transient, certainly not taken. A 5xx leaves a submit's outcome
    # unknown, except with a throttling code: the simulator's BigModel 503 carries 1305.
    ({"action": "429", "retry_after": 2}, ErrorCode.UPSTREAM_UNAVAILABLE, True, True),
    ({"action": "500"}, ErrorCode.UPSTREAM_UNAVAILABLE, True, False),
    ({"action": "503"}, ErrorCode.UPSTREAM_UNAVAILABLE, True, "zhipuai"),
    ({"action": "504"}, ErrorCode.UPSTREAM_UNAVAILABLE, True, False),
    ({"action": "arrearage"}, ErrorCode.QUOTA_EXCEEDED, False, True),
    ({"action": "moderation"}, ErrorCode.CONTENT_MODERATION, False, True),
]


@pytest.mark.parametrize(
    "model", ["wanx2.1-t2v-turbo", "wanx2.1-kf2v-plus", "cogvideox-flash", "vidu2-reference"]
)
@pytest.mark.parametrize(("rule", "code", "transient", "not_taken"), ERROR_CLASSES)
async def test_submit_errors(
    world: World,
    model: str,
    rule: dict[str, Any],
    code: ErrorCode,
    transient: bool,
    not_taken: bool | str,
) -> None:
    if isinstance(not_taken, str):
        not_taken = get_model(model).provider == not_taken
    add_fault(world, model, route="submit", **rule)
    with pytest.raises(ProviderError) as caught:
        await submit(world, model)
    error = caught.value
    assert (error.code, error.transient, error.submit_not_taken) == (code, transient, not_taken)
    assert error.upstream_code
    if rule["action"] == "429":
        assert error.retry_after == 2


@pytest.mark.parametrize(
    ("model", "fail_code", "code"),
    [
        ("wanx2.1-i2v-turbo", None, ErrorCode.UPSTREAM_FAILED),
        ("wanx2.1-i2v-turbo", "DataInspectionFailed", ErrorCode.CONTENT_MODERATION),
        ("wanx2.1-t2v-plus", "InvalidParameter", ErrorCode.UPSTREAM_REJECTED),
        ("viduq1-text", None, ErrorCode.UPSTREAM_FAILED),
        ("viduq1-text", "1301", ErrorCode.CONTENT_MODERATION),
    ],
)
async def test_failed_tasks(
    world: World, model: str, fail_code: str | None, code: ErrorCode
) -> None:
    add_fault(world, model, action="fail_task", **({"code": fail_code} if fail_code else {}))
    submitted = await submit(world, model)
    world.sim.clock.advance(10)
    result = await world.providers[get_model(model).provider].poll(
        submitted.upstream_task_id, submitted.key_id
    )
    assert result.state is UpstreamState.FAILED
    assert result.error is not None
    assert (result.error.code, result.error.transient) == (code, False)


async def test_an_unknown_dashscope_task_ends_instead_of_being_polled_for_ever(
    world: World,
) -> None:
    add_fault(world, "wanx2.1-t2v-turbo", action="unknown")
    submitted = await submit(world, "wanx2.1-t2v-turbo")
    result = await world.providers["aliyun"].poll(submitted.upstream_task_id, submitted.key_id)
    assert (result.state, result.upstream_status) == (UpstreamState.FAILED, "UNKNOWN")


async def test_query_throttling_is_transient(world: World) -> None:
    submitted = await submit(world, "vidu2-image")
    add_fault(world, "vidu2-image", route="query", action="429", retry_after=5)
    with pytest.raises(ProviderError) as caught:
        await world.providers["zhipuai"].poll(submitted.upstream_task_id, submitted.key_id)
    assert (caught.value.transient, caught.value.retry_after, caught.value.upstream_code) == (
        True,
        5,
        "1302",
    )


async def test_dashscope_cancels_pending_tasks_only(world: World) -> None:
    dashscope = world.providers["aliyun"]
    pending = await submit(world, "wanx2.1-t2v-turbo", "cancel-1")
    assert await dashscope.cancel(pending.upstream_task_id, pending.key_id) is True
    result = await dashscope.poll(pending.upstream_task_id, pending.key_id)
    assert result.state is UpstreamState.CANCELLED

    running = await submit(world, "wanx2.1-t2v-turbo", "cancel-2")
    world.sim.clock.advance(1.5)
    assert await dashscope.cancel(running.upstream_task_id, running.key_id) is False


async def test_bigmodel_cannot_cancel(world: World) -> None:
    submitted = await submit(world, "cogvideox-2")
    assert (
        await world.providers["zhipuai"].cancel(submitted.upstream_task_id, submitted.key_id)
        is False
    )


@pytest.mark.parametrize(
    ("provider", "model"), [("aliyun", "wanx2.1-t2v-turbo"), ("zhipuai", "viduq1-text")]
)
async def test_a_rejected_key_names_the_variable(provider: str, model: str) -> None:
    env = {**ENV, "ALIYUN_API_KEY": "sk-invalid", "ZHIPUAI_API_KEY": "invalid.invalid"}
    app = create_app(SimConfig.from_dict({}))
    providers = create_providers(env, transport=httpx.ASGITransport(app))
    try:
        with pytest.raises(ProviderError) as caught:
            await providers[provider].submit(
                "r", model, validate_parameters(model, REQUESTS[model])
            )
    finally:
        for p in providers.values():
            await p.aclose()
    error = caught.value
    assert (error.code, error.transient) == (ErrorCode.UPSTREAM_UNAVAILABLE, False)
    assert f"{provider.upper()}_API_KEY" in error.message
    assert "sk-invalid" not in error.message and "invalid.invalid" not in error.message
