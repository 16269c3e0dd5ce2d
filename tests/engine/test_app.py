"""The whole application in-process: `create_app` under FastStream's TestKafkaBroker and TestApp,
with the in-memory store and the simulator over ASGI. The subscribers, intake, back-pressure and
the shutdown hooks run as in production; only Kafka's network and MongoDB are replaced."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from faststream import TestApp
from faststream.kafka import KafkaBroker, TestKafkaBroker
from opentelemetry.sdk.trace import TracerProvider

from consumers.app import GC_THRESHOLDS, Connections, create_app
from consumers.engine.engine import Engine
from consumers.settings import Settings
from providers.registry import create_providers
from tests.engine.harness import FaultyStore, request, settings, sim_app, vendor_env

OUTPUTS = ("video.status", "video.completed", "video.requests.dlq")


class Service:
    """The app under test and what it published, by topic."""

    def __init__(
        self, tmp_path: Path, tracer_provider: TracerProvider | None = None, **overrides: Any
    ) -> None:
        self.settings: Settings = settings(tmp_path, **overrides)
        self.store = FaultyStore()
        self.sim_app = sim_app()
        self.app = create_app(self.settings, connect=self._connect, tracer_provider=tracer_provider)
        self.published: dict[str, list[dict[str, Any]]] = {t: [] for t in OUTPUTS}
        self.headers: dict[str, list[dict[str, str]]] = {t: [] for t in OUTPUTS}  # of each
        broker = self.broker
        for topic in OUTPUTS:
            broker.subscriber(topic)(self._recorder(topic))

    @property
    def broker(self) -> KafkaBroker:
        broker = self.app.broker
        assert isinstance(broker, KafkaBroker)
        return broker

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.context.get("engine")
        return engine

    def _recorder(self, topic: str) -> Callable[[dict[str, Any]], Any]:
        async def record(body: dict[str, Any]) -> None:  # JSON, decoded by FastStream
            self.published[topic].append(body)
            # Not a `KafkaMessage` argument: that changes the order in which concurrent
            # sends are recorded, which tests of intake rely on.
            self.headers[topic].append(dict(self.broker.context.get_local("message").headers))

        return record

    @asynccontextmanager
    async def _connect(self, config: Settings) -> AsyncIterator[Connections]:
        transport = httpx.ASGITransport(self.sim_app)
        async with httpx.AsyncClient(transport=transport) as http:
            providers = create_providers(vendor_env(), transport=transport)
            yield Connections(self.store, providers, http)

    def statuses(self, request_id: str) -> list[str]:
        return [
            e["status"] for e in self.published["video.status"] if e["request_id"] == request_id
        ]

    async def until_status(self, request_id: str, status: str, timeout: float = 5.0) -> None:
        for _ in range(int(timeout / 0.01)):
            if status in self.statuses(request_id):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{request_id} never reached {status}: {self.statuses(request_id)}")


@pytest.fixture
def service(tmp_path: Path) -> Service:
    return Service(tmp_path)


async def test_a_request_on_the_topic_completes(service: Service) -> None:
    body = request()
    async with TestKafkaBroker(service.broker) as broker, TestApp(service.app):
        await broker.publish(json.dumps(body).encode(), "video.requests", key=b"k")
        await service.until_status(body["request_id"], "completed")
    completed = service.published["video.completed"]
    assert [e["request_id"] for e in completed] == [body["request_id"]]


async def test_the_garbage_collector_is_set_for_serving_while_the_app_runs(
    service: Service,
) -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0 and before != GC_THRESHOLDS
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        assert gc.get_freeze_count() > 0 and gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before


async def test_bad_input_becomes_a_dead_letter_and_a_failed_status(service: Service) -> None:
    async with TestKafkaBroker(service.broker) as broker, TestApp(service.app):
        await broker.publish(b"{not json", "video.requests")
        await broker.publish(
            json.dumps({"request_id": "bad-1", "model": "nope", "parameters": {}}).encode(),
            "video.requests",
        )
    codes = [e["error"]["code"] for e in service.published["video.requests.dlq"]]
    assert codes == ["invalid_request", "unknown_model"]
    assert service.statuses("bad-1") == ["failed"]


async def test_a_cancel_on_the_topic_cancels_the_task(service: Service) -> None:
    service.sim_app.state.sim.config = service.sim_app.state.sim.config.updated(
        {"timing": {"queued_s": 30, "running_s": 30}}
    )
    body = request()
    async with TestKafkaBroker(service.broker) as broker, TestApp(service.app):
        await broker.publish(json.dumps(body).encode(), "video.requests")
        await service.until_status(body["request_id"], "submitted")
        cancel = {"request_id": body["request_id"], "reason": "changed my mind"}
        await broker.publish(json.dumps(cancel).encode(), "video.cancel")
        await service.until_status(body["request_id"], "cancelled")
        await broker.publish(b"not a cancel", "video.cancel")  # logged and skipped
    last = service.published["video.status"][-1]
    assert last["error"]["message"] == "cancelled: changed my mind"


async def test_intake_pauses_at_max_in_flight_and_resumes(tmp_path: Path) -> None:
    service = Service(tmp_path, max_in_flight=2)
    sim = service.sim_app.state.sim
    sim.config = sim.config.updated({"timing": {"queued_s": 0.3, "running_s": 0.1}})
    bodies = [request() for _ in range(3)]
    async with TestKafkaBroker(service.broker) as broker, TestApp(service.app):
        for body in bodies:
            await broker.publish(json.dumps(body).encode(), "video.requests")
        backpressure = service.app.context.get("backpressure")
        for body in bodies:
            await service.until_status(body["request_id"], "completed")
        assert backpressure.paused is False
    assert service.engine.scheduler.held == 0


async def test_shutdown_releases_unfinished_tasks(service: Service) -> None:
    sim = service.sim_app.state.sim
    sim.config = sim.config.updated({"timing": {"queued_s": 30, "running_s": 30}})
    body = request()
    async with TestKafkaBroker(service.broker) as broker, TestApp(service.app):
        await broker.publish(json.dumps(body).encode(), "video.requests")
        await service.until_status(body["request_id"], "submitted")
    task = await service.store.find_by_request_id(body["request_id"])
    assert task is not None and task.lease_owner is None and task.upstream_task_id is not None
