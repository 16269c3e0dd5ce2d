"""One contract suite for the 13 models and both providers, against the upstream simulator
served in-process through `httpx.ASGITransport` (no network): a valid request reaches the vendor
exactly as the wire mapping built it and polls to a result; each class of vendor error becomes
the right contract code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from providers import (
    MODELS,
    InvalidParameters,
    Provider,
    ProviderError,
    UpstreamState,
    create_providers,
    fingerprint,
    get_model,
    validate_parameters,
)
from providers.aliyun import wire as dashscope_wire
from providers.zhipuai import wire as bigmodel_wire
from schemas.errors import ErrorCode
from simulator import SimConfig, create_app
from simulator.context import Sim
from simulator.imagegen import bmp, data_uri, jpeg, png, webp
from simulator.uploads import upload_from_request

IMG = "https://example.com/cat.png"
OSS_IMAGE = "oss://dashscope-instant/a/cat.png"
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
    "wanx2.1-i2v-plus": {"prompt": "contract", "img_url": OSS_IMAGE},
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
    app: Any = None  # for more clients of the same simulator


@pytest.fixture
async def world() -> AsyncIterator[World]:
    app = create_app(SimConfig.from_dict({"timing": {"queued_s": 1, "running_s": 2}}))
    sim: Sim = app.state.sim
    # The oss:// image of the i2v-plus request, as if uploaded by our key for that model (§1.10).
    path = OSS_IMAGE.removeprefix("oss://")
    sim.uploads.add(
        upload_from_request(
            {"model": "wanx2.1-i2v-plus", "file": "cat.png", "path": path},
            sim.account_of(KEYS["aliyun"]),
            sim.clock.now(),
        )
    )
    providers = create_providers(ENV, transport=httpx.ASGITransport(app))
    yield World(sim, providers, app)
    for provider in providers.values():
        await provider.aclose()


async def submit(world: World, model: str, request_id: str = "contract-1", attempt: int = 1) -> Any:
    provider = world.providers[get_model(model).provider]
    parameters = validate_parameters(model, REQUESTS[model])
    return await provider.submit(request_id, model, parameters, attempt=attempt)


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


# The seam for submits whose outcome is unknown ---------------------------------------------


async def test_bigmodel_sends_each_attempt_its_own_request_id(world: World) -> None:
    """§2.3 (unique request_id) and Z-ERR 1231: the same attempt again is refused as a
    duplicate, a new attempt is a new task."""
    first = await submit(world, "viduq1-text", "order-9")
    received = world.sim.tasks.find(first.upstream_task_id)
    assert received is not None and received.request_id == "order-9-a1"
    with pytest.raises(ProviderError) as caught:
        await submit(world, "viduq1-text", "order-9")  # attempt 1 again
    error = caught.value
    assert error.already_exists and error.upstream_code == "1231"
    assert (error.code, error.transient, error.submit_not_taken) == (
        ErrorCode.UPSTREAM_REJECTED,
        False,
        False,
    )
    assert error.to_error().code is ErrorCode.UPSTREAM_REJECTED and "1231" in error.message
    second = await submit(world, "viduq1-text", "order-9", attempt=2)
    assert second.upstream_task_id != first.upstream_task_id
    assert len([t for t in world.sim.tasks.all() if t.model == "viduq1-text"]) == 2
    assert world.providers["zhipuai"].dedupes_submits
    assert not world.providers["aliyun"].dedupes_submits


async def test_bigmodel_cannot_look_up_a_lost_submit(world: World) -> None:
    add_fault(world, "cogvideox-2", action="504", stage="after")
    since = datetime.now(UTC)
    with pytest.raises(ProviderError) as lost:
        await submit(world, "cogvideox-2", "lost-1")
    assert not lost.value.submit_not_taken and not lost.value.already_exists
    with pytest.raises(ProviderError) as caught:
        await world.providers["zhipuai"].find_submitted("lost-1", "cogvideox-2", 1, since)
    assert (caught.value.code, caught.value.transient) == (ErrorCode.UPSTREAM_UNAVAILABLE, False)
    assert "no way to look" in caught.value.message and "lost-1-a1" in caught.value.message


@pytest.mark.parametrize("action", ["500", "503", "504", "reset"])
async def test_dashscope_finds_the_task_a_lost_submit_created(world: World, action: str) -> None:
    """A submit whose answer was lost (the task was created first): the task list has it."""
    await submit(world, "wanx2.1-t2v-plus", "earlier")  # another model: not a candidate
    since = datetime.now(UTC)
    add_fault(world, "wanx2.1-t2v-turbo", action=action, stage="after")
    with pytest.raises((ProviderError, ConnectionResetError)) as lost:
        await submit(world, "wanx2.1-t2v-turbo", "lost-2")
    if isinstance(lost.value, ProviderError):
        assert not lost.value.submit_not_taken
        assert action == "reset" or lost.value.upstream_request_id
    [created] = [t for t in world.sim.tasks.all() if t.model == "wanx2.1-t2v-turbo"]
    dashscope = world.providers["aliyun"]
    found = await dashscope.find_submitted("lost-2", "wanx2.1-t2v-turbo", 1, since)
    assert found is not None
    assert (found.upstream_task_id, found.upstream_status) == (created.task_id, "PENDING")
    assert found.key_id == fingerprint(KEYS["aliyun"])
    polled = await dashscope.poll(found.upstream_task_id, found.key_id)
    assert polled.state is UpstreamState.QUEUED


async def test_dashscope_finds_nothing_when_the_submit_was_not_created(world: World) -> None:
    since = datetime.now(UTC)
    add_fault(world, "wanx2.1-t2v-turbo", action="500", stage="before")
    with pytest.raises(ProviderError):
        await submit(world, "wanx2.1-t2v-turbo", "lost-3")
    assert not world.sim.tasks.all()
    dashscope = world.providers["aliyun"]
    assert await dashscope.find_submitted("lost-3", "wanx2.1-t2v-turbo", 1, since) is None
    assert world.sim.stats.count("dashscope", "list", 200) == 1


async def test_dashscope_two_candidates_leave_the_outcome_unknown(world: World) -> None:
    since = datetime.now(UTC)
    other = await submit(world, "wanx2.1-t2v-turbo", "other-task")
    add_fault(world, "wanx2.1-t2v-turbo", action="500", stage="after")
    with pytest.raises(ProviderError):
        await submit(world, "wanx2.1-t2v-turbo", "lost-4")
    dashscope = world.providers["aliyun"]
    with pytest.raises(ProviderError) as caught:
        await dashscope.find_submitted("lost-4", "wanx2.1-t2v-turbo", 1, since)
    assert (caught.value.code, caught.value.transient) == (ErrorCode.UPSTREAM_UNAVAILABLE, False)
    assert "2 candidate tasks" in caught.value.message
    # The caller knows the other task is another request's: the lost one is then found.
    found = await dashscope.find_submitted(
        "lost-4", "wanx2.1-t2v-turbo", 1, since, exclude={other.upstream_task_id}
    )
    assert found is not None and found.upstream_task_id != other.upstream_task_id


async def test_dashscope_tasks_before_the_window_are_not_candidates(world: World) -> None:
    await submit(world, "wanx2.1-t2v-turbo", "old-task")
    for task in world.sim.tasks.all():
        task.created -= 60  # made a minute before the lost submit started
    dashscope = world.providers["aliyun"]
    assert await dashscope.find_submitted("x", "wanx2.1-t2v-turbo", 1, datetime.now(UTC)) is None


async def test_a_failing_task_list_is_transient(world: World) -> None:
    world.sim.faults.add(
        {"vendor": "dashscope", "route": "list", "action": "429", "retry_after": 4}
    )
    with pytest.raises(ProviderError) as caught:
        await world.providers["aliyun"].find_submitted(
            "x", "wanx2.1-t2v-turbo", 1, datetime.now(UTC)
        )
    assert (caught.value.transient, caught.value.retry_after) == (True, 4)


async def test_the_vendor_request_id_of_an_error_reaches_the_contract(world: World) -> None:
    add_fault(world, "wanx2.1-t2v-turbo", action="arrearage")
    with pytest.raises(ProviderError) as caught:
        await submit(world, "wanx2.1-t2v-turbo")
    info = caught.value.to_error()
    assert info.code is ErrorCode.QUOTA_EXCEEDED and info.upstream_request_id
    assert info.upstream_request_id in caught.value.message


# The vendors' codes as the simulator sends them --------------------------------------------


@pytest.mark.parametrize(
    ("model", "rule", "code", "transient"),
    [
        (
            "wanx2.1-t2v-turbo",
            {"action": "403", "code": "AllocationQuota.FreeTierOnly"},
            ErrorCode.QUOTA_EXCEEDED,
            False,
        ),
        ("viduq1-text", {"action": "429", "code": "1110"}, ErrorCode.UPSTREAM_UNAVAILABLE, False),
        ("viduq1-text", {"action": "429", "code": "1112"}, ErrorCode.UPSTREAM_UNAVAILABLE, False),
        ("cogvideox-2", {"action": "429", "code": "1121"}, ErrorCode.UPSTREAM_UNAVAILABLE, False),
        (
            "cogvideox-2",
            {"action": "moderation", "code": "1300"},
            ErrorCode.UPSTREAM_REJECTED,
            False,
        ),
    ],
)
async def test_issue_9_codes(
    world: World, model: str, rule: dict[str, Any], code: ErrorCode, transient: bool
) -> None:
    add_fault(world, model, **rule)
    with pytest.raises(ProviderError) as caught:
        await submit(world, model)
    error = caught.value
    assert (error.code, error.transient, error.submit_not_taken) == (code, transient, True)
    assert error.upstream_code == rule["code"]


# Media ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "raw"),
    [
        ("wanx2.1-i2v-turbo", {"img_url": "http://sim.test/media/portrait.jpg"}),
        ("wanx2.1-i2v-plus", {"img_url": data_uri(bmp(320, 240), "image/bmp")}),
        (
            "wanx2.1-kf2v-plus",
            {
                "first_frame_url": "http://sim.test/media/cat.png",
                "last_frame_url": "http://sim.test/media/cat-end.png",
                "template": "hanfu-1",
            },
        ),
        ("cogvideox-2", {"image_url": data_uri(jpeg(640, 480), "image/jpeg")}),
        ("viduq1-start-end", {"image_url": [IMG, "https://example.com/cat-end.png"]}),
        ("vidu2-reference", {"image_url": [data_uri(webp(200, 600), "image/webp"), IMG]}),
    ],
)
async def test_images_the_schemas_accept_the_simulator_accepts(
    world: World, model: str, raw: dict[str, Any]
) -> None:
    provider = world.providers[get_model(model).provider]
    submitted = await provider.submit("media-1", model, validate_parameters(model, raw))
    assert world.sim.tasks.find(submitted.upstream_task_id) is not None


@pytest.mark.parametrize(
    ("model", "raw", "words"),
    [
        ("wanx2.1-i2v-turbo", {"img_url": data_uri(png(200, 150), "image/png")}, "200x150"),
        (
            "wanx2.1-i2v-plus",
            {"img_url": data_uri(png(320, 240, alpha=True), "image/png")},
            "alpha",
        ),
        ("cogvideox-flash", {"image_url": data_uri(webp(640, 480), "image/webp")}, "image/webp"),
        ("viduq1-image", {"image_url": data_uri(png(1000, 200), "image/png")}, "aspect ratio"),
        ("vidu2-reference", {"image_url": [data_uri(png(100, 100), "image/png")]}, "128"),
        (
            "vidu2-start-end",
            {
                "image_url": [
                    data_uri(png(640, 480), "image/png"),
                    data_uri(png(1280, 960), "image/png"),
                ]
            },
            "similar resolution",
        ),
        ("viduq1-image", {"image_url": IMG, "with_audio": True}, "4-second"),
    ],
)
def test_what_the_simulator_would_refuse_is_refused_before_any_call(
    model: str, raw: dict[str, Any], words: str
) -> None:
    """The same images the simulator refuses (tests/simulator/test_media.py) never leave."""
    with pytest.raises(InvalidParameters) as caught:
        validate_parameters(model, raw)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("model", "raw", "words"),
    [
        ("wanx2.1-i2v-turbo", {"img_url": "http://sim.test/media/tiny.png"}, "200x150"),
        ("wanx2.1-i2v-turbo", {"img_url": "http://sim.test/media/alpha.png"}, "alpha"),
        ("cogvideox-2", {"image_url": "http://sim.test/media/square.webp"}, "PNG/JPEG"),
        ("vidu2-image", {"image_url": "http://sim.test/media/banner.png"}, "aspect ratio"),
        ("vidu2-reference", {"image_url": ["http://sim.test/media/icon.png"]}, ">= 128"),
        ("vidu2-image", {"image_url": "https://example.com/nope.png"}, "HTTP 404"),
    ],
)
async def test_an_image_url_the_vendor_cannot_use_is_rejected_not_retried(
    world: World, model: str, raw: dict[str, Any], words: str
) -> None:
    """URLs are not fetched by validation: the vendor refuses them, before creating a task."""
    provider = world.providers[get_model(model).provider]
    with pytest.raises(ProviderError) as caught:
        await provider.submit("media-2", model, validate_parameters(model, raw))
    error = caught.value
    assert (error.code, error.transient, error.submit_not_taken) == (
        ErrorCode.UPSTREAM_REJECTED,
        False,
        True,
    )
    assert words in error.message
    assert not world.sim.tasks.all()


async def test_an_image_download_timeout_is_retried(world: World) -> None:
    """DashScope's DataInspection code meaning "the download timed out" (issue 9)."""
    raw = {"img_url": "https://slow-host.test/cat.png"}
    with pytest.raises(ProviderError) as caught:
        await world.providers["aliyun"].submit(
            "media-3", "wanx2.1-i2v-turbo", validate_parameters("wanx2.1-i2v-turbo", raw)
        )
    error = caught.value
    assert (error.code, error.transient, error.submit_not_taken) == (
        ErrorCode.UPSTREAM_UNAVAILABLE,
        True,
        True,
    )
    assert error.upstream_code == "InvalidParameter.DataInspection"


