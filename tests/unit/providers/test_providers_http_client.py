"""The httpx layer, against `httpx.MockTransport` (httpx's own seam): requests as sent,
key routing, and the mapping of transport exceptions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from providers import (
    Provider,
    ProviderError,
    ProviderSettings,
    UpstreamState,
    create_providers,
    fingerprint,
    validate_parameters,
)
from providers.keys import KeyRing
from schemas.errors import ErrorCode

ENV = {
    "ALIYUN_API_KEY": "sk-one,sk-two",
    "ALIYUN_BASE_URL": "http://dashscope.test",
    "ALIYUN_SUBMITS_PER_S": "0",  # no waiting in these tests
    "ZHIPUAI_API_KEY": "id.secret",
    "ZHIPUAI_BASE_URL": "http://bigmodel.test/api/paas/v4",  # SDK-style; the path is ours to add
}


class Upstream:
    """A scripted vendor: records every request and answers with `answer`."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(500)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    def body(self, i: int = -1) -> Any:
        return json.loads(self.requests[i].content)


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
async def providers(upstream: Upstream) -> AsyncIterator[dict[str, Provider]]:
    built = create_providers(ENV, transport=httpx.MockTransport(upstream))
    yield built
    for provider in built.values():
        await provider.aclose()


def created(task_id: str) -> Callable[[httpx.Request], httpx.Response]:
    body = {"output": {"task_status": "PENDING", "task_id": task_id}, "request_id": "r"}
    return lambda request: httpx.Response(200, json=body)


async def test_dashscope_submit_poll_cancel(
    providers: dict[str, Provider], upstream: Upstream
) -> None:
    dashscope = providers["aliyun"]
    upstream.answer = created("t-1")
    params = validate_parameters(
        "wanx2.1-kf2v-plus", {"first_frame_url": "oss://b/f.png", "template": "hanfu-1"}
    )
    submitted = await dashscope.submit("order-1", "wanx2.1-kf2v-plus", params)
    key_id, key = KeyRing("ALIYUN_API_KEY", ["sk-one", "sk-two"]).pick("order-1", 1)

    sent = upstream.requests[0]
    assert str(sent.url) == "http://dashscope.test/api/v1/services/aigc/image2video/video-synthesis"
    assert sent.headers["authorization"] == f"Bearer {key}"
    assert sent.headers["x-dashscope-async"] == "enable"
    assert sent.headers["x-dashscope-ossresourceresolve"] == "enable"
    assert sent.headers["content-type"] == "application/json"
    assert upstream.body() == {
        "model": "wanx2.1-kf2v-plus",
        "input": {"first_frame_url": "oss://b/f.png", "template": "hanfu-1"},
        "parameters": {},
    }
    assert (submitted.upstream_task_id, submitted.upstream_status) == ("t-1", "PENDING")
    assert submitted.key_id == key_id == fingerprint(key)

    upstream.answer = lambda r: httpx.Response(
        200, json={"output": {"task_id": "t-1", "task_status": "RUNNING"}}
    )
    result = await dashscope.poll("t-1", submitted.key_id)
    assert result.state is UpstreamState.RUNNING
    assert (upstream.requests[1].method, str(upstream.requests[1].url)) == (
        "GET",
        "http://dashscope.test/api/v1/tasks/t-1",
    )

    upstream.answer = lambda r: httpx.Response(200, json={"request_id": "r"})
    assert await dashscope.cancel("t-1", submitted.key_id) is True
    assert (upstream.requests[2].method, upstream.requests[2].url.path) == (
        "POST",
        "/api/v1/tasks/t-1/cancel",
    )

    upstream.answer = lambda r: httpx.Response(
        400, json={"code": "UnsupportedOperation", "message": "m"}
    )
    assert await dashscope.cancel("t-1", submitted.key_id) is False


