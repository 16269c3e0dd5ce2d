"""Tracing in-process (consumers/operations/tracing.py): the request's W3C trace context on every
event of its task and on its log lines, with tracing off (the default) and on (spans exported to
an in-memory exporter, FastStream's middleware included), and nothing of OpenTelemetry at work
when it is off."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faststream import TestApp
from faststream.kafka import KafkaMessage, TestKafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, StatusCode, TraceFlags

from consumers.operations import tracing
from consumers.operations.logs import JsonFormatter
from tests.engine.harness import World, request
from tests.engine.test_app import Service
from tests.factories import version_0_1_document

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"
TRACESTATE = "congo=t61rcWkgMzE"
REPLIES = r"replies\..*"


def trace_of(headers: dict[str, str]) -> tuple[str, str] | None:
    return tracing.parse_traceparent(headers.get("traceparent"))


def json_lines(caplog: pytest.LogCaptureFixture, task_id: str) -> list[dict[str, Any]]:
    """The task's log lines as LOG_FORMAT=json writes them."""
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(record)) for record in caplog.records]
    return [line for line in lines if line.get("task_id") == task_id]


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = tracing.provider([exporter], instance_id="me", version="test", batch=False)
    yield provider, exporter
    tracing.install(None)
    provider.shutdown()


@pytest.fixture
def exporter(spans: tuple[TracerProvider, InMemorySpanExporter]) -> InMemorySpanExporter:
    """Tracing on for engines built in this process, as the app installs it at start."""
    provider, exporter = spans
    tracing.install(provider)
    return exporter


# --- tracing off: the request's context, copied ---------------------------------------------


async def test_the_requests_context_is_on_every_event_and_log_line_of_its_task(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    engine = world.start_engine(reply_topic_pattern=REPLIES)
    await engine.start()
    world.sim.faults.add({"action": "503", "route": "query", "times": 1})  # a logged retry
    body = request(reply_topic="replies.shop")
    carried = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    await world.send(body, headers={**carried, "other": "x"})
    rid = body["request_id"]
    assert await world.finished(rid) == "completed"
    await world.until(lambda: len(world.kafka.events(rid, "replies.shop")) == 6, what="copies")

    status = world.kafka.headers(rid)
    assert len(status) == 5  # accepted ... completed
    completed = world.kafka.headers(rid, "video.completed")
    copies = world.kafka.headers(rid, "replies.shop")
    assert len(completed) == 1 and len(copies) == 6
    for headers in [*status, *completed, *copies]:
        assert headers == carried  # unchanged: tracing is off
    task = await world.store.find_by_request_id(rid)
    assert task is not None and task.trace_context == carried

    # A duplicate with a context of its own re-publishes the task's status, in the task's trace.
    await world.send(body, headers={"traceparent": f"00-{'1' * 32}-{'2' * 16}-01"})
    assert world.kafka.headers(rid)[-1] == carried

    lines = json_lines(caplog, task.id)
    assert any("retry" in line["message"] for line in lines)
    assert any("duplicate" in line["message"] for line in lines)
    assert lines and all(line["trace_id"] == TRACE for line in lines)
    assert not any("span_id" in line for line in lines)  # no span of ours


async def test_a_rejected_requests_status_and_dead_letter_carry_its_context(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await world.start_engine().start()
    bad = request("no-such-model")
    await world.send(bad, headers={"traceparent": TRACEPARENT})
    assert world.kafka.statuses(bad["request_id"]) == ["failed"]
    assert world.kafka.headers(bad["request_id"]) == [{"traceparent": TRACEPARENT}]
    (dead,) = world.kafka.dead_letter_headers()
    assert dead == {"traceparent": TRACEPARENT}
    (logged,) = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert json.loads(JsonFormatter().format(logged))["trace_id"] == TRACE


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": f"00-{TRACE}-{'0' * 16}-01"},  # all-zero span id
        {"traceparent": TRACEPARENT.upper(), "tracestate": TRACESTATE},
        {"traceparent": TRACEPARENT + "-x"},
    ],
)
async def test_no_valid_context_no_header_and_never_a_rejection(
    world: World, headers: dict[str, str]
) -> None:
    await world.start_engine().start()
    body = request()
    await world.send(body, headers=headers)
    assert await world.finished(body["request_id"]) == "completed"
    assert world.kafka.headers(body["request_id"]) == [{}] * 5
    task = await world.store.find_by_request_id(body["request_id"])
    assert task is not None and task.trace_context is None


