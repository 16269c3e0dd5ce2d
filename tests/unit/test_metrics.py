"""The service's own metrics (consumers/operations/metrics.py) and the vendor-call hook they
observe (providers/http_provider.py `on_call`)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import shutil
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest

from consumers.operations.metrics import Metrics, service_version
from providers.base import ProviderError
from providers.http_provider import HttpProvider
from providers.registry import create_providers

Handler = Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]


def text(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_no_created_series_and_a_build_info() -> None:
    metrics = Metrics()
    metrics.statuses.labels("aliyun", "wanx2.1-t2v-turbo", "accepted").inc()
    metrics.task_seconds.labels("aliyun", "wanx2.1-t2v-turbo", "completed").observe(3)
    exposition = text(metrics)
    assert "_created" not in exposition
    assert f'video_build_info{{version="{service_version()}"}} 1.0' in exposition
    assert service_version() == importlib.metadata.version("video-service")


def test_alerted_counters_start_at_zero_for_every_label_value() -> None:
    """A counter series born at 1 shows no increase(): the first resubmission would not alert."""
    metrics = Metrics()
    for name in (
        "video_upstream_resubmissions_total",
        "video_upstream_submit_outcome_unknown_total",
    ):
        assert sample(metrics, name, provider="aliyun", model="wanx2.1-t2v-turbo") == 0
        assert sample(metrics, name, provider="zhipuai", model="vidu2-reference") == 0
    for code in ("upstream_unavailable", "quota_exceeded"):
        labels = {"provider": "zhipuai", "model": "cogvideox-flash", "code": code}
        assert sample(metrics, "video_task_errors_total", **labels) == 0
    assert sample(metrics, "video_requests_rejected_total", code="unauthorized") == 0
    assert (
        sample(metrics, "video_upstream_submit_lookups_total", provider="aliyun", outcome="none")
        == 0
    )


def test_free_space_of_video_dir_is_read_at_each_scrape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = Metrics()
    assert "video_dir_free_bytes" not in text(metrics)  # nothing to report before it is told
    metrics.watch_video_dir(tmp_path / "not" / "made" / "yet")  # its nearest existing parent
    usage = shutil.disk_usage(tmp_path)
    assert sample(metrics, "video_dir_size_bytes") == usage.total
    free = sample(metrics, "video_dir_free_bytes")
    assert free is not None and abs(free - usage.free) < 512 * 1024**2

    reads: list[str] = []

    def fake(path: str | Path) -> shutil._ntuple_diskusage:
        reads.append(str(path))
        return shutil._ntuple_diskusage(1000, 900, 100)

    monkeypatch.setattr(shutil, "disk_usage", fake)
    metrics.watch_video_dir(tmp_path)  # again: the path changes, nothing is registered twice
    assert sample(metrics, "video_dir_free_bytes") == 100
    assert sample(metrics, "video_dir_free_bytes") == 100
    assert reads == [str(tmp_path), str(tmp_path)]  # one read per scrape, none cached

    def unreadable(path: str | Path) -> shutil._ntuple_diskusage:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(shutil, "disk_usage", unreadable)
    exposition = text(metrics)
    assert "# TYPE video_dir_free_bytes gauge" in exposition  # declared, without a value
    assert sample(metrics, "video_dir_free_bytes") is None


# --- the vendor-call hook -----------------------------------------------------------------


def dashscope(handler: Handler) -> HttpProvider:
    env = {
        "ALIYUN_API_KEY": "sk-one",
        "ALIYUN_BASE_URL": "http://dashscope.test",
        "ALIYUN_SUBMITS_PER_S": "0",
        "ALIYUN_QUERIES_PER_S": "0",
        "ALIYUN_RUNNING_PER_MODEL": "0",
    }
    provider = create_providers(env, transport=httpx.MockTransport(handler))["aliyun"]
    assert isinstance(provider, HttpProvider)
    return provider


def answer(status: int) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"output": {"task_id": "t-1", "task_status": "RUNNING"}})

    return handler


def raising(exc: Exception) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (200, None, "2xx"),
        (429, None, "4xx"),
        (503, None, "5xx"),
        (None, httpx.ConnectError("refused"), "not_sent"),
        (None, httpx.ReadTimeout("slow"), "no_answer"),
        (None, httpx.RemoteProtocolError("dropped"), "no_answer"),
    ],
)
async def test_each_vendor_call_is_observed_with_its_outcome(
    status: int | None, error: Exception | None, outcome: str
) -> None:
    handler = answer(status) if status is not None else raising(error or Exception())
    provider = dashscope(handler)
    metrics = Metrics()
    metrics.watch_providers([provider, object()])  # anything else is left alone
    with contextlib.suppress(ProviderError):
        await provider.poll("t-1", provider.key_ids[0])
    await provider.aclose()
    labels = {"provider": "aliyun", "operation": "query", "outcome": outcome}
    assert sample(metrics, "video_upstream_request_duration_seconds_count", **labels) == 1
    total = sample(metrics, "video_upstream_request_duration_seconds_sum", **labels)
    assert total is not None and 0 <= total < 5


async def test_operations_are_named_and_a_failing_hook_fails_no_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[tuple[str, str, str]] = []

    def hook(provider: str, operation: str, seconds: float, outcome: str) -> None:
        calls.append((provider, operation, outcome))
        raise RuntimeError("observer broke")

    provider = dashscope(answer(200))
    provider.on_call = hook
    await provider.poll("t-1", provider.key_ids[0])  # no exception: the hook's is logged
    await provider.cancel("t-1", provider.key_ids[0])
    await provider.aclose()
    assert calls == [("aliyun", "query", "2xx"), ("aliyun", "cancel", "2xx")]
    assert "on_call failed" in caplog.text


async def test_a_cancelled_call_is_not_observed() -> None:
    started = asyncio.Event()

    async def never(request: httpx.Request) -> httpx.Response:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    calls: list[str] = []
    provider = dashscope(never)
    provider.on_call = lambda *args: calls.append(str(args))
    call = asyncio.create_task(provider.poll("t-1", provider.key_ids[0]))
    await started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await provider.aclose()
    assert calls == []
