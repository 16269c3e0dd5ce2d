"""The FastStream application: `faststream run consumers.app:app`.

Wiring only: settings, the Kafka broker with a router per input topic, and at start-up the task
store, the providers, the task runner, leases, back-pressure and the metrics/health endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from faststream import ContextRepo, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from pymongo import AsyncMongoClient

from consumers.subscribers import cancels, requests
from consumers.subscribers.auth import Authenticator
from consumers.subscribers.backpressure import Backpressure
from consumers.operations.health import HealthServer
from consumers.subscribers.intake import Intake
from consumers.messaging.kafka import ensure_topics, security
from consumers.leases import LeaseKeeper
from consumers.operations.metrics import Metrics
from consumers.messaging.publisher import EventPublisher
from consumers.runner import TaskRunner
from consumers.settings import Settings
from consumers.store import TaskStore
from providers.registry import create_providers

settings = Settings()
logging.basicConfig(
    level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)
log = logging.getLogger("video.app")
auth = Authenticator(settings)  # fails at import when AUTH_MODE=jwt lacks its key
metrics = Metrics()

broker = KafkaBroker(
    settings.kafka_bootstrap_servers,
    client_id=f"video-service-{settings.instance_id}",
    security=security(settings),
    enable_idempotence=True,  # with acks=all: no event lost or duplicated by producer retries
    acks="all",
    middlewares=[KafkaPrometheusMiddleware(registry=metrics.registry, app_name="video-service")],
    graceful_timeout=30.0,
)
requests_router, requests_subscriber = requests.build_router(settings)
cancel_router, cancel_subscriber = cancels.build_router(settings)
broker.include_router(requests_router)
broker.include_router(cancel_router)


@asynccontextmanager
async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
    await ensure_topics(settings)
    mongo: AsyncMongoClient[dict] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    store = TaskStore(mongo, settings.mongodb_db)
    await store.ensure_indexes()
    providers = create_providers(settings)
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(60.0, connect=10.0),
        limits=httpx.Limits(max_connections=settings.max_concurrent_downloads),
        follow_redirects=True,
    )
    publisher = EventPublisher(broker, settings)
    runner = TaskRunner(
        store=store,
        publisher=publisher,
        providers=providers,
        settings=settings,
        metrics=metrics,
        http=http,
    )
    intake = Intake(
        store=store,
        runner=runner,
        publisher=publisher,
        settings=settings,
        metrics=metrics,
        auth=auth,
    )
    leases = LeaseKeeper(store, runner, settings.lease_ttl_s, metrics)
    backpressure = Backpressure(requests_subscriber, runner, settings.max_in_flight, metrics)
    health = HealthServer(
        metrics.registry,
        {"kafka": lambda: broker.ping(2.0), "mongodb": store.ping},
        settings.metrics_port,
    )
    components = {
        "intake": intake,
        "runner": runner,
        "auth": auth,
        "backpressure": backpressure,
        "leases": leases,
        "store": store,
    }
    for name, value in components.items():
        context.set_global(name, value)
    if settings.metrics_port:
        await health.start()
    log.info(
        "instance %s: providers %s, video dir %s",
        settings.instance_id,
        sorted(providers) or "none",
        runner.video_dir,
    )
    try:
        yield
    finally:
        await health.stop()
        await http.aclose()
        for provider in providers.values():
            await provider.aclose()
        await mongo.close()


app = FastStream(broker, lifespan=lifespan)


@app.after_startup
async def start_leases(context: ContextRepo) -> None:
    """Once the broker can publish: resume this instance's tasks and take over orphans."""
    leases: LeaseKeeper = context.get("leases")
    leases.start()


@app.on_shutdown
async def stop_gracefully(context: ContextRepo) -> None:
    """SIGTERM: stop intake, stop the tasks (each is saved at its last step), release them."""
    await requests_subscriber.stop()
    await cancel_subscriber.stop()
    await context.get("backpressure").stop()
    await context.get("leases").stop()
    runner: TaskRunner = context.get("runner")
    await runner.stop()
    store: TaskStore = context.get("store")
    released = await store.release_leases(runner.owner)
    log.info("released %d unfinished tasks for any instance to resume", released)
