"""Crashes, restarts and several instances: every task ends exactly once, nothing is paid twice."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from tests.e2e.conftest import KAFKA, Deployment, Simulator
from tests.e2e.models import marked
from tests.harness import ServiceProcess, request, send

pytestmark = pytest.mark.integration

TERMINAL = {"completed", "failed", "cancelled"}


def batch(label: str, count: int, models: tuple[str, ...]) -> list[tuple[str, str]]:
    run = uuid.uuid4().hex[:6]
    return [(f"{label}-{run}-{i}", models[i % len(models)]) for i in range(count)]


def resubmissions(metrics_text: str) -> int:
    """The survivor's count of submits repeated after a crash in the submit window."""
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics_text.splitlines()
            if line.startswith("video_upstream_resubmissions_total{")
        )
    )


async def assert_each_ended_once(
    deployment: Deployment, sim: Simulator, work: list[tuple[str, str]], survivor: ServiceProcess
) -> None:
    """Each task ended exactly once, completed; no task was generated twice except where the
    instance died between sending a submit and recording the vendor's task id, and each of
    those is counted by the instance that submitted again."""
    collector = deployment.collector
    extra_generations = 0
    for request_id, _ in work:
        statuses = [e["status"] for e in collector.events(request_id, deployment.topics.status)]
        # Re-published events keep their event_id: count distinct ones.
        distinct = {
            e["event_id"]: e for e in collector.events(request_id, deployment.topics.status)
        }
        terminal = [e for e in distinct.values() if e["status"] in TERMINAL]
        assert len(terminal) == 1, (request_id, statuses)
        assert terminal[0]["status"] == "completed", (request_id, terminal[0])
        sequences = sorted(e["sequence"] for e in distinct.values())
        assert sequences == list(range(1, len(sequences) + 1)), (request_id, sequences)
        generations = await sim.generations(prompt_contains=f"[{request_id}]")
        assert generations >= 1, request_id
        extra_generations += generations - 1
    # A counted resubmission may also be one whose first attempt never reached the vendor.
    assert extra_generations <= resubmissions(await survivor.metrics())
    # Every file under a final name is whole; no temporary file is left behind.
    names = Counter(p.suffix for p in deployment.video_dir.iterdir())
    assert names[".part"] == 0
    for task in await deployment.settled_tasks():
        assert task["status"] == "completed" and task["active"] is False, {
            k: task.get(k)
            for k in ("request_id", "status", "active", "published", "lease_owner", "sequence")
        } | {"events": len(task["events"])}
        for video in task["result"]["videos"]:
            with open(video["local_path"], "rb") as handle:
                data = handle.read()
            assert len(data) == video["size_bytes"] and data[4:8] == b"ftyp"


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
    await collector.wait_for(
        lambda: all(collector.events(r, deployment.topics.completed) for r, _ in work),
        90,
        "all completed",
    )
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
    await collector.wait_for(
        lambda: all(collector.events(r, deployment.topics.completed) for r, _ in work),
        90,
        "all completed",
    )
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
