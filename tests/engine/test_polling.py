"""Polls spend the query budget on the tasks most likely done; durations are learned."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from consumers.engine.durations import Durations
from consumers.engine.polling import PollPlanner
from consumers.storage.memory import MemoryTaskStore
from tests.engine.harness import World, request


async def test_turns_go_to_the_most_overdue_task_first() -> None:
    tokens: asyncio.Queue[None] = asyncio.Queue()
    planner = PollPlanner(tokens.get)
    granted: list[str] = []

    async def wait(name: str, due: float) -> None:
        await planner.turn(due)
        granted.append(name)

    waiters = [
        asyncio.create_task(wait(n, d)) for n, d in (("late", 30), ("first", 10), ("mid", 20))
    ]
    await asyncio.sleep(0.01)
    assert granted == [] and planner.waiting == 3
    for _ in range(3):
        tokens.put_nowait(None)
        await asyncio.sleep(0.01)
    assert granted == ["first", "mid", "late"]
    await asyncio.gather(*waiters)
    await planner.stop()


async def test_a_cancelled_turn_is_skipped() -> None:
    tokens: asyncio.Queue[None] = asyncio.Queue()
    planner = PollPlanner(tokens.get)
    gone = asyncio.create_task(planner.turn(1.0))
    kept = asyncio.create_task(planner.turn(2.0))
    await asyncio.sleep(0.01)
    gone.cancel()
    tokens.put_nowait(None)
    await asyncio.wait_for(kept, 1)
    await planner.stop()


async def test_durations_follow_observations_and_ignore_outliers() -> None:
    store = MemoryTaskStore()
    durations = Durations(store, {"m": 100.0})
    for _ in range(40):
        durations.learn("m", 10.0)
    assert 9.0 < durations.estimate("m") < 12.0
    durations.learn("m", 100_000.0)  # one stuck task
    assert durations.estimate("m") < 10.0 * 1.3
    await durations.stop()
    again = Durations(store, {"m": 100.0})
    await again.load()
    assert again.estimate("m") == pytest.approx(durations.estimate("m"))


async def test_completion_is_noticed_within_a_second_under_the_budget(world: World) -> None:
    # DashScope's documented budget: 20 queries/s, 2 tasks running per model.
    engine = world.start_engine(
        aliyun_queries_per_s=20, aliyun_running_per_model=2, poll_interval_min_s=0.2
    )
    await engine.start()
    world.sim.config = world.sim.config.updated({"timing": {"queued_s": 0.1, "running_s": 1.5}})
    models = ["wanx2.1-t2v-turbo", "wanx2.1-t2v-plus", "wanx2.1-i2v-turbo", "wanx2.1-i2v-plus"]
    image = {"img_url": "https://example.com/cat.png"}
    bodies = [request(m, parameters=image if "i2v" in m else {}) for m in models for _ in range(2)]
    await world.send(*bodies)
    for body in bodies:
        assert await world.finished(body["request_id"], timeout=15) == "completed"
    delays = []
    for body in bodies:
        (upstream,) = [t for t in world.sim.tasks.all() if body["request_id"] in (t.prompt or "")]
        downloading = next(
            e for e in world.kafka.events(body["request_id"]) if e["status"] == "downloading"
        )
        noticed = datetime.fromisoformat(downloading["timestamp"].replace("Z", "+00:00"))
        delays.append(noticed.timestamp() - upstream.ended)
    assert max(delays) < 1.0, delays
