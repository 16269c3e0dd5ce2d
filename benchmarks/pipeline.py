"""Pipeline benchmarks against the real Kafka, the real MongoDB-wire server and the simulator.

    python -m benchmarks.pipeline throughput [--tasks 2000]
    python -m benchmarks.pipeline in-flight [--tasks 10000] [--generation-s 120] [--window-s 60]

`throughput`: requests with near-instant generations; prints tasks per second from the first
request sent to the last completed event, p50/p99 from upstream completion to the completed
event, and the service's peak RSS.
`in-flight`: many tasks with long generations; prints the service's RSS and CPU while they
wait, and status queries per task per minute. The services must be running (`make services`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from asyncio.subprocess import PIPE
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from tests.e2e.models import VALID_PARAMETERS
from tests.harness import ROOT, EventCollector, ServiceProcess, Topics, free_port, send

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017")
MODEL = "cogvideox-flash"
NO_VENDOR_LIMITS = {
    f"{vendor}_{limit}": "0"
    for vendor in ("ZHIPUAI", "ALIYUN")
    for limit in ("SUBMITS_PER_S", "RUNNING_PER_MODEL", "QUERIES_PER_S")
}


def proc_stat(pid: int) -> tuple[float, int, int]:
    """(cpu seconds used, RSS bytes, peak RSS bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = dict(
        line.split(":", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if ":" in line
    )
    rss = int(status["VmRSS"].split()[0]) * 1024
    peak = int(status["VmHWM"].split()[0]) * 1024
    return cpu, rss, peak


class Bench:
    def __init__(
        self,
        sim_config: dict[str, Any],
        service_env: dict[str, str],
        instances: int = 1,
        vendor_limits: bool = False,
    ) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="video-bench-"))
        self.topics = Topics()
        self.database = f"video_bench_{uuid.uuid4().hex[:8]}"
        self.sim_port = free_port()
        self.sim_config = sim_config
        self.service_env = service_env
        self.sim: subprocess.Popen[bytes] | None = None
        self.instances = instances
        self.vendor_limits = vendor_limits  # True: the documented limits, as shipped
        self.services: list[ServiceProcess] = []

    async def __aenter__(self) -> Bench:
        config = self.tmp / "sim.json"
        config.write_text(json.dumps(self.sim_config))
        self.sim = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulator",
                "--port",
                str(self.sim_port),
                "--config",
                str(config),
            ],
            cwd=ROOT,
        )
        sim_url = f"http://127.0.0.1:{self.sim_port}"
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    if (await client.get(f"{sim_url}/_sim/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "MONGODB_URL": MONGO,
            "MONGODB_DB": self.database,
            "ZHIPUAI_API_KEY": "bench-id.bench-secret",
            "ZHIPUAI_BASE_URL": sim_url,
            "ALIYUN_API_KEY": "sk-bench",
            "ALIYUN_BASE_URL": sim_url,
            "DOWNLOAD_ALLOWED_HOSTS": "127.0.0.1",
            "VIDEO_DIR": str(self.tmp / "videos"),
            "LOG_LEVEL": "WARNING",
            **self.topics.env(),
            **({} if self.vendor_limits else NO_VENDOR_LIMITS),
            **self.service_env,
        }
        for n in range(self.instances):
            own = {"METRICS_PORT": str(free_port()), "INSTANCE_ID": f"bench-{n}"}
            self.services.append(ServiceProcess({**env, **own}, self.tmp / f"service-{n}.log"))
        await asyncio.gather(*(service.start() for service in self.services))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(service.terminate() for service in self.services))
        if self.sim:
            self.sim.terminate()
            self.sim.wait(10)
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO)
        await client.drop_database(self.database)
        await client.close()

    def usage(self) -> tuple[float, int, int]:
        """CPU seconds, RSS and peak RSS of all service instances together."""
        stats = [proc_stat(s.process.pid) for s in self.services if s.process]
        return (sum(c for c, _, _ in stats), sum(r for _, r, _ in stats), sum(p for *_, p in stats))

    async def sim_get(self, path: str, **params: str) -> Any:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.get(f"http://127.0.0.1:{self.sim_port}{path}", params=params)
            response.raise_for_status()
            return response.json()

    async def send_requests(self, count: int, prefix: str) -> list[str]:
        ids = [f"{prefix}-{i}" for i in range(count)]
        messages = [
            (
                r,
                json.dumps(
                    {"request_id": r, "model": MODEL, "parameters": {"prompt": f"bench {r}"}}
                ).encode(),
            )
            for r in ids
        ]
        await send(KAFKA, self.topics.requests, messages)
        return ids


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def passthrough(tasks: int) -> tuple[float, float]:
    """(tasks per second, CPU ms per task) of a raw aiokafka relay of the same events."""
    topics = Topics()
    messages = [
        (f"pt-{i}", json.dumps({"request_id": f"pt-{i}", "model": MODEL}).encode())
        for i in range(tasks)
    ]
    await send(KAFKA, topics.requests, messages)
    args = ["--bootstrap", KAFKA, "--requests", topics.requests, "--count", str(tasks)]
    args += ["--status", topics.status, "--completed", topics.completed]
    relay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.passthrough", *args, cwd=ROOT, stdout=PIPE
    )
    out, _ = await relay.communicate()
    figures = json.loads(out.decode().strip().splitlines()[-1])
    return tasks / figures["seconds"], figures["cpu_s"] * 1000 / tasks