async def test_keys_spread_over_submits_and_tasks_keep_theirs(
    providers: dict[str, Provider], upstream: Upstream
) -> None:
    """The key of a submit follows from its request id and attempt: spread over the keys, the
    same again for the same attempt, and the one the task's queries use."""
    dashscope = providers["aliyun"]
    upstream.answer = created("t")
    params = validate_parameters("wanx2.1-t2v-turbo", {"prompt": "p"})
    submitted = [await dashscope.submit(f"r-{i}", "wanx2.1-t2v-turbo", params) for i in range(8)]
    assert {s.key_id for s in submitted} == {fingerprint("sk-one"), fingerprint("sk-two")}
    for sent, done in zip(upstream.requests, submitted, strict=True):
        assert fingerprint(sent.headers["authorization"].removeprefix("Bearer ")) == done.key_id
    again = await dashscope.submit("r-0", "wanx2.1-t2v-turbo", params)
    assert again.key_id == submitted[0].key_id

    upstream.answer = lambda r: httpx.Response(
        200, json={"output": {"task_id": "t", "task_status": "PENDING"}}
    )
    await dashscope.poll("t", submitted[1].key_id)
    poll_key = upstream.requests[-1].headers["authorization"].removeprefix("Bearer ")
    assert fingerprint(poll_key) == submitted[1].key_id


async def test_a_task_whose_key_was_removed_makes_no_call(
    providers: dict[str, Provider], upstream: Upstream
) -> None:
    with pytest.raises(ProviderError) as caught:
        await providers["aliyun"].poll("t", fingerprint("sk-removed"))
    assert caught.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert "ALIYUN_API_KEY" in caught.value.message
    assert upstream.requests == []


async def test_bigmodel_submit_poll_and_no_cancel(
    providers: dict[str, Provider], upstream: Upstream
) -> None:
    bigmodel = providers["zhipuai"]
    upstream.answer = lambda r: httpx.Response(
        200,
        json={
            "model": "vidu2-image",
            "id": "886",
            "request_id": "order-7",
            "task_status": "PROCESSING",
        },
    )
    params = validate_parameters("vidu2-image", {"image_url": "https://example.com/a.png"})
    submitted = await bigmodel.submit("order-7", "vidu2-image", params)
    assert str(upstream.requests[0].url) == "http://bigmodel.test/api/paas/v4/videos/generations"
    assert upstream.body() == {
        "model": "vidu2-image",
        "image_url": "https://example.com/a.png",
        "request_id": "order-7-a1",
    }
    assert submitted.upstream_task_id == "886"

    upstream.answer = lambda r: httpx.Response(
        200,
        json={
            "task_status": "SUCCESS",
            "video_result": [{"url": "https://sfile.chatglm.cn/v.mp4"}],
        },
    )
    result = await bigmodel.poll("886", submitted.key_id)
    assert str(upstream.requests[1].url) == "http://bigmodel.test/api/paas/v4/async-result/886"
    assert result.state is UpstreamState.SUCCEEDED
    assert await bigmodel.cancel("886", submitted.key_id) is False
    assert len(upstream.requests) == 2  # no call for the cancel


async def test_throttling_carries_retry_after(
    providers: dict[str, Provider], upstream: Upstream
) -> None:
    upstream.answer = lambda r: httpx.Response(
        429,
        headers={"Retry-After": "3"},
        json={"code": "Throttling.RateQuota", "message": "slow down"},
    )
    params = validate_parameters("wanx2.1-t2v-turbo", {"prompt": "p"})
    with pytest.raises(ProviderError) as caught:
        await providers["aliyun"].submit("a", "wanx2.1-t2v-turbo", params)
    error = caught.value
    assert (error.code, error.transient, error.retry_after, error.submit_not_taken) == (
        ErrorCode.UPSTREAM_UNAVAILABLE,
        True,
        3.0,
        True,
    )
    assert error.upstream_code == "Throttling.RateQuota"


