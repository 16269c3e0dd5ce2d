"""Observability end to end, on the real servers with the service as a real process:

- every query of the Grafana dashboard and of the alert rules uses only metrics a running
  instance exports (its live /metrics);
- a real Prometheus (Debian's package, `make prometheus`) scrapes a running instance, loads
  ops/prometheus/alerts.yml, evaluates every dashboard query without error, and fires
  VideoSubmitOutcomeUnknown once the simulator makes a submit's outcome unknown;
- the request topic's consumer lag, as the service exports it, while intake is paused;
- LOG_FORMAT=json: every line of a whole run (DEBUG, SASL, JWT, signed result URLs, failures,
  dead letters, shutdown) parses as JSON, lines of a task's steps carry its ids, and no key,
  token, password or URL signature appears;
- tracing, in the same run (OTEL_EXPORTER_OTLP_ENDPOINT set: a stand-in OTLP/HTTP collector): a
  request's `traceparent` gives its events' Kafka headers and its log lines its trace id, and
  the spans of its intake and steps reach the collector in that trace.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.conftest import KAFKA, Deployment, Simulator
from tests.e2e.models import marked
from tests.harness import ServiceProcess, free_port, request, send
from tests.observability import (
    PROMETHEUS_OWN,
    RULES,
    alert_rules,
    dashboard_queries,
    exported_names,
    metric_names,
    prometheus_binaries,
    rule_queries,
    substitute,
)

pytestmark = pytest.mark.integration

LAG = "video_consumer_lag_messages"


def rid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def samples(exposition: str, name: str) -> dict[str, float]:
    """`{labels}` text -> value, for the samples of one series name."""
    found = {}
    for line in exposition.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels, value = line[len(name) :].rsplit(" ", 1)
            found[labels] = float(value)
    return found


async def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


# --- the dashboard's and the rules' metrics exist ------------------------------------------


async def test_the_dashboard_and_the_rules_use_only_exported_metrics(
    deployment: Deployment, sim: Simulator
) -> None:
    await deployment.collector.start()
    instance = await deployment.start_instance()
    done, bad = rid("obs"), rid("obs-bad")
    await send(
        KAFKA,
        deployment.topics.requests,
        [
            request(done, "cogvideox-flash", marked("cogvideox-flash", done)),
            (bad, b"{not json"),
        ],
    )
    await send(KAFKA, deployment.topics.cancel, [(done, json.dumps({"request_id": "x"}).encode())])
    collector = deployment.collector
    await collector.wait_for(lambda: collector.events(done, deployment.topics.completed), 30)
    await collector.wait_for(lambda: collector.events(bad, deployment.topics.dlq), 30)

    async def lag_sampled() -> str | None:
        text = await instance.metrics()
        return text if len(samples(text, LAG)) == 3 else None  # TOPIC_PARTITIONS=3

    exposition: str = await until(lag_sampled, 20, "the consumer lag of 3 partitions")
    exported = exported_names(exposition)
    queries = {**dashboard_queries(), **rule_queries()}
    assert len(queries) > 40
    for where, expr in queries.items():
        used = metric_names(expr)
        assert used, f"{where}: no metric in {expr!r}"
        missing = used - exported - PROMETHEUS_OWN
        assert not missing, f"{where} uses {sorted(missing)}, which the service does not export"

    assert "_created" not in exposition
    assert re.search(r'^video_build_info\{version="[^"]+"\} 1\.0$', exposition, re.M)
    assert set(samples(exposition, LAG).values()) == {0.0}  # all committed
    calls = samples(exposition, "video_upstream_request_duration_seconds_count")
    assert any('operation="submit",outcome="2xx",provider="zhipuai"' in k for k in calls)
    assert any('operation="query",outcome="2xx",provider="zhipuai"' in k for k in calls)
    (free,) = samples(exposition, "video_dir_free_bytes").values()
    assert free > 0


# --- the consumer lag -----------------------------------------------------------------------


async def test_the_consumer_lag_counts_requests_waiting_while_intake_is_paused(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing={"queued_s": 0.5, "running_s": 12.0})
    await deployment.collector.start()
    instance = await deployment.start_instance(MAX_IN_FLIGHT="2")
    # A rebalance hands partitions out unpaused: let the group settle before intake pauses.
    await deployment.wait_for_group(1)
    first = [rid("lag") for _ in range(2)]
    later = [rid("lag") for _ in range(5)]
    model = "cogvideox-flash"
    await send(KAFKA, deployment.topics.requests, [request(r, model, {"prompt": r}) for r in first])
    collector = deployment.collector
    await collector.wait_for(lambda: all(collector.events(r) for r in first), 20)

    async def paused() -> bool:
        return "video_intake_paused 1.0" in await instance.metrics()

    await until(paused, 10, "intake paused")
    await send(KAFKA, deployment.topics.requests, [request(r, model, {"prompt": r}) for r in later])

    async def waiting() -> bool:
        return sum(samples(await instance.metrics(), LAG).values()) == len(later)

    await until(waiting, 15, f"a lag of {len(later)}")  # sampled every 5 s
    await sim.configure(timing={"queued_s": 0.1, "running_s": 0.2})
    await collector.wait_for(
        lambda: all(collector.events(r, deployment.topics.completed) for r in first + later), 60
    )

    async def caught_up() -> bool:
        lags = samples(await instance.metrics(), LAG)
        return len(lags) == 3 and sum(lags.values()) == 0

    await until(caught_up, 15, "no lag once all are taken in")


# --- a real Prometheus ----------------------------------------------------------------------


class Prometheus:
    """Prometheus' server in its own process, its own config and data in a temporary directory."""

    def __init__(self, binary: str, tmp_path: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.directory = tmp_path / "prometheus"
        self.directory.mkdir()
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": "video-service", "static_configs": [{"targets": targets}]}
            ],
        }
        (self.directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = self.directory / "prometheus.log"
        self.command = [
            binary,
            f"--config.file={self.directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self.client = httpx.AsyncClient(base_url=self.url, timeout=5)

    async def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)

        async def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                return (await self.client.get("/-/ready")).status_code == 200
            except httpx.HTTPError:
                return False

        await until(ready, 30, "prometheus ready")

    async def api(self, path: str, **params: str) -> Any:
        response = await self.client.get(f"/api/v1/{path}", params=params)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        data = await self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    async def stop(self) -> None:
        await self.client.aclose()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def prometheus_binary() -> str:
    found = prometheus_binaries()
    if isinstance(found, str):
        pytest.skip(found)
    return found[1]


@pytest.fixture
async def prometheus_for(
    prometheus_binary: str, tmp_path: Path
) -> AsyncIterator[Callable[[ServiceProcess], Any]]:
    started: list[Prometheus] = []

    async def start(instance: ServiceProcess) -> Prometheus:
        server = Prometheus(prometheus_binary, tmp_path, [f"127.0.0.1:{instance.metrics_port}"])
        started.append(server)
        await server.start()
        return server

    yield start
    for server in started:
        await server.stop()


async def test_a_real_prometheus_fires_an_alert_on_an_unknown_submit(
    deployment: Deployment, sim: Simulator, prometheus_for: Callable[[ServiceProcess], Any]
) -> None:
    await deployment.collector.start()
    instance = await deployment.start_instance(SUBMIT_RESOLVE_AFTER_S="5")
    prometheus: Prometheus = await prometheus_for(instance)
    unknown = (
        'video_upstream_submit_outcome_unknown_total{provider="aliyun",model="wanx2.1-t2v-turbo"}'
    )

    async def scraped() -> bool:
        up = await prometheus.query('up{job="video-service"}')
        return bool(up) and up[0]["value"][1] == "1" and bool(await prometheus.query(unknown))

    await until(scraped, 20, "the service scraped")
    assert (await prometheus.query(unknown))[0]["value"][1] == "0"  # exported at zero

    async def evaluated() -> list[dict[str, Any]] | None:
        (group,) = (await prometheus.api("rules"))["groups"]
        rules: list[dict[str, Any]] = group["rules"]
        return rules if all(r["health"] == "ok" for r in rules) else None

    rules = await until(evaluated, 20, "every rule evaluated")
    assert sorted(r["name"] for r in rules) == sorted(r["alert"] for r in alert_rules())
    firing = [a for a in (await prometheus.api("alerts"))["alerts"] if a["state"] == "firing"]
    assert firing == [], firing

    # Every dashboard query is valid PromQL to this Prometheus.
    for where, expr in dashboard_queries().items():
        if expr.startswith("label_values("):
            continue  # a Grafana function, not PromQL (its metric is checked elsewhere)
        response = await prometheus.client.get("/api/v1/query", params={"query": substitute(expr)})
        assert response.json()["status"] == "success", (where, response.text)

    # A submit that DashScope takes, and then answers with a 500: its outcome is unknown.
    request_id = rid("unknown")
    model = "wanx2.1-t2v-turbo"
    await sim.fault(
        vendor="dashscope", route="submit", action="500", stage="after", times=1,
        prompt_contains=f"[{request_id}]",
    )  # fmt: skip
    await send(
        KAFKA, deployment.topics.requests, [request(request_id, model, marked(model, request_id))]
    )

    async def fired() -> list[dict[str, Any]]:
        alerts = (await prometheus.api("alerts"))["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "VideoSubmitOutcomeUnknown" and a["state"] == "firing"
        ]

    (alert,) = await until(fired, 30, "VideoSubmitOutcomeUnknown firing")
    assert alert["labels"] == {
        "alertname": "VideoSubmitOutcomeUnknown",
        "provider": "aliyun",
        "model": model,
        "severity": "ticket",
    }
    assert "SUBMIT_RESOLVE_AFTER_S" in alert["annotations"]["runbook"]
    outcomes = await prometheus.query(
        'sum by (outcome) (video_upstream_request_duration_seconds_count{operation="submit"})'
    )
    assert "5xx" in {o["metric"]["outcome"] for o in outcomes}
    # The service looks the task up and adopts it: the request still completes, paid once.
    collector = deployment.collector
    await collector.wait_for(lambda: collector.events(request_id, deployment.topics.completed), 60)
    assert await sim.generations(prompt_contains=f"[{request_id}]") == 1


# --- LOG_FORMAT=json --------------------------------------------------------------------------

SECRET = "e2e-json-logs-secret-of-at-least-32-bytes"
SASL_PASSWORD = "alice-secret"


def token(user: str) -> str:
    claims = {"sub": user, "tenant_id": "t-1", "exp": int(time.time()) + 300}
    return jwt.encode(claims, SECRET, algorithm="HS256")


class OtlpCollector:
    """A stand-in OpenTelemetry collector: the spans POSTed to /v1/traces (OTLP/HTTP, protobuf),
    as (trace id, span id, name, service name), all hex."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str, str]] = []
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # the exporter keeps its connection

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest.FromString(body)
                    for resource_spans in request.resource_spans:
                        attributes = resource_spans.resource.attributes
                        service = next(
                            a.value.string_value for a in attributes if a.key == "service.name"
                        )
                        for scope in resource_spans.scope_spans:
                            spans.extend(
                                (span.trace_id.hex(), span.span_id.hex(), span.name, service)
                                for span in scope.spans
                            )
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[OtlpCollector]:
        collector = cls()
        thread = threading.Thread(target=collector.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield collector
        finally:
            collector.server.shutdown()
            collector.server.server_close()


@pytest.fixture
def otlp() -> Iterator[OtlpCollector]:
    with OtlpCollector.running() as collector:
        yield collector


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
REFUSED_TRACE = "0af7651916cd43dd8448eb211c80319c"


async def test_json_logs_of_a_whole_run_parse_line_by_line_and_leak_nothing(
    deployment: Deployment, sim: Simulator, otlp: OtlpCollector
) -> None:
    sasl_port = os.environ.get("KAFKA_SASL_PORT", "9094")
    await deployment.collector.start()
    instance = await deployment.start_instance(
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,  # tracing on: its spans, and its log fields
        LOG_FORMAT="json",
        LOG_LEVEL="DEBUG",
        AUTH_MODE="jwt",
        AUTH_JWT_SECRET=SECRET,
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{sasl_port}",
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="alice",
        KAFKA_SASL_PASSWORD=SASL_PASSWORD,
    )
    ok = {model: rid("json") for model in ("wanx2.1-t2v-turbo", "cogvideox-flash")}
    refused, unauthorized, garbage = rid("mod"), rid("unauth"), rid("garbage")
    await sim.fault(vendor="dashscope", route="query", action="503", times=1)  # a retry
    await sim.fault(
        vendor="dashscope", route="submit", action="moderation", prompt_contains=f"[{refused}]"
    )
    tokens = {r: token("u-1") for r in [*ok.values(), refused]}
    traced = ok["wanx2.1-t2v-turbo"]  # sent by a traced producer
    context = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01", "tracestate": "congo=t61rcWkg"}
    for model, request_id in [*ok.items(), ("wanx2.1-t2v-turbo", refused)]:
        await send(
            KAFKA,
            deployment.topics.requests,
            [request(request_id, model, marked(model, request_id))],
            headers={
                "authorization": f"Bearer {tokens[request_id]}",
                **(context if request_id == traced else {}),
            },
        )
    bad_token = token("u-2")[:-4] + "AAAA"  # a bad signature: unauthorized
    await send(
        KAFKA,
        deployment.topics.requests,
        [request(unauthorized, "cogvideox-flash", {"prompt": "x"})],
        headers={
            "authorization": f"Bearer {bad_token}",
            "traceparent": f"00-{REFUSED_TRACE}-b7ad6b7169203331-01",
        },
    )
    await send(KAFKA, deployment.topics.requests, [(garbage, b"\xff{not json")])
    collector = deployment.collector
    await collector.wait_for(
        lambda: all(collector.events(r, deployment.topics.completed) for r in ok.values()), 60
    )
    await collector.wait_for(
        lambda: any(e["status"] == "failed" for e in collector.events(refused)), 30
    )
    await collector.wait_for(
        lambda: all(collector.events(r, deployment.topics.dlq) for r in (unauthorized, garbage)),
        30,
    )
    assert await instance.terminate() == 0  # the shutdown's lines too

    raw = instance.log_path.read_text(encoding="utf-8")
    lines: list[dict[str, Any]] = []
    for number, text in enumerate(raw.splitlines(), 1):
        if not text.strip():
            continue
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {text[:300]!r}") from None
        assert isinstance(parsed, dict), text
        assert {"time", "level", "logger", "message"} <= set(parsed), text
        lines.append(parsed)
    assert len(lines) > 50
    assert {"DEBUG", "INFO"} <= {line["level"] for line in lines}
    assert any(line["logger"].startswith("faststream") for line in lines)
    assert any(line["logger"].startswith("aiokafka") for line in lines)

    # The lines of each task's steps carry its ids.
    tasks = {t["request_id"]: t for t in await deployment.tasks()}
    for request_id in [*ok.values(), refused]:
        task = tasks[request_id]
        own = [line for line in lines if line.get("task_id") == task["_id"]]
        assert own, f"no line carries task {task['_id']}"
        for line in own:
            assert line["request_id"] == request_id
            assert line["provider"] == task["provider"] and line["model"] == task["model"]
        mentioning = [
            line
            for line in lines
            if line["logger"].startswith("video.")
            and task["_id"] in line["message"]
            and "task_id" not in line
        ]
        for line in mentioning:  # outside a step: the intake, leases, the shutdown
            assert line["logger"] != "video.engine" or "took over" in line["message"], line
        if task.get("upstream_task_id"):
            assert any(line.get("upstream_task_id") == task["upstream_task_id"] for line in own)

    # Tracing: the traced request's events carry its trace in their headers, and its log lines
    # its trace id; the spans named by the headers, of its intake and of its steps reached the
    # collector (the last ones when the service stopped).
    exported = {span_id: (trace_id, name) for trace_id, span_id, name, _ in otlp.spans}
    assert {service for *_, service in otlp.spans} == {"video-service"}
    events = collector.events(traced)
    headers = collector.headers(traced)
    assert len(headers) == len(events) and len(events) >= 5
    assert any(e["event_type"] == "completed" for e in events)
    for carried in headers:
        _, trace_id, span_id, _ = carried["traceparent"].split("-")
        assert trace_id == TRACE and exported[span_id][0] == TRACE
        assert carried["tracestate"] == context["tracestate"]
    (dead,) = collector.headers(unauthorized, deployment.topics.dlq)
    assert dead["traceparent"].split("-")[1] == REFUSED_TRACE
    assert {"video.intake", "video.submit", "video.poll", "video.fetch"} <= {
        name for trace_id, name in exported.values() if trace_id == TRACE
    }
    own = [line for line in lines if line.get("task_id") == tasks[traced]["_id"]]
    assert all(line["trace_id"] == TRACE for line in own)
    assert any(exported.get(line.get("span_id", ""), ("",))[0] == TRACE for line in own)
    untraced = [line for line in lines if line.get("request_id") == ok["cogvideox-flash"]]
    assert {line.get("trace_id") for line in untraced} - {None, TRACE}  # a trace of its own

    # Nothing secret, at any level.
    secrets = {
        "API key": "sk-test-one",
        "second API key": "sk-test-two",
        "BigModel key": "test-secret",
        "JWT secret": SECRET,
        "SASL password": SASL_PASSWORD,
        **{f"token of {r}": t for r, t in tokens.items()},
        "bad token": bad_token,
        "token payload": bad_token.split(".")[1],
    }
    for what, secret in secrets.items():
        assert secret not in raw, f"the {what} is in the log"
    leaks = re.compile(
        r"(Signature|OSSAccessKeyId|Expires)=(?!<redacted>)"
        r"|https?://[^\s'\"?\\]*\?(?!<redacted>)"
        r"|Bearer (?!<redacted>)",
        re.I,
    )
    found = leaks.search(raw)
    assert found is None, raw[max(0, found.start() - 200) : found.end() + 100] if found else ""