# oss:// and accounts -----------------------------------------------------------------------

TWO_ACCOUNTS = {
    **ENV,
    "ALIYUN_API_KEY": "sk-acct-a,sk-acct-b",
    "ALIYUN_KEY_ACCOUNTS": "acct-a:sk-acct-a;acct-b:sk-acct-b",
}


async def test_an_oss_input_with_several_accounts_needs_the_owning_one_named(world: World) -> None:
    app_sim = world.sim
    app_sim.config = app_sim.config.updated({"accounts": {"a": ["sk-acct-a"], "b": ["sk-acct-b"]}})
    transport = httpx.ASGITransport(world.app)
    model = "wanx2.1-i2v-turbo"
    path = "dashscope-instant/b/owned.png"
    app_sim.uploads.add(
        upload_from_request(
            {"model": model, "file": "cat.png", "path": path}, "b", app_sim.clock.now()
        )
    )
    params = validate_parameters(model, {"img_url": f"oss://{path}"})

    providers = create_providers(TWO_ACCOUNTS, transport=transport)
    try:
        with pytest.raises(ProviderError) as caught:
            providers["aliyun"].preflight(model, params)
        error = caught.value
        assert (error.code, error.transient) == (ErrorCode.INVALID_PARAMETERS, False)
        assert error.message.startswith("parameters.img_url: an oss:// file can only be used")
        assert "ALIYUN_OSS_ACCOUNT" in error.message and "acct-a, acct-b" in error.message
        with pytest.raises(ProviderError):
            await providers["aliyun"].submit("oss-1", model, params)
        assert app_sim.stats.count("dashscope", "submit") == 0  # refused before any call
    finally:
        for provider in providers.values():
            await provider.aclose()

    named = create_providers({**TWO_ACCOUNTS, "ALIYUN_OSS_ACCOUNT": "acct-b"}, transport=transport)
    try:
        for attempt in (1, 2, 3, 4):  # whatever the request and attempt: acct-b's key
            submitted = await named["aliyun"].submit("oss-2", model, params, attempt=attempt)
            assert submitted.key_id == fingerprint("sk-acct-b")
            assert named["aliyun"].account_of(submitted.key_id) == "acct-b"
        assert named["aliyun"].accounts == ("acct-a", "acct-b")
    finally:
        for provider in named.values():
            await provider.aclose()


async def test_an_oss_input_of_another_account_is_refused_by_the_vendor(world: World) -> None:
    """What ALIYUN_OSS_ACCOUNT prevents: the simulator binds the file to its account (§1.10)."""
    world.sim.config = world.sim.config.updated(
        {"accounts": {"a": ["sk-acct-a"], "b": ["sk-acct-b"]}}
    )
    model = "wanx2.1-i2v-turbo"
    path = "dashscope-instant/b/owned-too.png"
    world.sim.uploads.add(
        upload_from_request(
            {"model": model, "file": "cat.png", "path": path}, "b", world.sim.clock.now()
        )
    )
    env = {**TWO_ACCOUNTS, "ALIYUN_OSS_ACCOUNT": "acct-a"}  # the wrong account named
    providers = create_providers(env, transport=httpx.ASGITransport(world.app))
    try:
        params = validate_parameters(model, {"img_url": f"oss://{path}"})
        with pytest.raises(ProviderError) as caught:
            await providers["aliyun"].submit("oss-3", model, params)
        assert caught.value.upstream_code == "invalid_parameter_error"
        assert "another account" in caught.value.message
    finally:
        for provider in providers.values():
            await provider.aclose()
