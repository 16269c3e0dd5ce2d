"""Vendor limits belong to the account, not to an instance: three instances on one store keep
DashScope's documented limits together, use them fully, and share them fairly between tenants."""

from __future__ import annotations

import itertools
from typing import Any

from tests.engine.harness import World, request

DASHSCOPE_LIMITS: dict[str, Any] = {
    "aliyun_submits_per_s": 2,
    "aliyun_running_per_model": 2,
    "aliyun_queries_per_s": 20,
    "aliyun_api_key": "sk-one",  # one key: the simulator's per-key limits are the account's
    "poll_interval_min_s": 0.1,
}


def enforce_dashscope_limits(world: World, running_s: float) -> None:
    world.sim.config = world.sim.config.updated(
        {
            "timing": {"queued_s": 0.0, "running_s": running_s},
            "running_limit": 2,
            "running_limit_mode": "reject",  # answered with 429, as DashScope does
            "submit_qps": 2,
            "query_qps": 20,
        }
    )


def refusals(world: World) -> dict[str, int]:
    """The vendor's limit-exceeded answers, by route (none expected)."""
    counts = {r: world.sim.stats.count("dashscope", r, 429) for r in ("submit", "query")}
    return {route: n for route, n in counts.items() if n}


def utilisation(world: World, limit: int) -> float:
    """Vendor-side running time over what `limit` slots allow while work waits for a slot: from
    the moment all slots could first be full (before that, the submit rate is the limit in use)
    to the last submit (after it, nothing waits)."""
    tasks = sorted(world.sim.tasks.all(), key=lambda t: t.created)
    start, end = tasks[limit - 1].created, tasks[-1].created
    busy = sum(max(0.0, min(t.ended, end) - max(t.created, start)) for t in tasks)
    return busy / (limit * (end - start))


async def test_three_instances_keep_the_account_limits_together(world: World) -> None:
    enforce_dashscope_limits(world, running_s=2.0)
    engines = [world.start_engine(instance_id=f"i{n}", **DASHSCOPE_LIMITS) for n in range(3)]
    for engine in engines:
        await engine.start()
    bodies = [request("wanx2.1-t2v-turbo") for _ in range(6)]
    for body, engine in zip(bodies, itertools.cycle(engines), strict=False):
        await world.send(body, to=engine)
    for body in bodies:
        assert await world.finished(body["request_id"], timeout=30) == "completed"
    assert refusals(world) == {}, "no limit-exceeded answer"
    used = utilisation(world, limit=2)
    print(f"running-slot utilisation with three instances: {used:.0%}")
    assert used >= 0.9


async def test_a_burst_of_one_tenant_does_not_starve_another(world: World) -> None:
    enforce_dashscope_limits(world, running_s=0.5)
    engine = world.start_engine(**DASHSCOPE_LIMITS)
    await engine.start()
    burst = [request("wanx2.1-t2v-turbo", tenant_id="big") for _ in range(10)]
    late: dict[str, Any] = request("wanx2.1-t2v-turbo", tenant_id="small")
    await world.send(*burst)
    await world.send(late)
    assert await world.finished(late["request_id"], timeout=30) == "completed"
    finished_before = sum(1 for b in burst if "completed" in world.kafka.statuses(b["request_id"]))
    # The small tenant waits at most one slot's turn behind the burst: two running, one turn.
    assert finished_before <= 3, finished_before
    for body in burst:
        assert await world.finished(body["request_id"], timeout=30) == "completed"
    assert refusals(world) == {}
