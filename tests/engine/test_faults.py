"""The engine's promises under injected faults, one test per way they used to break.

Each places a fault at an exact point: a store write that fails once, a publisher that cannot
reach one topic, a cancel between two steps, a clock that runs ahead, a shutdown while submits
wait for the vendor's rate limit.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from consumers.engine.scheduler import Alarm, Scheduler
from consumers.storage.task import Task
from consumers.subscribers.auth import Identity
from tests.engine.harness import World, request
from tests.factories import make_task


def terminal_events(world: World, request_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in world.kafka.events(request_id)
        if e["status"] in ("completed", "failed", "cancelled")
    ]


# 1. A MongoDB error right after a submit must not pay twice.
async def test_a_failed_record_after_a_submit_is_retried_not_resubmitted(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    world.store.fail("record_submit", nth=1, times=2)
    body = request()
    await world.send(body)
    assert await world.finished(body["request_id"], timeout=15) == "completed"
    assert world.generations(body["request_id"]) == 1
    assert engine.ctx.metrics.resubmissions.labels("zhipuai", "cogvideox-flash")._value.get() == 0


# 2. SIGTERM with submits waiting on the rate limiter: none may start after the gate closes,
#    none under way may be lost, and the next owner submits nothing twice.
async def test_shutdown_with_submits_waiting_loses_no_upstream_id(world: World) -> None:
    first = world.start_engine(zhipuai_submits_per_s=5, instance_id="first")
    await first.start()
    bodies = [request() for _ in range(8)]
    await world.send(*bodies, to=first)
    await asyncio.sleep(0.3)  # some submitted, the others waiting for their turn
    await first.stop(grace_s=5)
    for body in bodies:
        task = await world.store.find_by_request_id(body["request_id"])
        assert task is not None
        assert task.submit_ticket is None, "a submit was sent and not recorded"
        assert world.generations(body["request_id"]) == (1 if task.upstream_task_id else 0)
    assert any(world.generations(b["request_id"]) == 0 for b in bodies), "no submit was waiting"
    second = world.start_engine(instance_id="second")
    await second.start()
    await second.leases.claim_expired()
    for body in bodies:
        assert await world.finished(body["request_id"], timeout=10) == "completed"
        assert world.generations(body["request_id"]) == 1


# 3. A reply topic that cannot be written never holds its task up.
async def test_an_unwritable_reply_topic_is_skipped_and_counted(world: World) -> None:
    engine = world.start_engine(reply_topic_pattern=r"replies\..*")
    await engine.start()
    world.kafka.failing.add("replies.broken")
    world.kafka.silent.add("replies.stuck")
    broken = request(reply_topic="replies.broken")
    stuck = request(reply_topic="replies.stuck")
    await world.send(broken, stuck)
    assert await world.finished(broken["request_id"]) == "completed"
    assert await world.finished(stuck["request_id"]) == "completed"
    for body in (broken, stuck):
        ids = [e["event_id"] for e in world.kafka.events(body["request_id"])]
        assert len(ids) == len(set(ids)) == 5, "each status published once"
    failures = engine.ctx.metrics.reply_copies_failed._value
    # broken's 5 statuses and its completed event (copies go out after the standard topics)
    await world.until(lambda: failures.get() == 5 + 1, what="six failed reply copies")


async def test_the_deadline_is_checked_before_publishing(world: World) -> None:
    engine = world.start_engine()
    now = engine.clock.now()
    task = make_task(owner="me", now=now, deadline_at=now - timedelta(seconds=1))
    await world.store.insert_many([task])
    world.kafka.failing.add("video.status")  # Kafka is down: the backlog cannot go out
    engine.adopt(task)
    await world.until(lambda: engine.scheduler.held == 1)

    async def failed_in_store() -> Task | None:
        stored = await world.store.get(task.id)
        return stored if stored is not None and stored.terminal else None

    for _ in range(200):
        if await failed_in_store():
            break
        await asyncio.sleep(0.01)
    stored = await failed_in_store()
    assert stored is not None and stored.error is not None and stored.error["code"] == "timeout"
    world.kafka.failing.clear()
    assert await world.finished(task.request_id, timeout=10) == "failed"


# 4. reconcile must not forget a task adopted while it reads the store, and an actor cancelled
#    before its first step must leave the scheduler.
async def test_reconcile_keeps_a_task_adopted_meanwhile(world: World) -> None:
    engine = world.start_engine()
    old = make_task(owner="me")
    await world.store.insert_many([old])
    body = request()
    read_held = world.store.held_task_ids

    async def adopt_after_the_read(owner: str) -> set[str]:
        held = await read_held(owner)
        await world.send(body)  # intake stores and adopts a task while reconcile awaits
        return held

    world.store.held_task_ids = adopt_after_the_read  # type: ignore[method-assign]
    await engine.leases.reconcile()
    assert engine.scheduler.holds(old.id), "the stored task is resumed"
    # No lease loop runs in this test: only the actor adopted by intake can finish the task.
    assert await world.finished(body["request_id"]) == "completed"


async def test_an_actor_stopped_before_its_first_step_leaves_the_scheduler() -> None:
    started: list[str] = []

    async def run(task_id: str, alarm: Alarm) -> None:
        started.append(task_id)

    scheduler = Scheduler(run, limit=10)
    scheduler.adopt("t-1")
    scheduler.forget(["t-1"])
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert started == [] and scheduler.held == 0


# 5. A cancel handled by the instance that runs the task ends `cancelled`, never `failed`: not
#    even when a poll answers CANCELED (our own cancel, applied by the vendor) before the
#    `cancelled` write lands.
async def test_a_cancel_during_a_poll_ends_cancelled(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    world.sim.config = world.sim.config.updated({"timing": {"queued_s": 30, "running_s": 30}})
    body = request("wanx2.1-t2v-turbo")
    await world.send(body)
    await world.until(lambda: "submitted" in world.kafka.statuses(body["request_id"]))
    world.sim.faults.add({"action": "delay", "route": "query", "seconds": 0.2, "times": 1})

    async def slow_cancelled_write(task: Task, owner: str, changes: dict[str, Any]) -> None:
        if changes.get("status") == "cancelled":
            await asyncio.sleep(0.4)  # any poll under way answers first

    world.store.before("move", slow_cancelled_write)
    await asyncio.sleep(0.05)  # the next poll is under way, and slow
    await engine.cancels.cancel(body["request_id"], "not needed")
    assert await world.finished(body["request_id"]) == "cancelled"
    assert world.kafka.statuses(body["request_id"]) == ["accepted", "submitted", "cancelled"]
    (upstream,) = [t for t in world.sim.tasks.all() if body["request_id"] in (t.prompt or "")]
    assert upstream.canceled_at is not None, "the vendor's task was cancelled"


async def test_no_status_goes_out_once_a_cancel_is_requested(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    world.sim.config = world.sim.config.updated({"timing": {"queued_s": 30, "running_s": 30}})
    body = request()
    await world.send(body)
    await world.until(lambda: "submitted" in world.kafka.statuses(body["request_id"]))
    world.sim.faults.add({"action": "delay", "route": "query", "seconds": 0.2, "times": 1})
    await asyncio.sleep(0.05)  # a slow poll is under way
    world.sim.clock.advance(31)  # it will answer RUNNING
    await engine.cancels.cancel(body["request_id"], None)
    assert await world.finished(body["request_id"]) == "cancelled"
    assert world.kafka.statuses(body["request_id"]) == ["accepted", "submitted", "cancelled"]


# 6. The deadline bounds downloads, and the wait for a download slot.
async def test_the_deadline_cuts_a_slow_download(world: World) -> None:
    engine = world.start_engine(max_concurrent_downloads=1)
    await engine.start()
    world.sim.faults.add({"action": "slow_download", "seconds": 30})
    now = engine.clock.now()
    slow, waiting = (
        make_task(owner="me", now=now, deadline_at=now + timedelta(seconds=0.6)) for _ in range(2)
    )
    await world.store.insert_many([slow, waiting])
    for task in (slow, waiting):
        engine.adopt(task)
    started = time.monotonic()
    assert await world.finished(slow.request_id, timeout=10) == "failed"
    assert await world.finished(waiting.request_id, timeout=10) == "failed"
    assert time.monotonic() - started < 5
    for task in (slow, waiting):
        assert world.kafka.events(task.request_id)[-1]["error"]["code"] == "timeout"
    assert engine.ctx.downloads.locked() is False
    assert not list((world.tmp_path / "videos").glob(".*.part"))


# 7. Leases are compared against the database's clock, and a stalled instance starts nothing.
async def test_an_instance_with_a_fast_clock_takes_no_live_task(world: World) -> None:
    owner = world.start_engine(instance_id="owner")
    await owner.start()
    body = request()
    world.sim.config = world.sim.config.updated({"timing": {"queued_s": 0.0, "running_s": 30}})
    await world.send(body, to=owner)
    await world.until(lambda: "running" in world.kafka.statuses(body["request_id"]))
    ahead = world.start_engine(instance_id="ahead", local_clock=lambda: time.time() + 20)
    await ahead.clock.sync(world.store)
    await ahead.leases.claim_expired()
    assert ahead.scheduler.held == 0
    task = await world.store.find_by_request_id(body["request_id"])
    assert task is not None and task.lease_owner == "owner"


async def test_leases_not_renewed_in_time_stop_new_side_effects(world: World) -> None:
    engine = world.start_engine()
    ticks = [0.0]
    engine.leases._monotonic = lambda: ticks[0]
    await engine.leases.renew()
    assert engine.leases.fresh()
    ticks[0] += engine.leases.ttl_s  # the event loop stalled past the TTL
    assert not engine.leases.fresh()
    body = request()
    await world.send(body)
    await asyncio.sleep(0.2)
    assert world.generations(body["request_id"]) == 0, "no submit without a fresh lease"
    await engine.leases.renew()
    await engine.start()
    assert await world.finished(body["request_id"]) == "completed"


# 8. A cancel that overtakes its request is remembered.
async def test_a_cancel_before_its_request_cancels_it_without_any_upstream_call(
    world: World,
) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request()
    assert await engine.cancels.cancel(body["request_id"], "too late anyway") == "remembered"
    await world.send(body)
    assert await world.finished(body["request_id"]) == "cancelled"
    assert world.kafka.statuses(body["request_id"]) == ["accepted", "cancelled"]
    assert world.generations(body["request_id"]) == 0


# 9. A cancel publishes `cancelled` and nothing already published.
async def test_a_cancel_republishes_nothing(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    world.sim.config = world.sim.config.updated({"timing": {"queued_s": 30, "running_s": 30}})
    body = request()
    await world.send(body)
    await world.until(lambda: "submitted" in world.kafka.statuses(body["request_id"]))
    await engine.cancels.cancel(body["request_id"], None)
    assert await world.finished(body["request_id"]) == "cancelled"
    ids = [e["event_id"] for e in world.kafka.events(body["request_id"])]
    assert len(ids) == len(set(ids)) == 3


async def test_an_early_cancel_from_another_tenant_is_refused(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request(user_id="u-1", tenant_id="t-1")
    stranger = Identity("u-1", "t-2", None)  # the same user name in another tenant
    assert await engine.cancels.cancel(body["request_id"], None, stranger) == "remembered"
    await world.send(body)
    assert await world.finished(body["request_id"]) == "completed"
