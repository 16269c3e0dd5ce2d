"""Tracing: the W3C trace context a task carries from its request to its events, and the
OpenTelemetry set-up that adds spans of our own when an operator asks for them.

Why a context is carried even with tracing off: a producer that sends a request with a
`traceparent` header must find every event of that task, and every log line about it, in its
trace, whether or not this service exports spans. So the request's `traceparent` (W3C
trace-context, version 00, checked strictly: an invalid one is ignored as if absent, never a
reason to reject the request) and its `tracestate` (kept when valid too) are stored on the task
(`Task.trace_context`), and every event published for it carries them as Kafka headers: its
status and completed events, their reply-topic copies, and for a rejected request its `failed`
status and its dead letter. Log lines of a task carry the trace id (`consumers.operations.logs`).

Off (the default), that is all: nothing of OpenTelemetry runs while the service works, a header
copy per event is the cost (the service's CPU per task is budgeted tightly). On, FastStream's
`KafkaTelemetryMiddleware` traces the broker (a span per batch consumed, a producer span per
event published) and:

- each request gets a `video.intake` span, a child of the request's context, or the root of a
  new trace when the request has none (linked to the batch's span either way); the task stores
  that span's context, so all its later events and spans are in the same trace;
- each engine step runs in a `video.<step>` span (`video.submit`, `video.poll`, `video.fetch`,
  `video.cancel`, ...) whose parent is that stored context, with the task's ids as attributes
  (`video.request_id`, `video.task_id`, `video.provider`, `video.model`) and its errors
  recorded; log lines in it carry its `span_id`;
- an event's `traceparent` names a span of ours: FastStream's producer span (a child of the step
  or intake span) on the standard topics, the step or intake span itself on reply copies.

A task stored without a trace context (by an older version) gets no spans and no headers.

The rule (`from_environment`), on OpenTelemetry's standard variables:

- `OTEL_SDK_DISABLED=true`: off, whatever else is set.
- `OTEL_TRACES_EXPORTER`: a comma-separated list of `otlp` (OTLP over HTTP/protobuf) and
  `console` (one JSON line per span on stdout) turns tracing on; `none` keeps it off; anything
  else stops the start, naming the variable.
- unset `OTEL_TRACES_EXPORTER`: on, with `otlp`, when `OTEL_EXPORTER_OTLP_ENDPOINT` or
  `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; off otherwise.
- `OTEL_EXPORTER_OTLP_PROTOCOL` / `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, when set, must be
  `http/protobuf` (the exporter shipped); the start stops otherwise.
- `OTEL_SERVICE_NAME` (default `video-service`), `OTEL_RESOURCE_ATTRIBUTES`, the exporter's
  `OTEL_EXPORTER_OTLP_*` (headers, timeout, certificates, compression), the sampler's
  `OTEL_TRACES_SAMPLER[_ARG]` and the batch processor's `OTEL_BSP_*` work as OpenTelemetry
  documents them.

The provider is the app's own, not OpenTelemetry's global one: nothing else in the process is
traced through it, and it is shut down (its last spans exported) when the app stops.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from os import environ as os_environ
from typing import TYPE_CHECKING

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from consumers.operations.logs import TaskLike, bind_task, task_context

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
SERVICE_NAME = "video-service"
EXPORTERS = ("otlp", "console")
OTLP_PROTOCOL = "http/protobuf"

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")
# tracestate list members (W3C trace-context, section 3.3): key=value, at most 32 of them.
_KEY_CHARS = r"[a-z0-9_\-*/]"
_MEMBER = re.compile(
    rf"(?P<key>[a-z]{_KEY_CHARS}{{0,255}}|[a-z0-9]{_KEY_CHARS}{{0,240}}@[a-z]{_KEY_CHARS}{{0,13}})"
    r"=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
)
TRACESTATE_MAX_MEMBERS = 32
TRACESTATE_MAX_CHARS = 512

_PROPAGATOR = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None  # set by `install`: None is tracing off
_NOTHING = nullcontext()


# --- the W3C trace context ----------------------------------------------------------------


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) of a valid version-00 `traceparent`, else None: lower-case
    hex of the exact lengths, neither id all zeros."""
    match = _TRACEPARENT.fullmatch(value or "")
    if match is None or not int(match[1], 16) or not int(match[2], 16):
        return None
    return match[1], match[2]


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def valid_tracestate(value: str | None) -> str | None:
    """`tracestate` without its empty members, if it is valid; None otherwise (or when empty)."""
    if not value or len(value) > TRACESTATE_MAX_CHARS:
        return None
    members = [member.strip(" \t") for member in value.split(",")]
    members = [member for member in members if member]
    if not members or len(members) > TRACESTATE_MAX_MEMBERS:
        return None
    keys = []
    for member in members:
        match = _MEMBER.fullmatch(member)
        if match is None:
            return None
        keys.append(match["key"])
    return ",".join(members) if len(set(keys)) == len(keys) else None