def raising(exc: type[httpx.TransportError]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        raise exc("simulated", request=request)

    return answer


@pytest.mark.parametrize(
    ("exc", "not_taken"),
    [
        (httpx.ConnectError, True),
        (httpx.ConnectTimeout, True),
        (httpx.PoolTimeout, True),
        (httpx.ReadTimeout, False),
        (httpx.WriteTimeout, False),
        (httpx.ReadError, False),
        (httpx.RemoteProtocolError, False),
    ],
)
async def test_transport_errors(
    providers: dict[str, Provider],
    upstream: Upstream,
    exc: type[httpx.TransportError],
    not_taken: bool,
) -> None:
    upstream.answer = raising(exc)
    params = validate_parameters("cogvideox-flash", {"prompt": "p"})
    with pytest.raises(ProviderError) as caught:
        await providers["zhipuai"].submit("a", "cogvideox-flash", params)
    error = caught.value
    assert (error.code, error.transient, error.submit_not_taken) == (
        ErrorCode.UPSTREAM_UNAVAILABLE,
        True,
        not_taken,
    )
    assert isinstance(error.__cause__, exc)
    assert "BigModel" in error.message and "secret" not in error.message


async def test_a_gateway_timeout_page_leaves_the_submit_unknown(
    providers: dict[str, Provider], upstream: Upstream
) -> None:
    upstream.answer = lambda r: httpx.Response(504, text="<html>Gateway Time-out</html>")
    params = validate_parameters("wanx2.1-t2v-turbo", {"prompt": "p"})
    with pytest.raises(ProviderError) as caught:
        await providers["aliyun"].submit("a", "wanx2.1-t2v-turbo", params)
    assert (caught.value.transient, caught.value.submit_not_taken) == (True, False)


async def test_only_vendors_with_a_key_get_a_provider(upstream: Upstream) -> None:
    built = create_providers(
        {"ZHIPUAI_API_KEY": "id.secret"}, transport=httpx.MockTransport(upstream)
    )
    assert list(built) == ["zhipuai"]
    await built["zhipuai"].aclose()
    assert create_providers({}) == {}


async def test_settings_from_env_and_limits(upstream: Upstream) -> None:
    env = {"aliyun_api_key": "sk-1", "ALIYUN_SUBMITS_PER_S": "0.5", "ALIYUN_RUNNING_PER_MODEL": "4"}
    settings = ProviderSettings.from_env(env)
    assert "sk-1" not in repr(settings)
    built = create_providers(settings, transport=httpx.MockTransport(upstream))
    dashscope = built["aliyun"]
    assert (dashscope.limits.submits_per_s_per_model, dashscope.limits.running_per_model) == (
        0.5,
        4,
    )
    assert dashscope.limits.queries_per_s == 20
    await dashscope.aclose()


def test_default_limits_follow_the_docs() -> None:
    settings = ProviderSettings.from_env({})
    assert (
        settings.aliyun.submits_per_s,
        settings.aliyun.running_per_model,
        settings.aliyun.queries_per_s,
    ) == (2, 2, 20)
    assert (
        settings.zhipuai.submits_per_s,
        settings.zhipuai.running_per_model,
        settings.zhipuai.queries_per_s,
    ) == (1, 3, 10)
    assert settings.aliyun.base_url == "https://dashscope.aliyuncs.com"
    assert settings.zhipuai.base_url == "https://open.bigmodel.cn"


def test_a_bad_limit_names_the_variable() -> None:
    with pytest.raises(ValueError, match="ZHIPUAI_QUERIES_PER_S"):
        ProviderSettings.from_env({"ZHIPUAI_QUERIES_PER_S": "fast"})


def test_secret_values_are_unwrapped() -> None:
    class Secret:
        def get_secret_value(self) -> str:
            return "sk-a, sk-b"

        def __str__(self) -> str:
            return "**********"

    assert ProviderSettings.from_env({"aliyun_api_key": Secret()}).aliyun.api_keys == (
        "sk-a",
        "sk-b",
    )


async def test_running_slots_are_exposed(providers: dict[str, Provider]) -> None:
    slots = providers["aliyun"].running_slots
    assert slots.try_acquire("wanx2.1-t2v-plus") and slots.try_acquire("wanx2.1-t2v-plus")
    assert not slots.try_acquire("wanx2.1-t2v-plus")


async def test_a_settings_object_is_read_by_attribute(upstream: Upstream) -> None:
    settings = SimpleNamespace(
        aliyun_api_key="sk-1",
        aliyun_base_url="http://dashscope.test",
        aliyun_queries_per_s=5,
        zhipuai_api_key=None,
    )
    built = create_providers(settings, transport=httpx.MockTransport(upstream))
    assert list(built) == ["aliyun"]
    assert built["aliyun"].limits.queries_per_s == 5
    await built["aliyun"].aclose()


def listing(pages: dict[int, list[dict[str, Any]]], total_page: int | None = None) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page_no"])
        body = {
            "request_id": "q",
            "data": pages.get(page, []),
            "total_page": total_page or len(pages),
        }
        return httpx.Response(200, json=body)

    return answer


def listed(task_id: str, model: str = "wanx2.1-t2v-turbo", **fields: Any) -> dict[str, Any]:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    return {
        "task_id": task_id,
        "status": "PENDING",
        "model_name": model,
        "gmt_create": now_ms,
        **fields,
    }


async def test_find_submitted_reads_every_page_of_every_account(upstream: Upstream) -> None:
    env = {**ENV, "ALIYUN_API_KEY": "sk-a,sk-b", "ALIYUN_KEY_ACCOUNTS": "acct-a:sk-a;acct-b:sk-b"}
    providers = create_providers(env, transport=httpx.MockTransport(upstream))
    dashscope = providers["aliyun"]
    since = datetime.now(UTC) - timedelta(seconds=5)
    account_a = listing({1: [listed("other", "wanx2.1-t2v-plus")], 2: [listed("mine")]})
    account_b = listing({1: []})
    upstream.answer = lambda r: (
        account_a if r.headers["authorization"] == "Bearer sk-a" else account_b
    )(r)
    try:
        found = await dashscope.find_submitted("order-1", "wanx2.1-t2v-turbo", 1, since)
        assert found is not None and found.upstream_task_id == "mine"
        assert found.key_id == fingerprint("sk-a")  # polled with a key of the owning account
        keys = [(r.headers["authorization"], r.url.params["page_no"]) for r in upstream.requests]
        assert keys == [("Bearer sk-a", "1"), ("Bearer sk-a", "2"), ("Bearer sk-b", "1")]
    finally:
        for provider in providers.values():
            await provider.aclose()


async def test_find_submitted_with_one_account(
    providers: dict[str, Provider], upstream: Upstream
) -> None:
    dashscope = providers["aliyun"]
    since = datetime.now(UTC) - timedelta(seconds=5)
    upstream.answer = listing({1: [listed("x", gmt_create=0)]})  # created long before: not ours
    assert await dashscope.find_submitted("o", "wanx2.1-t2v-turbo", 1, since) is None
    sent = upstream.requests[-1]
    assert sent.url.path == "/api/v1/tasks" and sent.url.params["model_name"] == "wanx2.1-t2v-turbo"

    upstream.answer = listing({1: [{"task_id": "no-time", "status": "PENDING"}]})
    with pytest.raises(ProviderError) as caught:
        await dashscope.find_submitted("o", "wanx2.1-t2v-turbo", 1, since)
    assert "without a time" in caught.value.message and not caught.value.transient

    upstream.answer = listing({1: [listed("a")]}, total_page=11)
    with pytest.raises(ProviderError) as caught:
        await dashscope.find_submitted("o", "wanx2.1-t2v-turbo", 1, since)
    assert "11 pages" in caught.value.message

    upstream.answer = listing({1: [listed("a"), listed("b")]})
    found = await dashscope.find_submitted("o", "wanx2.1-t2v-turbo", 1, since, exclude={"a"})
    assert found is not None and found.upstream_task_id == "b"
