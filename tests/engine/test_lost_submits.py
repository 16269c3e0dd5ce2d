"""A submit whose answer is lost is resolved, never sent blindly again: DashScope's task list is
asked (adopt the one task, or submit anew when there is none), BigModel gets the same request id
again (it refuses a second task)."""

from __future__ import annotations

import asyncio
from typing import Any

from consumers.engine.engine import Engine
from tests.engine.harness import World, request
from tests.factories import make_task


def lost_answer(world: World, body: dict[str, Any], *, created: bool) -> None:
    """The vendor answers the next submit with a 500, having created the task or not."""
    stage = "after" if created else "before"
    marker = body["request_id"]
    world.sim.faults.add(
        {"action": "500", "route": "submit", "times": 1, "stage": stage, "prompt_contains": marker}
    )


def lookups(engine: Engine, outcome: str) -> float:
    return engine.ctx.metrics.submit_lookups.labels("aliyun", outcome)._value.get()


async def test_dashscope_task_created_behind_a_500_is_adopted(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request("wanx2.1-t2v-turbo")
    lost_answer(world, body, created=True)
    await world.send(body)
    assert await world.finished(body["request_id"]) == "completed"
    assert world.generations(body["request_id"]) == 1
    assert lookups(engine, "adopted") == 1


async def test_dashscope_submit_refused_behind_a_500_is_sent_again(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request("wanx2.1-t2v-turbo")
    lost_answer(world, body, created=False)
    await world.send(body)
    assert await world.finished(body["request_id"]) == "completed"
    assert world.generations(body["request_id"]) == 1
    assert lookups(engine, "none") == 1


async def test_bigmodel_lost_submit_is_sent_again_with_the_same_id(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    never_arrived, arrived = request(), request()
    lost_answer(world, never_arrived, created=False)
    lost_answer(world, arrived, created=True)
    await world.send(never_arrived, arrived)
    assert await world.finished(never_arrived["request_id"]) == "completed"
    # The vendor refuses the repeat (1231) and its first task cannot be looked up: the task
    # fails, and the video is never paid for twice.
    assert await world.finished(arrived["request_id"]) == "failed"
    error = world.kafka.events(arrived["request_id"])[-1]["error"]
    assert error["code"] == "upstream_rejected" and error["upstream_code"] == "1231"
    for body in (never_arrived, arrived):
        assert world.generations(body["request_id"]) == 1


async def test_a_submit_lost_in_a_crash_is_adopted_by_the_next_owner(world: World) -> None:
    engine = world.start_engine()
    provider = engine.ctx.providers["aliyun"]
    spec_params = {"prompt": "crash [lost-1]"}
    parameters = provider.models["wanx2.1-t2v-turbo"].parameters.model_validate(spec_params)
    started = engine.clock.now()
    await provider.submit("lost-1", "wanx2.1-t2v-turbo", parameters, attempt=1)  # then it died
    task = make_task(
        request_id="lost-1",
        provider="aliyun",
        model="wanx2.1-t2v-turbo",
        params=spec_params,
        owner="dead",
        lease_s=-1,
        submit_ticket="ticket-of-the-dead",
        submit_started_at=started,
        submit_attempts=1,
    )
    await world.store.insert_many([task])
    await engine.start()
    await engine.leases.claim_expired()
    assert await world.finished("lost-1") == "completed"
    assert world.generations("lost-1") == 1
    assert engine.ctx.metrics.resubmissions.labels("aliyun", "wanx2.1-t2v-turbo")._value.get() == 0


async def test_a_resend_stopped_before_it_leaves_keeps_the_first_attempt_unresolved(
    world: World,
) -> None:
    # Seen end to end: a resend stopped by a doubtful lease cleared the ticket of the attempt
    # it was resending, and the task was then submitted anew (paid twice).
    engine = world.start_engine()
    ticks = [0.0]
    engine.leases._monotonic = lambda: ticks[0]
    await engine.leases.renew()
    body = request()
    lost_answer(world, body, created=True)
    await world.send(body)
    await world.until(lambda: world.generations(body["request_id"]) == 1)
    ticks[0] += 100.0  # the event loop stalls: no side effect may start
    await asyncio.sleep(0.6)  # the resend is due, and stopped before it leaves
    stored = await world.store.find_by_request_id(body["request_id"])
    assert stored is not None and stored.submit_unresolved
    await engine.leases.renew()
    await engine.start()
    assert await world.finished(body["request_id"]) == "failed"  # 1231: never paid twice
    assert world.generations(body["request_id"]) == 1


async def test_two_lost_submits_never_take_each_others_vendor_task(world: World) -> None:
    # Seen end to end: an instance died with two submits of one model unresolved, one of
    # which had reached DashScope; the other task adopted that vendor task (the wrong video).
    engine = world.start_engine(upstream_max_attempts=2, retry_base_s=0.01, retry_max_s=0.02)
    provider = engine.ctx.providers["aliyun"]
    model = "wanx2.1-t2v-turbo"
    started = engine.clock.now()
    reached, lost = (
        make_task(
            request_id=name,
            provider="aliyun",
            model=model,
            params={"prompt": f"a cat [{name}]"},
            owner="dead",
            lease_s=-1,
            submit_ticket=f"ticket-{name}",
            submit_started_at=started,
            submit_attempts=1,
        )
        for name in ("reached-1", "lost-1")
    )
    parameters = provider.models[model].parameters.model_validate(reached.params)
    upstream = await provider.submit("reached-1", model, parameters, attempt=1)
    await world.store.insert_many([reached, lost])
    await engine.start()
    await engine.leases.claim_expired()
    for request_id in ("reached-1", "lost-1"):
        await world.finished(request_id, timeout=10)
    lost_task = await world.store.find_by_request_id("lost-1")
    assert lost_task is not None and lost_task.upstream_task_id != upstream.upstream_task_id
    assert world.generations("lost-1") == 0 and world.generations("reached-1") == 1
