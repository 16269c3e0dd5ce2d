"""The W3C trace-context helpers and the rule that turns tracing on
(consumers/operations/tracing.py). Tracing at work is tested in tests/engine/test_tracing.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from consumers.operations import tracing

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{SPAN}-01"


def test_a_valid_traceparent_gives_its_ids() -> None:
    assert tracing.parse_traceparent(TRACEPARENT) == (TRACE, SPAN)
    assert tracing.parse_traceparent(f"00-{TRACE}-{SPAN}-00") == (TRACE, SPAN)  # not sampled


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        f"01-{TRACE}-{SPAN}-01",  # a version this service does not know
        f"ff-{TRACE}-{SPAN}-01",  # the forbidden version
        f"00-{TRACE.upper()}-{SPAN}-01",  # upper-case hex
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"00-{TRACE[:-1]}-{SPAN}-01",  # short trace id
        f"00-{TRACE}-{SPAN}0-01",  # long span id
        f"00-{TRACE}-{SPAN}-1",  # short flags
        f"00-{TRACE}-{SPAN}-01-extra",  # fields after the flags
        f" {TRACEPARENT}",
        f"{TRACEPARENT}\n",
        f"00-{TRACE[:-1]}g-{SPAN}-01",  # not hex
        f"00_{TRACE}_{SPAN}_01",
    ],
)
def test_an_invalid_traceparent_is_none(value: str | None) -> None:
    assert tracing.parse_traceparent(value) is None


def test_format_writes_what_parse_reads() -> None:
    written = tracing.format_traceparent(int(TRACE, 16), int(SPAN, 16), 1)
    assert written == TRACEPARENT
    assert tracing.format_traceparent(1, 2, 0) == f"00-{1:032x}-{2:016x}-00"
    assert tracing.parse_traceparent(tracing.format_traceparent(1, 2, 0)) == (
        f"{1:032x}",
        f"{2:016x}",
    )


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("congo=t61rcWkgMzE", "congo=t61rcWkgMzE"),
        ("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ("tenant@vendor=x y", "tenant@vendor=x y"),  # a multi-tenant key; a space inside a value
        (" a=1 ,, b=2\t", "a=1,b=2"),  # white space around members and empty members dropped
        (",".join(f"k{i}=v" for i in range(32)), ",".join(f"k{i}=v" for i in range(32))),
    ],
)
def test_a_valid_tracestate_is_kept(value: str, kept: str) -> None:
    assert tracing.valid_tracestate(value) == kept


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        " , ",
        "Rojo=1",  # upper-case key
        "1abc=1",  # a simple key starts with a letter
        "a=",  # empty value
        "a=b=c",  # '=' inside a value
        "a=b,a=c",  # the same key twice
        "a=\u00e9",  # not ASCII
        ",".join(f"k{i}=v" for i in range(33)),  # more than 32 members
        "a=" + "x" * 600,  # longer than 512 characters
    ],
)
def test_an_invalid_tracestate_is_none(value: str | None) -> None:
    assert tracing.valid_tracestate(value) is None


def test_carried_keeps_a_valid_context_and_drops_the_rest() -> None:
    both = {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE", "x": "y"}
    assert tracing.carried(both) == {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"}
    bad_state = {"traceparent": TRACEPARENT, "tracestate": "Bad=1"}
    assert tracing.carried(bad_state) == {"traceparent": TRACEPARENT}
    # Without a valid traceparent the tracestate means nothing (W3C): nothing is carried.
    assert tracing.carried({"traceparent": "00-xyz", "tracestate": "congo=1"}) == {}
    assert tracing.carried({"traceparent": None}) == {}
    assert tracing.carried({"Traceparent": TRACEPARENT}) == {}  # header names are exact
    assert tracing.trace_id({"traceparent": TRACEPARENT}) == TRACE
    assert tracing.trace_id(None) is None and tracing.trace_id({}) is None


# --- the rule -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES from the process."""
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"OTEL_TRACES_EXPORTER": "none"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"},
        {"OTEL_SDK_DISABLED": " TRUE ", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
        {"OTEL_SERVICE_NAME": "x"},  # naming the service alone exports nothing
    ],
)
def test_tracing_is_off_unless_asked_for(environ: dict[str, str]) -> None:
    assert tracing.span_exporters(environ) == []
    assert tracing.from_environment(instance_id="i", version="1", environ=environ) is None


@pytest.mark.parametrize(
    ("environ", "kinds"),
    [
        ({"OTEL_TRACES_EXPORTER": "console"}, [ConsoleSpanExporter]),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, [OTLPSpanExporter]),
        ({"OTEL_TRACES_EXPORTER": "OTLP, console,otlp"}, [OTLPSpanExporter, ConsoleSpanExporter]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, [OTLPSpanExporter]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, [OTLPSpanExporter]),
        (  # an explicit choice wins over the endpoint
            {"OTEL_TRACES_EXPORTER": "console", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            [ConsoleSpanExporter],
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            [OTLPSpanExporter],
        ),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "console"}, [ConsoleSpanExporter]),
    ],
)
def test_the_variables_choose_the_exporters(environ: dict[str, str], kinds: list[type]) -> None:
    assert [type(e) for e in tracing.span_exporters(environ)] == kinds


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER: zipkin"),
        ({"OTEL_TRACES_EXPORTER": "otlp,jaeger"}, "OTEL_TRACES_EXPORTER: jaeger"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: only http/protobuf",
        ),
    ],
)
def test_a_value_that_cannot_be_used_stops_the_start(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        tracing.from_environment(instance_id="i", version="1", environ=environ)


@pytest.fixture
def providers() -> Iterator[list[TracerProvider]]:
    made: list[TracerProvider] = []
    yield made
    for provider in made:
        provider.shutdown()


def test_the_resource_names_the_service(
    monkeypatch: pytest.MonkeyPatch, providers: list[TracerProvider]
) -> None:
    environ = {"OTEL_TRACES_EXPORTER": "console"}
    provider = tracing.from_environment(instance_id="host-1", version="0.2.0", environ=environ)
    assert provider is not None
    providers.append(provider)
    attributes = provider.resource.attributes
    assert attributes["service.name"] == "video-service"
    assert attributes["service.version"] == "0.2.0"
    assert attributes["service.instance.id"] == "host-1"

    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs,deployment=eu")
    provider = tracing.from_environment(instance_id="host-1", version="0.2.0", environ=environ)
    assert provider is not None
    providers.append(provider)
    assert provider.resource.attributes["service.name"] == "from-attrs"
    assert provider.resource.attributes["deployment"] == "eu"

    monkeypatch.setenv("OTEL_SERVICE_NAME", "videos-eu")  # wins over the attributes (spec)
    provider = tracing.from_environment(instance_id="host-1", version="0.2.0", environ=environ)
    assert provider is not None
    providers.append(provider)
    assert provider.resource.attributes["service.name"] == "videos-eu"


def test_spans_and_helpers_do_nothing_while_tracing_is_off() -> None:
    assert not tracing.enabled()
    stored = {"traceparent": TRACEPARENT}
    with tracing.intake_span({"traceparent": TRACEPARENT, "tracestate": "Bad"}) as context:
        assert context == stored  # the request's own, unchanged
    assert tracing.event_headers(stored) == stored
    assert tracing.event_headers(None) == {}
    tracing.set_attributes(request_id="r")  # no span to set them on: no error either
    tracing.record_error(RuntimeError("x"))