def seconds_of(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def throughput(tasks: int, instances: int) -> None:
    """Near-instant generations with the service's default poll settings and no vendor limits:
    what one or more instances can do, against a raw relay of the same events."""
    relay_rate, relay_cpu_ms = await passthrough(tasks)
    sim_config = {"timing": {"queued_s": 0.0, "running_s": 0.05}}
    async with Bench(sim_config, {}, instances) as bench:
        collector = EventCollector(KAFKA, [bench.topics.status, bench.topics.completed])
        await collector.start()
        cpu_before = bench.usage()[0]  # start-up (imports, connections) is not per-task work
        started = time.time()
        ids = await bench.send_requests(tasks, "tp")
        peak = 0
        done = 0
        while done < tasks:
            done = sum(1 for r in ids if collector.events(r, bench.topics.completed))
            peak = max(peak, bench.usage()[2])
            if time.time() - started > 600:
                raise SystemExit("throughput benchmark did not finish in 10 minutes")
            await asyncio.sleep(0.2)
        finished = time.time()
        cpu_s, _, last_peak = bench.usage()
        peak = max(peak, last_peak)
        upstream = await bench.sim_get("/_sim/tasks")
        calls = (await bench.sim_get("/_sim/stats"))["requests"]
        ends = {t["prompt"].split()[-1]: t["ends_at"] for t in upstream["tasks"]}
        notice, complete = [], []
        for request_id in ids:
            end = ends.get(request_id)
            if end is None:
                continue
            end_ts = (
                end if isinstance(end, float | int) else datetime.fromisoformat(end).timestamp()
            )
            statuses = collector.events(request_id, bench.topics.status)
            downloading = [e for e in statuses if e["status"] == "downloading"]
            if downloading:
                notice.append(seconds_of(downloading[0]["timestamp"]) - end_ts)
            (event,) = collector.events(request_id, bench.topics.completed)
            complete.append(seconds_of(event["timestamp"]) - end_ts)
        await collector.stop()
    total = finished - started
    rate = tasks / total
    cpu_ms = (cpu_s - cpu_before) * 1000 / tasks
    print(f"throughput: {tasks} tasks of {MODEL}, 0.05 s generations, {instances} instance(s)")
    relay = f"{relay_rate:.0f} tasks/s, {relay_cpu_ms:.2f} ms CPU/task"
    print(f"  raw aiokafka relay of the same events: {relay}")
    print(f"  service: {rate:.0f} tasks/s ({rate / relay_rate:.2f} of the relay), {total:.1f} s")
    print(f"  service CPU {cpu_ms:.2f} ms per task ({cpu_ms / relay_cpu_ms:.1f}x the relay; /proc)")
    for name, lags in (("noticed (downloading)", notice), ("completed event", complete)):
        if lags:
            p50, p99 = statistics.median(lags), percentile(lags, 0.99)
            print(f"  upstream completion -> {name}: p50 {p50:.3f} s, p99 {p99:.3f} s")
    per_task = ", ".join(
        f"{route} {entry['total'] / tasks:.2f}"
        for vendor in calls.values()
        for route, entry in sorted(vendor.items())
    )
    print(f"  upstream calls per task: {per_task}")
    print(f"  service peak RSS {peak / 2**20:.0f} MiB (all instances)")


async def in_flight(tasks: int, generation_s: float, window_s: float) -> None:
    sim_config = {"timing": {"queued_s": 0.0, "running_s": generation_s}}
    # Submits unthrottled so intake is quick; status queries at BigModel's default limit, as
    # shipped, with the default adaptive schedule.
    service_env = {"MAX_IN_FLIGHT": str(tasks + 100), "ZHIPUAI_QUERIES_PER_S": "10"}
    async with Bench(sim_config, service_env) as bench:
        collector = EventCollector(KAFKA, [bench.topics.status])
        await collector.start()
        intake_start = time.time()
        ids = await bench.send_requests(tasks, "if")
        while (
            sum(1 for r in ids if any(e["status"] == "submitted" for e in collector.events(r)))
            < tasks
        ):
            await asyncio.sleep(0.5)
        intake_done = time.time()
        stats_before = await bench.sim_get("/_sim/stats")
        cpu_before, _, _ = bench.usage()
        rss_samples = []
        window_start = time.time()
        while time.time() - window_start < window_s:
            rss_samples.append(bench.usage()[1])
            await asyncio.sleep(1)
        cpu_after, _, peak = bench.usage()
        stats_after = await bench.sim_get("/_sim/stats")
        elapsed = time.time() - window_start
        queries = (
            stats_after["requests"]["bigmodel"]["query"]["total"]
            - stats_before["requests"]["bigmodel"]["query"]["total"]
        )
        await collector.stop()
    mib = 2**20
    mean_rss, max_rss = statistics.mean(rss_samples) / mib, max(rss_samples) / mib
    print(f"in flight: {tasks} tasks of {MODEL}, {generation_s:.0f} s generations, all submitted")
    print(f"  intake: all accepted and submitted {intake_done - intake_start:.0f} s after sending")
    print(f"  measured over {elapsed:.0f} s while they wait:")
    print(f"  RSS {mean_rss:.0f} MiB mean, {max_rss:.0f} MiB max; peak RSS {peak / mib:.0f} MiB")
    print(f"  CPU {100 * (cpu_after - cpu_before) / elapsed:.1f}% of one core")
    print(f"  {queries / tasks / (elapsed / 60):.2f} status queries per task per minute")


async def timed(
    bench: Bench, requests: list[tuple[str, bytes]], collector: EventCollector | None = None
) -> float:
    """Seconds from sending `requests` to the last completed event."""
    collector = collector or EventCollector(KAFKA, [bench.topics.completed, bench.topics.status])
    await collector.start()
    started = time.time()
    await send(KAFKA, bench.topics.requests, requests)
    ids = [request_id for request_id, _ in requests]
    while not all(collector.events(r, bench.topics.completed) for r in ids):
        failed = [r for r in ids if any(e["status"] == "failed" for e in collector.events(r))]
        if failed or time.time() - started > 600:
            raise SystemExit(f"not completed: {failed or 'timed out'}")
        await asyncio.sleep(0.1)
    elapsed = time.time() - started
    await collector.stop()
    return elapsed


async def notice_delays(bench: Bench, collector: EventCollector) -> list[float]:
    """Per task: from the vendor's end of generation to our `downloading` status."""
    upstream = await bench.sim_get("/_sim/tasks")
    ends = {t["prompt"].split()[-1]: t["ends_at"] for t in upstream["tasks"]}
    delays = []
    for request_id, end in ends.items():
        end_ts = end if isinstance(end, float | int) else datetime.fromisoformat(end).timestamp()
        statuses = collector.events(request_id, bench.topics.status)
        noticed = [seconds_of(e["timestamp"]) for e in statuses if e["status"] == "downloading"]
        delays += [noticed[0] - end_ts] if noticed else []
    return delays


async def defaults() -> None:
    """Everything as shipped (vendor limits, poll settings), against the simulator."""
    async with Bench({}, {}, vendor_limits=True) as bench:
        run = uuid.uuid4().hex[:6]
        requests = []
        for model, parameters in VALID_PARAMETERS.items():
            request_id = f"df-{run}-{model}"
            body = {"request_id": request_id, "model": model, "parameters": parameters}
            requests.append((request_id, json.dumps(body).encode()))
        elapsed = await timed(bench, requests)
    print(f"defaults: one request per model ({len(requests)} models), simulator's default timing")
    print(f"  all completed {elapsed:.1f} s after sending")
    timing = {"model_timing": {"cogvideox-2": {"queued_s": 0.0, "running_s": 3.0}}}
    async with Bench(timing, {}, vendor_limits=True) as bench:
        requests = []
        for n in range(20):
            request_id = f"cv-{uuid.uuid4().hex[:6]}-{n}"
            body = {
                "request_id": request_id,
                "model": "cogvideox-2",
                "parameters": {"prompt": "a cat"},
            }
            requests.append((request_id, json.dumps(body).encode()))
        elapsed = await timed(bench, requests)
    print("defaults: 20 x cogvideox-2 with 3 s generations (the original service: 152.5 s)")
    print(f"  all completed {elapsed:.1f} s after sending ({152.5 / elapsed:.1f}x faster)")
    # DashScope's documented limits let 2 tasks per model run, 10 over its five models.
    wanx = [m for m in VALID_PARAMETERS if m.startswith("wanx")]
    # Durations that are no multiple of the poll interval, so polls do not fall in step with ends.
    wanx_timing: dict[str, Any] = {
        m: {"queued_s": 0.0, "running_s": 7.3 + 1.37 * n} for n, m in enumerate(wanx)
    }
    async with Bench({"model_timing": wanx_timing}, {}, vendor_limits=True) as bench:
        requests = []
        for n in range(4):
            for model in wanx:
                request_id = f"nd-{uuid.uuid4().hex[:6]}-{n}"
                parameters = {**VALID_PARAMETERS[model], "prompt": f"notice {request_id}"}
                body = {"request_id": request_id, "model": model, "parameters": parameters}
                requests.append((request_id, json.dumps(body).encode()))
        collector = EventCollector(KAFKA, [bench.topics.completed, bench.topics.status])
        elapsed = await timed(bench, requests, collector)
        delays = await notice_delays(bench, collector)
    p50, p99 = statistics.median(delays), percentile(delays, 0.99)
    print(f"defaults: {len(requests)} DashScope tasks of 7-13 s, 10 running at a time")
    print(f"  upstream completion -> noticed: p50 {p50:.2f} s, p99 {p99:.2f} s ({elapsed:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline")
    sub = parser.add_subparsers(dest="which", required=True)
    tp = sub.add_parser("throughput")
    tp.add_argument("--tasks", type=int, default=2000)
    tp.add_argument("--instances", type=int, default=1)
    inf = sub.add_parser("in-flight")
    inf.add_argument("--tasks", type=int, default=10_000)
    inf.add_argument("--generation-s", type=float, default=120.0)
    inf.add_argument("--window-s", type=float, default=60.0)
    sub.add_parser("defaults", help="default settings: a request per model; 20 x cogvideox-2")
    args = parser.parse_args()
    if args.which == "throughput":
        asyncio.run(throughput(args.tasks, args.instances))
    elif args.which == "defaults":
        asyncio.run(defaults())
    else:
        asyncio.run(in_flight(args.tasks, args.generation_s, args.window_s))


if __name__ == "__main__":
    main()
