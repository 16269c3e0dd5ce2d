"""Crashes, restarts and several instances: every task ends exactly once, nothing is paid twice."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.e2e.checks import TERMINAL, all_ended, assert_each_ended_once, batch, resubmissions
from tests.e2e.conftest import KAFKA, Deployment, Simulator
from tests.e2e.models import marked
from tests.harness import request, send

pytestmark = pytest.mark.integration


async def test_sigkill_mid_flight_then_restart_finishes_every_task_once(
    deployment: Deployment, sim: Simulator
) -> None:
    # Generations long enough that the kill lands while tasks are queued, running and downloading.
    await sim.configure(timing={"queued_s": 0.5, "running_s": 3.0})
    await sim.fault(route="download", action="slow_download", seconds=2.0)
    await deployment.collector.start()
    first = await deployment.start_instance()
    work = batch("kill", 30, ("wanx2.1-t2v-turbo", "cogvideox-flash", "vidu2-image"))
    await send(KAFKA, deployment.topics.requests, [request(r, m, marked(m, r)) for r, m in work])
    collector = deployment.collector
    await collector.wait_for(
        lambda: (
            sum(1 for r, _ in work if "submitted" in [e["status"] for e in collector.events(r)])
            >= 20
        ),
        30,
        "most tasks submitted",
    )
    first.kill()
    second = await deployment.start_instance()
    await collector.wait_for(lambda: all_ended(deployment, work), 120, "every task ended")
    await assert_each_ended_once(deployment, sim, work, survivor=second)


async def test_two_instances_share_the_work_and_survive_one_dying(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing={"queued_s": 0.5, "running_s": 4.0})
    await deployment.collector.start()
    one = await deployment.start_instance()
    two = await deployment.start_instance()
    await deployment.wait_for_group(2)
    work = batch("pair", 40, ("wanx2.1-i2v-turbo", "viduq1-text"))
    await send(KAFKA, deployment.topics.requests, [request(r, m, marked(m, r)) for r, m in work])
    collector = deployment.collector
    await collector.wait_for(
        lambda: all(collector.events(r) for r, _ in work), 30, "every request accepted"
    )
    owners = Counter(t["lease_owner"] for t in await deployment.tasks())
    assert len(owners) == 2, owners  # both instances took requests from their partitions
    one.kill()
    await collector.wait_for(lambda: all_ended(deployment, work), 120, "every task ended")
    await assert_each_ended_once(deployment, sim, work, survivor=two)
    assert "video_tasks_taken_over_total" in await two.metrics()


async def test_sigterm_saves_every_task_and_a_restart_resumes_them(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing={"queued_s": 0.5, "running_s": 3.0})
    await deployment.collector.start()
    first = await deployment.start_instance()
    work = batch("term", 20, ("wanx2.1-t2v-plus", "cogvideox-2"))
    await send(KAFKA, deployment.topics.requests, [request(r, m, marked(m, r)) for r, m in work])
    collector = deployment.collector
    await collector.wait_for(
        lambda: all(collector.events(r) for r, _ in work), 30, "every request accepted"
    )
    assert await first.terminate() == 0
    unfinished = [t for t in await deployment.tasks() if t["status"] not in TERMINAL]
    assert unfinished, "the test should stop the service with tasks in flight"
    assert all(t["lease_owner"] is None for t in unfinished)  # released for anyone to resume
    restarted = await deployment.start_instance()
    await collector.wait_for(
        lambda: all(collector.events(r, deployment.topics.completed) for r, _ in work),
        60,
        "all completed",
    )
    await assert_each_ended_once(deployment, sim, work, survivor=restarted)
    # A graceful stop lets every submit under way record its upstream id: nothing is resent.
    assert resubmissions(await restarted.metrics()) == 0
