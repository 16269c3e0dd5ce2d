"""The smaller promises: lease loops that survive errors, files kept for a new owner, temporary
files swept, topics that tolerate a broker down, unique instance ids, liveness apart from
readiness, and vendor slots taken in order."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from consumers.engine.clock import Clock
from consumers.messaging.kafka import new_topics
from consumers.operations.health import HealthServer
from consumers.settings import Settings
from consumers.storage.memory import MemoryTaskStore
from consumers.storage.task import Task
from tests.engine.harness import World, request
from tests.factories import make_task
from tests.harness import free_port


async def test_a_lease_loop_survives_an_unexpected_error(world: World) -> None:
    engine = world.start_engine(lease_ttl_s=0.15)
    calls: list[str] = []
    renew = world.store.renew_leases

    async def flaky(owner: str, until: Any, task_ids: Any = None) -> int:
        calls.append(owner)
        if len(calls) == 1:
            raise ValueError("a bug, not an outage")
        return await renew(owner, until, task_ids)

    world.store.renew_leases = flaky  # type: ignore[method-assign]
    await engine.start()
    await world.until(lambda: len(calls) >= 3, what="renewals after the error")


async def test_files_stay_when_the_task_was_taken_over_before_completing(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request()

    async def taken_over(task: Task, owner: str, changes: dict[str, object]) -> None:
        if changes.get("status") == "completed":
            # Another instance claims it just before our write: the write will miss.
            await world.store.release_leases("me", keep=(), now=engine.clock.now())
            await world.store.claim_expired(
                "other", engine.clock.after(1), engine.clock.after(30), 9
            )

    world.store.before("move", taken_over)
    await world.send(body)
    await world.until(lambda: "downloading" in world.kafka.statuses(body["request_id"]))
    await asyncio.sleep(0.3)
    task = await world.store.find_by_request_id(body["request_id"])
    assert task is not None and task.lease_owner == "other" and task.videos
    final = world.tmp_path / "videos" / task.videos[0].filename
    assert final.exists(), "the new owner will complete with this very file"


async def test_a_cancelled_task_leaves_no_video(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request()

    async def cancelled_meanwhile(task: Task, owner: str, changes: dict[str, object]) -> None:
        if changes.get("status") == "completed":
            await engine.cancels.cancel(task.request_id, None)

    world.store.before("move", cancelled_meanwhile)
    await world.send(body)
    assert await world.finished(body["request_id"]) == "cancelled"
    assert not list((world.tmp_path / "videos").glob("*.mp4"))


async def test_temporary_files_of_dead_downloads_are_swept_at_start(world: World) -> None:
    engine = world.start_engine()
    now = engine.clock.now()
    videos = world.tmp_path / "videos"
    videos.mkdir(parents=True)
    finished = make_task(status="completed", active=False)
    elsewhere = make_task(owner="other", status="downloading", lease_until=now + timedelta(60))
    stale = make_task(owner="dead", status="downloading", lease_until=now - timedelta(1))
    await world.store.insert_many([finished, elsewhere, stale])
    unknown = "00000000-0000-4000-8000-000000000000"
    for task_id in (finished.id, elsewhere.id, stale.id, unknown):
        (videos / f".{task_id}.0.part").write_bytes(b"partial")
    (videos / "keep.mp4").write_bytes(b"not ours to judge")
    await engine.start()
    left = sorted(p.name for p in videos.iterdir())
    assert left == sorted([f".{elsewhere.id}.0.part", "keep.mp4"])


def test_topics_keep_one_broker_to_spare() -> None:
    (single,) = new_topics(["a"], 6, brokers=1)
    assert single.replication_factor == 1 and single.topic_configs == {}
    (three,) = new_topics(["a"], 6, brokers=5)
    assert three.replication_factor == 3
    assert three.topic_configs == {"min.insync.replicas": "2"}


def test_default_instance_ids_differ_in_the_same_process() -> None:
    one, two = Settings(_env_file=None), Settings(_env_file=None)
    assert one.instance_id != two.instance_id
    assert one.instance_id.startswith(os.uname().nodename)


async def test_liveness_does_not_depend_on_kafka_or_mongodb(tmp_path: Path) -> None:
    async def down() -> bool:
        return False

    port = free_port()
    server = HealthServer(CollectorRegistry(), {"mongodb": down}, port, host="127.0.0.1")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/livez")).status_code == 200
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/healthz")).status_code == 503
    finally:
        await server.stop()


async def test_running_slots_are_taken_in_arrival_order(world: World) -> None:
    engine = world.start_engine(zhipuai_running_per_model=1)
    await engine.start()
    sim = world.sim
    sim.config = sim.config.updated({"timing": {"queued_s": 0.0, "running_s": 0.1}})
    bodies = [request() for _ in range(4)]
    for body in bodies:
        await world.send(body)
    for body in bodies:
        assert await world.finished(body["request_id"]) == "completed"
    starts = sorted(sim.tasks.all(), key=lambda t: t.created)
    assert [t.prompt for t in starts] == [b["parameters"]["prompt"] for b in bodies]
    for earlier, later in itertools.pairwise(starts):
        assert later.created >= earlier.ended - 0.05, "one running at a time"


async def test_a_clock_sample_taken_across_an_outage_is_ignored() -> None:
    ticks = [1000.0]
    clock = Clock(lambda: ticks[0])
    store = MemoryTaskStore(lambda: datetime.fromtimestamp(ticks[0] + 2.0, UTC))
    await clock.sync(store)
    assert clock.offset_s == 2.0

    class Blocked(MemoryTaskStore):
        async def clock(self) -> datetime:
            ticks[0] += 10.0  # the answer came back only after a ten-second outage
            return datetime.fromtimestamp(ticks[0] - 5.0, UTC)

    await clock.sync(Blocked())
    assert clock.offset_s == 2.0, "the midpoint of a blocked round trip says nothing"


async def test_sleeping_actors_hold_no_task_document(world: World) -> None:
    engine = world.start_engine(poll_interval_min_s=30, poll_first_s=30)
    await engine.start()
    world.sim.config = world.sim.config.updated({"timing": {"queued_s": 60, "running_s": 60}})
    bodies = [request() for _ in range(40)]
    await world.send(*bodies)
    for body in bodies:
        request_id = body["request_id"]
        await world.until(lambda: "submitted" in world.kafka.statuses(request_id))  # noqa: B023
    await asyncio.sleep(0.1)  # every actor asleep until its first poll, 30 s away
    gc.collect()
    alive = sum(1 for o in gc.get_objects() if isinstance(o, Task))
    assert engine.scheduler.held == 40 and alive < 5, alive