async def test_off_by_default_nothing_of_opentelemetry_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    service = Service(tmp_path)
    middlewares = service.broker.middlewares
    assert not any(isinstance(m, KafkaTelemetryMiddleware) for m in middlewares)
    body = request()
    async with TestKafkaBroker(service.broker) as broker, TestApp(service.app):
        assert not tracing.enabled()
        await broker.publish(
            json.dumps(body).encode(), "video.requests", headers={"traceparent": TRACEPARENT}
        )
        await service.until_status(body["request_id"], "completed")
    # Nothing rewrote the header on its way: the request's own, on every event.
    assert {h.get("traceparent") for h in service.headers["video.status"]} == {TRACEPARENT}
    assert service.headers["video.completed"][0]["traceparent"] == TRACEPARENT
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)  # global untouched


# --- tracing on: spans of ours, in the request's trace ------------------------------------


async def test_intake_and_step_spans_are_in_the_requests_trace(
    tmp_path: Path,
    spans: tuple[TracerProvider, InMemorySpanExporter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    provider, exporter = spans
    service = Service(tmp_path, tracer_provider=provider, reply_topic_pattern=REPLIES)
    assert any(isinstance(m, KafkaTelemetryMiddleware) for m in service.broker.middlewares)
    service.sim_app.state.sim.faults.add({"action": "503", "route": "query", "times": 1})
    copies: list[dict[str, str]] = []  # their headers

    @service.broker.subscriber("replies.shop")
    async def reply(event: dict[str, Any], msg: KafkaMessage) -> None:
        copies.append(dict(msg.headers))

    body = request(reply_topic="replies.shop")
    rid = body["request_id"]
    producer = SpanContext(int(TRACE, 16), 0x00F067AA0BA902B7, True, TraceFlags(1))
    async with TestKafkaBroker(service.broker) as broker, TestApp(service.app):
        assert tracing.enabled()
        with trace.use_span(NonRecordingSpan(producer)):  # a traced producer sends it
            await broker.publish(json.dumps(body).encode(), "video.requests")
        await service.until_status(rid, "completed")
        for _ in range(100):
            if len(copies) == 6:
                break
            await asyncio.sleep(0.01)
    assert not tracing.enabled()  # off again once the app stopped

    finished: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    ours = {s.context.span_id: s for s in finished}
    (intake,) = [s for s in finished if s.name == "video.intake"]
    assert f"{intake.context.trace_id:032x}" == TRACE
    assert intake.parent is not None and intake.parent.trace_id == int(TRACE, 16)
    assert intake.attributes is not None and intake.attributes["video.request_id"] == rid
    (batch,) = [s for s in finished if s.name == "video.requests process"]  # FastStream's
    assert [link.context.span_id for link in intake.links] == [batch.context.span_id]

    # Ours are video.<step>; FastStream's are "<topic> <action>" (video.status publish, ...).
    steps = [s for s in finished if s.name.startswith("video.") and " " not in s.name]
    steps.remove(intake)
    assert {"video.submit", "video.poll", "video.fetch"} <= {s.name for s in steps}
    task = await service.store.find_by_request_id(rid)
    assert task is not None
    for step in steps:
        assert step.context.trace_id == int(TRACE, 16)
        assert step.parent is not None and step.parent.span_id == intake.context.span_id
        assert step.attributes == {
            "video.request_id": rid,
            "video.task_id": task.id,
            "video.provider": "zhipuai",
            "video.model": "cogvideox-flash",
        }
    failed_polls = [s for s in steps if s.status.status_code is StatusCode.ERROR]
    assert failed_polls and failed_polls[0].name == "video.poll"
    assert failed_polls[0].events[0].name == "exception"  # the 503, recorded

    # The task stores the intake span's context; every event names a span of this trace.
    assert trace_of(task.trace_context or {}) == (TRACE, f"{intake.context.span_id:016x}")
    events = [*service.headers["video.status"], *service.headers["video.completed"]]
    assert len(events) == 6
    for headers in events:
        ids = trace_of(headers)
        assert ids is not None and ids[0] == TRACE
        assert ours[int(ids[1], 16)].kind is trace.SpanKind.PRODUCER  # FastStream's, exported
    # Copies go past the middleware: they name the step span that published them.
    assert len(copies) == 6
    for headers in copies:
        ids = trace_of(headers)
        assert ids is not None and ids[0] == TRACE and ours[int(ids[1], 16)] in steps

    lines = json_lines(caplog, task.id)
    assert lines and all(line["trace_id"] == TRACE for line in lines)
    step_ids = {f"{s.context.span_id:016x}" for s in steps}
    assert any(line.get("span_id") in step_ids for line in lines)


async def test_a_duplicate_and_a_rejected_request_publish_in_their_own_traces(
    tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """Intake publishes these outside any span of the trace they belong to (the batch's span
    is current): each event still goes out in its own trace, under FastStream's producer span."""
    provider, exporter = spans
    service = Service(tmp_path, tracer_provider=provider)
    body, bad = request(), request("no-such-model")
    first, second = "1" * 32, "2" * 32

    async def send(value: dict[str, Any], trace_id: str) -> None:
        producer = SpanContext(int(trace_id, 16), 0x00F067AA0BA902B7, True, TraceFlags(1))
        with trace.use_span(NonRecordingSpan(producer)):
            await broker.publish(json.dumps(value).encode(), "video.requests")

    async with TestKafkaBroker(service.broker) as broker, TestApp(service.app):
        await send(body, first)
        await service.until_status(body["request_id"], "completed")
        await send(body, second)  # a duplicate: its task's status again, in the task's trace
        await send(bad, second)
    ours = {s.context.span_id: s for s in exporter.get_finished_spans()}

    def traced(topic: str, request_id: str | None = None) -> list[str]:
        found = []
        for event, headers in zip(service.published[topic], service.headers[topic], strict=True):
            if request_id is None or event["request_id"] == request_id:
                ids = trace_of(headers)
                assert ids is not None and ours[int(ids[1], 16)].kind is trace.SpanKind.PRODUCER
                found.append(ids[0])
        return found

    assert traced("video.status", body["request_id"]) == [first] * 6  # the last: the duplicate's
    assert traced("video.status", bad["request_id"]) == [second]
    assert traced("video.requests.dlq") == [second]  # the only dead letter: the bad request's


async def test_reply_copies_name_the_step_span(
    world: World, exporter: InMemorySpanExporter
) -> None:
    await world.start_engine(reply_topic_pattern=REPLIES).start()
    body = request(reply_topic="replies.shop")
    rid = body["request_id"]
    await world.send(body, headers={"traceparent": TRACEPARENT, "tracestate": TRACESTATE})
    assert await world.finished(rid) == "completed"
    await world.until(lambda: len(world.kafka.events(rid, "replies.shop")) == 6, what="copies")
    task = await world.store.find_by_request_id(rid)
    assert task is not None and (task.trace_context or {})["tracestate"] == TRACESTATE
    steps = {
        s.context.span_id: s.name
        for s in exporter.get_finished_spans()
        if s.name in ("video.submit", "video.poll", "video.fetch")
    }
    for headers in world.kafka.headers(rid, "replies.shop"):
        ids = trace_of(headers)
        assert ids is not None and ids[0] == TRACE and int(ids[1], 16) in steps
        assert headers["tracestate"] == TRACESTATE  # the vendors' state, carried on


async def test_a_request_without_a_context_starts_a_trace_of_its_own(
    world: World, exporter: InMemorySpanExporter
) -> None:
    await world.start_engine().start()
    bodies = [request(), request()]
    await world.send(*bodies)
    traces = []
    for body in bodies:
        assert await world.finished(body["request_id"]) == "completed"
        ids = {trace_of(h) for h in world.kafka.headers(body["request_id"])}
        assert None not in ids
        (trace_id,) = {i[0] for i in ids if i}  # one trace for all of the task's events
        task = await world.store.find_by_request_id(body["request_id"])
        assert task is not None and tracing.trace_id(task.trace_context) == trace_id
        traces.append(trace_id)
    assert traces[0] != traces[1]  # a trace per request, not per batch
    intakes = [s for s in exporter.get_finished_spans() if s.name == "video.intake"]
    assert {f"{s.context.trace_id:032x}" for s in intakes} == set(traces)
    assert all(s.parent is None for s in intakes)  # roots


async def test_a_rejected_request_is_traced_too(
    world: World, exporter: InMemorySpanExporter
) -> None:
    await world.start_engine().start()
    bad = request("no-such-model")
    await world.send(bad, headers={"traceparent": TRACEPARENT})
    (intake,) = [s for s in exporter.get_finished_spans() if s.name == "video.intake"]
    assert intake.attributes is not None
    assert intake.attributes["video.error_code"] == "unknown_model"
    expected = (TRACE, f"{intake.context.span_id:016x}")
    (status,) = world.kafka.headers(bad["request_id"])
    (dead,) = world.kafka.dead_letter_headers()
    assert trace_of(status) == expected and trace_of(dead) == expected


async def test_a_task_stored_by_an_older_version_runs_without_spans_or_headers(
    world: World, exporter: InMemorySpanExporter
) -> None:
    engine = world.start_engine()
    document = version_0_1_document(request_id="old-1")  # no trace_context: it loads
    world.store._tasks[document["_id"]] = document
    world.store._by_request["old-1"] = document["_id"]
    await engine.start()
    await engine.leases.claim_expired()
    assert await world.finished("old-1") == "completed"
    assert all("traceparent" not in h for h in world.kafka.headers("old-1"))
    assert not [s for s in exporter.get_finished_spans() if s.name.startswith("video.")]


async def test_cancel_and_takeover_lines_carry_the_tasks_trace(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    # Logged outside the task's steps (the cancel desk, the lease keeper), yet about the task.
    caplog.set_level(logging.INFO)
    first = world.start_engine(instance_id="first")
    await first.start()
    world.sim.config = world.sim.config.updated({"timing": {"queued_s": 30, "running_s": 30}})
    early, running, moved = request(), request(), request()
    assert await first.cancels.cancel(early["request_id"], None) == "remembered"
    for body in (early, running, moved):
        await world.send(body, to=first, headers={"traceparent": TRACEPARENT})
    await world.until(lambda: "submitted" in world.kafka.statuses(running["request_id"]))
    await first.cancels.cancel(running["request_id"], None)
    assert await world.finished(running["request_id"]) == "cancelled"
    await first.cancels.cancel(running["request_id"], None)  # again: already over
    await first.stop(grace_s=5)
    second = world.start_engine(instance_id="second")
    await second.start()
    await second.leases.claim_expired()  # takes `moved` over

    for message in ("cancelled before it came", "ignored: already", "took over"):
        (logged,) = [r for r in caplog.records if message in r.getMessage()]
        line = json.loads(JsonFormatter().format(logged))
        assert line["trace_id"] == TRACE and "task_id" in line, message
