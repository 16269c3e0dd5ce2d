"""Infrastructure faults on the real servers, with tasks in flight: a Kafka broker restart, a
MongoDB restart, a MongoDB outage longer than the lease TTL, and a graceful stop of one instance
while tasks wait for the vendors' rate limits and running slots.

No instance crashes in any of them, so the bar is higher than in test_resilience.py: every
request ends exactly once, completed, and is generated upstream exactly once; no instance
submits anything again (`video_upstream_resubmissions_total` stays 0).

The faults go through devservices/services.sh with this process's environment, so they hit the
servers the suite runs on (KAFKA_PORT, MONGO_PORT, DEVSERVICES_RUN_DIR, ...). Kafka is restarted
with `--keep-data` (same cluster, topics, records and committed offsets), MongoDB with graceful
stops (SIGTERM: every acknowledged write is on disk). Every client of those servers sees the
outages, other tests' too: run these alone (`-m infra`) or leave them out (`-m "not infra"`)
when the servers are shared with other runs.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from tests.e2e.checks import TERMINAL, assert_each_ended_once, batch, phases, resubmissions
from tests.e2e.conftest import KAFKA, Deployment, Simulator
from tests.e2e.models import marked
from tests.harness import ROOT, EventCollector, ServiceProcess, request, send

pytestmark = [pytest.mark.integration, pytest.mark.infra]

SERVICES_SH = ROOT / "devservices" / "services.sh"

# Per-model timings: about two seconds after the submits, some tasks are still queued upstream
# (wanx2.1-i2v-turbo: DashScope reports PENDING; BigModel has no queued state), some running
# (cogvideox-flash, viduq1-text) and some downloading (wanx2.1-t2v-turbo; downloads take 2.5 s).
TIMINGS = {
    "wanx2.1-t2v-turbo": {"queued_s": 0.3, "running_s": 1.2},
    "wanx2.1-i2v-turbo": {"queued_s": 4.0, "running_s": 1.5},
    "cogvideox-flash": {"queued_s": 0.0, "running_s": 4.0},
    "viduq1-text": {"queued_s": 0.0, "running_s": 2.5},
}
MODELS = tuple(TIMINGS)
DOWNLOAD_S = 2.5
REQUESTS = 24
LATE = 6  # requests sent while MongoDB is down, or once Kafka is back
# Where requests must be (by their latest status event) when a fault begins.
IN_FLIGHT = ("submitted", "running", "downloading")

# The vendors' limits, on in every test: when a fault comes, tasks also wait for a running slot
# of their model or for the submit rate.
LIMITS = {
    "ALIYUN_SUBMITS_PER_S": "2",
    "ALIYUN_RUNNING_PER_MODEL": "2",
    "ZHIPUAI_SUBMITS_PER_S": "1",
    "ZHIPUAI_RUNNING_PER_MODEL": "2",
}
MODELS_SIGTERM = ("wanx2.1-t2v-turbo", "cogvideox-flash", "viduq1-text")


# --- the servers ----------------------------------------------------------------------------


async def services_sh(*args: str) -> str:
    """Run devservices/services.sh with this process's environment; returns its log (stderr)."""
    process = await asyncio.create_subprocess_exec(
        str(SERVICES_SH),
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise AssertionError(
            f"services.sh {' '.join(args)} exited with {process.returncode}:\n"
            f"{out.decode()}{err.decode()}"
        )
    return err.decode()


@dataclass
class Outage:
    """One fault, for the failure messages: where the requests were, how long it lasted."""

    what: str
    at_start: Counter[str | None] = field(default_factory=Counter)
    seconds: float = 0.0

    def __str__(self) -> str:
        return f"{self.what}: {self.seconds:.1f} s, requests then at {dict(self.at_start)}"


class Servers:
    """Stops and starts the suite's Kafka broker and MongoDB-wire server (services.sh)."""

    async def restart_kafka(self, down_s: float, at_start: Counter[str | None]) -> Outage:
        """Stop the broker keeping its data, `down_s` without it, start it on that data."""
        outage, started = Outage("Kafka restart", at_start), time.monotonic()
        await services_sh("stop", "--keep-data", "kafka")
        await asyncio.sleep(down_s)
        await services_sh("start", "--keep-data", "kafka")
        outage.seconds = time.monotonic() - started
        return outage

    async def restart_mongo(
        self,
        down_s: float,
        at_start: Counter[str | None],
        meanwhile: Callable[[], Awaitable[None]],
    ) -> Outage:
        """A graceful stop (every acknowledged write is kept), `down_s` without it (during which
        `meanwhile` runs), a start."""
        outage, started = Outage("MongoDB restart", at_start), time.monotonic()
        await services_sh("stop", "mongo")
        stopped = time.monotonic()
        await meanwhile()
        await asyncio.sleep(max(0.0, down_s - (time.monotonic() - stopped)))
        await services_sh("start", "mongo")
        outage.seconds = time.monotonic() - started
        return outage

    async def mongo_in_memory(self) -> bool:
        process = await asyncio.create_subprocess_exec(
            str(SERVICES_SH), "status", "mongo", cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        return "in memory" in out.decode()


@pytest.fixture
async def servers(deployment: Deployment) -> AsyncIterator[Servers]:
    """The servers, running again after the test whatever happened in it. Set up after
    `deployment`, so torn down before it: the deployment's clean-up needs MongoDB."""
    if os.environ.get("DEVSERVICES_EXTERNAL") == "1":
        pytest.skip("DEVSERVICES_EXTERNAL=1: the servers were not started by services.sh")
    yield Servers()
    await services_sh("start", "--keep-data")


@pytest.fixture
async def mongo_on_disk(servers: Servers) -> None:
    if await servers.mongo_in_memory():
        pytest.skip("the MongoDB-wire server keeps its data in memory: a restart empties it")


# --- the work and the checks ----------------------------------------------------------------


async def start_instances(deployment: Deployment, count: int, **env: str) -> list[ServiceProcess]:
    instances = [await deployment.start_instance(**env) for _ in range(count)]
    await deployment.wait_for_group(count)
    return instances


async def send_work(
    deployment: Deployment, label: str, count: int, models: tuple[str, ...] = MODELS
) -> list[tuple[str, str]]:
    """`count` requests over `models`, each with `[request_id]` in its prompt."""
    work = batch(label, count, models)
    await send(KAFKA, deployment.topics.requests, [request(r, m, marked(m, r)) for r, m in work])
    return work


async def start_work(
    deployment: Deployment, sim: Simulator, label: str, **env: str
) -> list[tuple[str, str]]:
    """Two instances with the vendors' limits, then REQUESTS requests over MODELS."""
    await sim.configure(model_timing=TIMINGS)
    await sim.fault(route="download", action="slow_download", seconds=DOWNLOAD_S)
    await deployment.collector.start()
    await start_instances(deployment, 2, **LIMITS, **env)
    return await send_work(deployment, label, REQUESTS)


async def until_in_flight(
    deployment: Deployment, work: list[tuple[str, str]]
) -> Counter[str | None]:
    """Wait until some requests are queued upstream, some running and some downloading (and
    none has ended), then half a second more, so that downloads are streaming."""

    def ready() -> bool:
        seen = phases(deployment, work)
        return all(seen[p] > 0 for p in IN_FLIGHT) and not seen.keys() & TERMINAL

    try:
        await deployment.collector.wait_for(ready, 30, f"requests at each of {IN_FLIGHT}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; seen: {dict(phases(deployment, work))}") from None
    await asyncio.sleep(0.5)
    return phases(deployment, work)


async def until_all_completed(
    deployment: Deployment, work: list[tuple[str, str]], fault: object
) -> None:
    collector = deployment.collector
    try:
        await collector.wait_for(
            lambda: all(collector.events(r, deployment.topics.completed) for r, _ in work),
            90,
            "every request completed",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc} after {fault}; now at {phases(deployment, work)}") from None


async def assert_nothing_submitted_twice(
    deployment: Deployment,
    sim: Simulator,
    work: list[tuple[str, str]],
    fault: object,
    stopped: ServiceProcess | None = None,
) -> None:
    """Each request ended once, completed, and was generated once; every instance the test did
    not stop still runs; none submitted anything again or cancelled a submit it had sent."""
    await assert_each_ended_once(deployment, sim, work)
    for instance in deployment.instances:
        if instance is not stopped:
            assert instance.process is not None and instance.process.poll() is None, (
                str(fault),
                instance.log_tail(),
            )
    for instance in deployment.instances:
        text = instance.log_path.read_text(errors="replace")
        for sign in ("moved on during its submit", "unexpected error"):
            assert sign not in text, (sign, str(fault), str(instance.log_path))
    counted = {
        str(i.log_path.name): resubmissions(await i.metrics())
        for i in deployment.instances
        if i is not stopped
    }
    resent = [
        line
        for i in deployment.instances
        for line in i.log_path.read_text(errors="replace").splitlines()
        if "submitting again" in line
    ]
    if any(counted.values()) or resent:
        raise Resubmitted(f"after {fault}: resubmissions {counted}; {resent[:3]}")


class Resubmitted(AssertionError):
    """An instance counted a resubmission (and logged `submitting again`) although no instance
    crashed; the other checks (one generation per request) passed before this is raised."""


# --- the faults -----------------------------------------------------------------------------


async def test_kafka_broker_restart_keeps_every_task_once(
    deployment: Deployment, sim: Simulator, servers: Servers
) -> None:
    work = await start_work(deployment, sim, "kafka")
    outage = await servers.restart_kafka(3.0, await until_in_flight(deployment, work))
    work += await send_work(deployment, "kafka-after", LATE)  # intake goes on after it
    await until_all_completed(deployment, work, outage)
    await assert_nothing_submitted_twice(deployment, sim, work, outage)
    # Kafka kept its data: a new reader finds every event again, those from before the restart
    # included.
    again = EventCollector(KAFKA, [deployment.topics.status, deployment.topics.completed])
    await again.start()
    try:

        def same_history() -> bool:
            return all(
                {e["event_id"] for e in again.events(r)}
                == {e["event_id"] for e in deployment.collector.events(r)}
                for r, _ in work
            )

        await again.wait_for(same_history, 30, "the same events, read again from the start")
    finally:
        await again.stop()


async def test_mongodb_restart_keeps_every_task_once(
    deployment: Deployment, sim: Simulator, servers: Servers, mongo_on_disk: None
) -> None:
    # A restart within the lease TTL: a stop and start of the server take 2-3 s, as long as the
    # end-to-end TTL of 3 s, so the instances run with 10 s here (the next test is the outage
    # longer than the TTL).
    ttl_s = 10.0
    work = await start_work(deployment, sim, "mongo", LEASE_TTL_S=str(ttl_s))
    late: list[tuple[str, str]] = []

    async def meanwhile() -> None:  # requests that arrive while MongoDB is down
        late.extend(await send_work(deployment, "mongo-during", LATE))

    outage = await servers.restart_mongo(1.0, await until_in_flight(deployment, work), meanwhile)
    # Leases are renewed to a full TTL every third of it, so they always hold two thirds of it
    # (6.7 s) ahead: an outage under 4 s ends before any runs out.
    assert outage.seconds < 0.4 * ttl_s, outage
    work += late
    await until_all_completed(deployment, work, outage)
    await assert_nothing_submitted_twice(deployment, sim, work, outage)


async def test_mongodb_outage_longer_than_the_lease_ttl_keeps_every_task_once(
    deployment: Deployment, sim: Simulator, servers: Servers, mongo_on_disk: None
) -> None:
    ttl_s = float(deployment.env()["LEASE_TTL_S"])
    work = await start_work(deployment, sim, "lease")
    late: list[tuple[str, str]] = []

    async def meanwhile() -> None:  # requests that arrive while MongoDB is down
        late.extend(await send_work(deployment, "lease-during", LATE))

    outage = await servers.restart_mongo(10.0, await until_in_flight(deployment, work), meanwhile)
    work += late
    assert outage.seconds > 3 * ttl_s, outage  # every lease in the store ran out meanwhile
    await until_all_completed(deployment, work, outage)
    await assert_nothing_submitted_twice(deployment, sim, work, outage)


async def test_sigterm_with_vendor_limits_then_the_other_instance_finishes(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing={"queued_s": 0.5, "running_s": 2.0})
    await sim.fault(route="download", action="slow_download", seconds=1.5)
    await deployment.collector.start()
    instances = await start_instances(deployment, 2, **LIMITS)
    work = await send_work(deployment, "limits", 30, MODELS_SIGTERM)
    owner_of = {i.env["INSTANCE_ID"]: i for i in instances}

    async def held() -> dict[str, Counter[str]]:
        by_owner: dict[str, Counter[str]] = {name: Counter() for name in owner_of}
        for task in await deployment.tasks():
            if task["lease_owner"] in by_owner:
                by_owner[task["lease_owner"]][task["status"]] += 1
        return by_owner

    # Signal the instance holding the most tasks that wait for a slot or the submit rate
    # (accepted), once it also has tasks upstream and some task has reached its download.
    deadline = time.monotonic() + 30
    while True:
        by_owner = await held()
        name, statuses = max(by_owner.items(), key=lambda kv: kv[1]["accepted"])
        seen = phases(deployment, work)
        if (
            statuses["accepted"] >= 2
            and statuses["submitted"] + statuses["running"] >= 1
            and seen["downloading"] + seen["completed"] >= 1
        ):
            break
        assert time.monotonic() < deadline, by_owner
        await asyncio.sleep(0.1)
    victim = owner_of[name]
    fault = f"SIGTERM of {name} holding {dict(statuses)}"
    assert await victim.terminate() == 0, victim.log_tail()
    log = victim.log_path.read_text(errors="replace")
    released = [int(n) for n in re.findall(r"released (\d+) unfinished tasks", log)]
    assert released and released[-1] >= 1, victim.log_tail()  # it stopped with work in hand
    assert "not recorded at shutdown" not in log, victim.log_tail()
    await until_all_completed(deployment, work, fault)
    survivor = next(i for i in instances if i is not victim)
    taken_over = re.findall(r"^video_tasks_taken_over_total (\S+)$", await survivor.metrics(), re.M)
    assert taken_over and float(taken_over[0]) >= 1, taken_over  # it resumed the released tasks
    await assert_nothing_submitted_twice(deployment, sim, work, fault, stopped=victim)
