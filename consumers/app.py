"""The FastStream application: `faststream run consumers.app:app`.

Wiring only. `create_app(settings)` builds the broker with one router per input topic; the
lifespan builds the rest once the process starts (the connections of `connect`, the engine,
intake, back-pressure and the metrics/health endpoint), so importing this module connects to
nothing and needs no secret. The in-process tests pass their own `connect`. Tracing is on only
when OpenTelemetry's variables ask for it (consumers/operations/tracing.py): then the broker has
FastStream's telemetry middleware, and the provider lives as long as the app runs.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.metadata
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from faststream import AsyncAPI, ContextRepo, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.response import KafkaPublishCommand
from faststream.response.publish_type import PublishType
from pymongo import AsyncMongoClient

from consumers.engine.engine import Engine
from consumers.media.objects import ObjectSink
from consumers.messaging.kafka import ensure_topics, security
from consumers.messaging.publisher import COMPLETED, STATUS, EventPublisher, Send
from consumers.operations import tracing
from consumers.operations.health import HealthServer
from consumers.operations.lag import ConsumerLag
from consumers.operations.logs import configure_logging
from consumers.operations.metrics import Metrics
from consumers.operations.retention import RetentionSweeper
from consumers.settings import Settings
from consumers.storage.base import TaskStore
from consumers.storage.mongo import MongoTaskStore
from consumers.subscribers import cancels, requests
from consumers.subscribers.auth import Authenticator
from consumers.subscribers.backpressure import Backpressure
from consumers.subscribers.intake import Intake
from providers.base import Provider
from providers.registry import create_providers
from providers.settings import ProviderSettings
from providers.transport import aiohttp_transport
from schemas.events import CompletedEvent, DeadLetterEvent, StatusEvent

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("video.app")


@dataclass
class Connections:
    """What the service talks to besides Kafka: the in-process tests bring their own."""

    store: TaskStore
    providers: Mapping[str, Provider]
    http: httpx.AsyncClient  # for downloads
    objects: ObjectSink | None = None  # where checked videos are uploaded, if anywhere


Connect = Callable[[Settings], AbstractAsyncContextManager[Connections]]


@asynccontextmanager
async def connect(settings: Settings) -> AsyncIterator[Connections]:
    """The real ones: topics created, MongoDB, the vendors, an HTTP client for downloads, and
    the object store when one is configured."""
    objects = ObjectSink.from_env()  # a bad value: ValueError naming it, before anything starts
    await ensure_topics(settings)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongodb_url.get_secret_value(), tz_aware=True
    )
    store = MongoTaskStore(mongo, settings.mongodb_db)
    providers = create_providers(ProviderSettings.from_environment())
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(60.0, connect=10.0),
        transport=aiohttp_transport(
            httpx.Limits(max_connections=settings.max_concurrent_downloads)
        ),
    )
    try:
        await store.ensure_indexes()
        if objects is not None:
            await objects.start()
        yield Connections(store, providers, http, objects)
    finally:
        if objects is not None:
            await objects.close()
        await http.aclose()
        for provider in providers.values():
            await provider.aclose()
        await mongo.close()


def create_app(
    settings: Settings | None = None,
    *,
    connect: Connect = connect,
    tracer_provider: TracerProvider | None = None,
) -> FastStream:
    """The app. `tracer_provider` (tests) turns tracing on with it; by default the environment
    decides (`tracing.from_environment`: off unless OTEL_* variables ask for it)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    tracer_provider = tracer_provider or tracing.from_environment(
        instance_id=settings.instance_id, version=_version()
    )
    metrics = Metrics()
    broker = _broker(settings, metrics, tracer_provider)
    requests_router, requests_subscriber, rebalances = requests.build_router(settings)
    cancel_router, cancel_subscriber = cancels.build_router(settings)
    broker.include_router(requests_router)
    broker.include_router(cancel_router)

    @asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        auth = Authenticator(settings)  # refuses to start with an unusable key
        async with connect(settings) as connections, _traced(tracer_provider):
            parts = _assemble(settings, broker, connections, metrics, auth)
            parts["backpressure"] = Backpressure(
                requests_subscriber, parts["engine"].scheduler, settings.max_in_flight, metrics
            )
            rebalances.on_assigned = parts["backpressure"].assigned
            for name, value in parts.items():
                context.set_global(name, value)
            health = HealthServer(
                metrics.registry,
                {"kafka": lambda: broker.ping(2.0), "mongodb": connections.store.ping},
                settings.metrics_port,
                settings.metrics_host,
            )
            if settings.metrics_port:
                await health.start()
            await parts["engine"].open()  # leases renewed before intake can adopt anything
            background = _background(settings, requests_subscriber, connections, metrics)
            for loop in background:
                loop.start()
            try:
                with _garbage_collector_for_serving():
                    yield
            finally:
                for loop in background:
                    await loop.stop()
                await health.stop()

    _declare_outputs(broker, settings)
    app = FastStream(broker, lifespan=lifespan, specification=_specification())
    app.after_startup(start_engine)
    app.on_shutdown(stop_gracefully(requests_subscriber, cancel_subscriber))
    return app


async def start_engine(context: ContextRepo) -> None:
    """Once the broker can publish: resume this instance's tasks and take over orphans."""
    await context.get("engine").start()


def stop_gracefully(*subscribers: Any) -> Callable[[ContextRepo], Awaitable[None]]:
    async def stop(context: ContextRepo) -> None:
        """SIGTERM: stop intake, let submits under way record their upstream task, stop the
        tasks (each is saved at its last step), release them."""
        for subscriber in subscribers:
            await subscriber.stop()
        await context.get("backpressure").stop()
        await context.get("engine").stop()

    return stop