def carried(headers: Mapping[str, str | None]) -> dict[str, str]:
    """The trace context of a request's headers, to be carried on: its `traceparent` if valid,
    with its `tracestate` if that is valid too; empty otherwise."""
    traceparent = headers.get(TRACEPARENT)
    if traceparent is None or parse_traceparent(traceparent) is None:
        return {}
    tracestate = valid_tracestate(headers.get(TRACESTATE))
    return {TRACEPARENT: traceparent, **({TRACESTATE: tracestate} if tracestate else {})}


def trace_id(trace_context: Mapping[str, str] | None) -> str | None:
    parsed = parse_traceparent((trace_context or {}).get(TRACEPARENT))
    return parsed[0] if parsed else None


# --- on or off ------------------------------------------------------------------------------


def from_environment(
    *, instance_id: str, version: str, environ: Mapping[str, str] = os_environ
) -> TracerProvider | None:
    """The tracer provider the variables ask for (the rule in the module docstring), or None
    when tracing is off. Raises ValueError naming a variable whose value cannot be used."""
    exporters = span_exporters(environ)
    return provider(exporters, instance_id=instance_id, version=version) if exporters else None


def span_exporters(environ: Mapping[str, str] = os_environ) -> list[SpanExporter]:
    """The exporters the variables name (the rule in the module docstring); none: off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip()
    names = [n.strip().lower() for n in named.split(",") if n.strip()]
    unknown = sorted(set(names) - {*EXPORTERS, "none"})
    if unknown:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not available here; "
            f"use {', '.join(EXPORTERS)} or none"
        )
    if not named and (
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = ["otlp"]
    return [_exporter(name, environ) for name in dict.fromkeys(names) if name != "none"]


def _exporter(name: str, environ: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(formatter=lambda span: span.to_json(indent=None) + "\n")
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = environ.get(variable, "").strip()
        if protocol and protocol != OTLP_PROTOCOL:
            raise ValueError(
                f"{variable}: only {OTLP_PROTOCOL} is available here, not {protocol!r} (the "
                "collector's OTLP/HTTP port, usually 4318)"
            )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout ...: OTEL_EXPORTER_OTLP_*


def provider(
    exporters: list[SpanExporter],
    *,
    instance_id: str,
    version: str,
    batch: bool = True,
) -> TracerProvider:
    """A provider exporting to `exporters`, in batches (`batch=False`: each span as it ends,
    for tests). The resource names the service, its version and the instance;
    OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override them."""
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    ours = {
        "service.name": SERVICE_NAME,
        "service.version": version,
        "service.instance.id": instance_id,
    }
    resource = Resource.create(ours).merge(OTELResourceDetector().detect())
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in exporters:
        processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        tracer_provider.add_span_processor(processor)
    return tracer_provider


def install(tracer_provider: TracerProvider | None) -> None:
    """Spans of ours from now on come from `tracer_provider`; None turns them off."""
    global _tracer
    _tracer = tracer_provider.get_tracer("video-service") if tracer_provider else None


def enabled() -> bool:
    return _tracer is not None


# --- spans ----------------------------------------------------------------------------------


@contextmanager
def intake_span(request_headers: Mapping[str, str | None]) -> Iterator[dict[str, str]]:
    """Around the intake of one request: gives the trace context its task stores and its
    rejection's events carry (tracing off: the request's own, when valid). Lines logged inside
    carry the trace id (and the span id)."""
    request_context = carried(request_headers)
    if _tracer is None:
        with task_context(trace_id=trace_id(request_context)):
            yield request_context
        return
    batch = trace.get_current_span().get_span_context()
    with _tracer.start_as_current_span(
        "video.intake",
        context=_PROPAGATOR.extract(request_context),  # empty: the root of a new trace
        kind=trace.SpanKind.CONSUMER,
        links=[trace.Link(batch)] if batch.is_valid else None,
    ) as span:
        ids = span.get_span_context()
        with task_context(trace_id=f"{ids.trace_id:032x}", span_id=f"{ids.span_id:016x}"):
            yield _context_of(span)


def step_span(name: str, task: TaskLike) -> AbstractContextManager[None]:
    """Around an engine step of `task`: a `video.<name>` span, a child of the task's stored
    context, with its ids as attributes. An exception leaving it is recorded on it. Lines
    logged inside get its `span_id` (in the current log context)."""
    if _tracer is None or not task.trace_context:
        return _NOTHING  # off: not even a generator per step
    return _step_span(_tracer, name, task, task.trace_context)


@contextmanager
def _step_span(
    tracer: trace.Tracer, name: str, task: TaskLike, trace_context: Mapping[str, str]
) -> Iterator[None]:
    with tracer.start_as_current_span(
        f"video.{name}",
        context=_PROPAGATOR.extract(trace_context),
        attributes={
            "video.request_id": task.request_id,
            "video.task_id": task.id,
            "video.provider": task.provider,
            "video.model": task.model,
        },
    ) as span:
        bind_task(span_id=f"{span.get_span_context().span_id:016x}")
        yield


def set_attributes(**fields: str | None) -> None:
    """`video.<name>` attributes on the current span, when tracing is on."""
    if _tracer is not None:
        span = trace.get_current_span()
        for name, value in fields.items():
            if value:
                span.set_attribute(f"video.{name}", value)


def record_error(exc: BaseException) -> None:
    """An error handled inside a span (a retry, a task failed) marks it, when tracing is on."""
    if _tracer is not None:
        span = trace.get_current_span()
        span.record_exception(exc)
        span.set_status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")


# --- events ---------------------------------------------------------------------------------


def event_headers(trace_context: Mapping[str, str] | None) -> dict[str, str]:
    """The trace headers of an event of a task with this stored context: the span at work on
    the task when it is in that trace (tracing on), the stored context otherwise."""
    stored = dict(trace_context or {})
    if _tracer is None or not stored:
        return stored
    current = trace.get_current_span().get_span_context()
    if not current.is_valid or f"{current.trace_id:032x}" != trace_id(stored):
        return stored
    return _context_of(trace.get_current_span())


def publishing(headers: Mapping[str, str]) -> AbstractContextManager[None]:
    """Around the publish of an event with these headers: FastStream's producer span becomes a
    child of the span they name, in the task's trace (its middleware then writes that span's
    context into the headers)."""
    if _tracer is None or TRACEPARENT not in headers:
        return _NOTHING
    return _attached(headers)


@contextmanager
def _attached(headers: Mapping[str, str]) -> Iterator[None]:
    token = context.attach(_PROPAGATOR.extract(headers))
    try:
        yield
    finally:
        context.detach(token)


def _context_of(span: trace.Span) -> dict[str, str]:
    """The W3C headers naming `span`."""
    ids = span.get_span_context()
    headers = {TRACEPARENT: format_traceparent(ids.trace_id, ids.span_id, ids.trace_flags)}
    if ids.trace_state:
        headers[TRACESTATE] = ids.trace_state.to_header()
    return headers
