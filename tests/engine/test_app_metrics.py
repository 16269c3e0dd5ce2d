"""The app wires the observability parts in (consumers/app.py's lifespan): vendor-call latency,
VIDEO_DIR's free space and the consumer-lag collector, on the registry /metrics serves."""

from __future__ import annotations

import json
from pathlib import Path

from faststream import TestApp
from faststream.kafka import TestKafkaBroker
from prometheus_client import CollectorRegistry, generate_latest

from consumers.operations.lag import NAME as LAG
from tests.engine.harness import request
from tests.engine.test_app import Service


async def test_the_running_app_exports_the_new_metrics(tmp_path: Path) -> None:
    service = Service(tmp_path)
    body = request("wanx2.1-t2v-turbo")
    async with TestKafkaBroker(service.broker) as broker, TestApp(service.app):
        registry: CollectorRegistry = service.engine.ctx.metrics.registry
        await broker.publish(json.dumps(body).encode(), "video.requests", key=b"k")
        await service.until_status(body["request_id"], "completed")
        exposition = generate_latest(registry).decode()
        assert f"# TYPE {LAG} gauge" in exposition  # TestKafkaBroker has no consumer: no value
    calls = {
        (s.labels["operation"], s.labels["outcome"])
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "video_upstream_request_duration_seconds_count" and s.value
    }
    assert {("submit", "2xx"), ("query", "2xx")} <= calls
    free = registry.get_sample_value("video_dir_free_bytes")
    assert free is not None and free > 0
    assert "_created" not in exposition
    assert 'video_build_info{version="' in exposition
    assert f"# TYPE {LAG}" not in generate_latest(registry).decode()  # stopped with the app