def _background(
    settings: Settings, requests_subscriber: Any, connections: Connections, metrics: Metrics
) -> list[ConsumerLag | RetentionSweeper]:
    """What runs beside the engine: the request topic's lag, retention of finished tasks and
    old videos; and the metrics read at scrape time (vendor call latency, free space)."""
    metrics.watch_providers(connections.providers.values())
    metrics.watch_video_dir(settings.video_dir)
    return [
        ConsumerLag(requests_subscriber, settings.topic_requests, metrics.registry),
        RetentionSweeper.for_store(connections.store, settings),
    ]


def _declare_outputs(broker: KafkaBroker, settings: Settings) -> None:
    """The output topics and their events, for the AsyncAPI document (`make docs`). Events are
    sent through the outbox's publisher; these declarations only describe them."""
    for topic, model in (
        (settings.topic_status, StatusEvent),
        (settings.topic_completed, CompletedEvent),
        (settings.topic_dlq, DeadLetterEvent),
    ):
        broker.publisher(topic, schema=model, description=model.__doc__)


def _specification() -> AsyncAPI:
    return AsyncAPI(
        title="video-service",
        version=_version(),
        description=(
            "Video requests come in on Kafka; each becomes one generation at an upstream AI "
            "vendor (Alibaba DashScope, Zhipu BigModel), followed to the end, its video "
            "downloaded and checked. Every step of every task goes out on the status topic, a "
            "completed event when it succeeded, and input that cannot be accepted goes to the "
            "dead-letter topic."
        ),
    )


# Python's default (700, 10, 10) collects the youngest objects after every 700 allocations:
# under load the cyclic collector took 0.83 ms of CPU per task, a sixth of the service's. With
# these, 0.19 ms (measured in one throughput run). Cyclic garbage, which is rare here (most
# objects are freed by reference counting), waits a little longer.
GC_THRESHOLDS = (50_000, 20, 100)


@contextmanager
def _garbage_collector_for_serving() -> Iterator[None]:
    """While the app serves: what start-up made (modules, schemas, clients: about 100,000
    objects, alive as long as the app) frozen out of the collector's full passes, and the
    collector run less often. Both undone at stop."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _version() -> str:
    try:
        return importlib.metadata.version("video-service")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


@asynccontextmanager
async def _traced(tracer_provider: TracerProvider | None) -> AsyncIterator[None]:
    """Spans of ours while the app runs (tracing on); its last spans exported at the end."""
    tracing.install(tracer_provider)
    try:
        yield
    finally:
        tracing.install(None)
        if tracer_provider is not None:
            await asyncio.to_thread(tracer_provider.shutdown)


def _broker(
    settings: Settings, metrics: Metrics, tracer_provider: TracerProvider | None
) -> KafkaBroker:
    middlewares: list[Any] = [
        KafkaPrometheusMiddleware(registry=metrics.registry, app_name="video-service")
    ]
    if tracer_provider is not None:
        from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware

        middlewares.append(
            KafkaTelemetryMiddleware(
                tracer_provider=tracer_provider, include_messages_counters=False
            )
        )
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=f"video-service-{settings.instance_id}",
        security=security(settings),
        enable_idempotence=True,  # with acks=all: no event lost or duplicated by producer retries
        acks="all",
        middlewares=middlewares,
        graceful_timeout=30.0,
    )


def _assemble(
    settings: Settings,
    broker: KafkaBroker,
    connections: Connections,
    metrics: Metrics,
    auth: Authenticator,
) -> dict[str, Any]:
    """The parts the subscribers and hooks find in FastStream's context, by name."""
    publisher = EventPublisher(
        kafka_send(broker),
        {STATUS: settings.topic_status, COMPLETED: settings.topic_completed},
        settings.topic_dlq,
        on_reply_failure=metrics.reply_copies_failed.inc,
        reply_send=kafka_send(broker, metered=False),
    )
    engine = Engine(
        settings=settings,
        store=connections.store,
        publisher=publisher,
        providers=connections.providers,
        metrics=metrics,
        http=connections.http,
        objects=connections.objects,
    )
    intake = Intake(
        store=connections.store,
        engine=engine,
        publisher=publisher,
        settings=settings,
        metrics=metrics,
        auth=auth,
    )
    log.info(
        "instance %s: providers %s, video dir %s",
        settings.instance_id,
        sorted(connections.providers) or "none",
        engine.video_dir,
    )
    return {"engine": engine, "intake": intake, "auth": auth}


def kafka_send(broker: KafkaBroker, *, metered: bool = True) -> Send:
    """The publisher's way to Kafka: queue a send, return its confirmation.

    `metered=False` goes to the broker's producer directly, past the middlewares: for copies to
    producers' reply topics, which must not each add a set of per-topic metrics series (nor
    spans: a copy carries the headers it is given)."""

    async def send(
        value: bytes, topic: str, key: bytes | None, trace: Mapping[str, str]
    ) -> Awaitable[Any]:
        headers = {"content-type": "application/json", **trace}
        if metered:
            with tracing.publishing(headers):
                confirmation = await broker.publish(
                    value, topic, key=key, headers=headers, no_confirm=True
                )
        else:
            command = KafkaPublishCommand(
                value,
                topic=topic,
                key=key,
                headers=headers,
                no_confirm=True,
                correlation_id=broker.config.id_generator(),
                _publish_type=PublishType.PUBLISH,
            )
            confirmation = await broker.config.producer.publish(command)
        if inspect.isawaitable(confirmation):
            return confirmation
        # FastStream's TestKafkaBroker delivers at once and returns no confirmation.
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(confirmation)
        return done

    return send


app = create_app()
