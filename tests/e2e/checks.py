"""Shared end-to-end checks: every request ended exactly once, and nothing was paid for twice.

Used by the crash tests (test_resilience.py) and the infrastructure-fault tests
(test_infrastructure.py). No request may be generated twice in either. Where an instance
crashed (`survivor`), a task whose submit was lost in the crash (sent, its answer never stored)
may end `failed` instead of completed: BigModel refuses the repeat of its request id (1231) and
cannot be asked which task it made; DashScope's task list cannot tell two lost submits of one
model apart. It is never paid for twice (see consumers/engine/resolve.py).
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from tests.e2e.conftest import Deployment, Simulator
from tests.harness import ServiceProcess

TERMINAL = {"completed", "failed", "cancelled"}
# How a task whose submit was lost in a crash may end (README, "What is guaranteed").
LOST_IN_A_CRASH = {"upstream_rejected", "upstream_unavailable"}


def batch(label: str, count: int, models: tuple[str, ...]) -> list[tuple[str, str]]:
    """`count` (request_id, model) pairs over `models`, with ids no other test uses."""
    run = uuid.uuid4().hex[:6]
    return [(f"{label}-{run}-{i}", models[i % len(models)]) for i in range(count)]


def resubmissions(metrics_text: str) -> int:
    """An instance's count of submits repeated after a crash in the submit window."""
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics_text.splitlines()
            if line.startswith("video_upstream_resubmissions_total{")
        )
    )


def all_ended(deployment: Deployment, work: list[tuple[str, str]]) -> bool:
    """Every request has a terminal status (a completed one also its completed event)."""
    collector, topics = deployment.collector, deployment.topics
    for request_id, _ in work:
        ended = {e["status"] for e in collector.events(request_id, topics.status)} & TERMINAL
        if not ended:
            return False
        if "completed" in ended and not collector.events(request_id, topics.completed):
            return False
    return True


def latest_status(deployment: Deployment, request_id: str) -> str | None:
    """The status of the request's highest-sequence event seen so far."""
    events = deployment.collector.events(request_id, deployment.topics.status)
    if not events:
        return None
    return str(max(events, key=lambda e: e["sequence"])["status"])


def phases(deployment: Deployment, work: list[tuple[str, str]]) -> Counter[str | None]:
    """How many requests are at each status, by the latest event seen (None: no event yet)."""
    return Counter(latest_status(deployment, request_id) for request_id, _ in work)


async def assert_each_ended_once(
    deployment: Deployment,
    sim: Simulator,
    work: list[tuple[str, str]],
    survivor: ServiceProcess | None = None,
) -> None:
    """Each task ended exactly once, with gap-free sequences, completed (or, only after a crash,
    failed as a submit lost in it); no request was generated twice; every file under a final
    name is whole and belongs to a completed task; no temporary file is left."""
    collector = deployment.collector
    extra_generations: dict[str, int] = {}
    lost: set[str] = set()
    for request_id, _ in work:
        events = collector.events(request_id, deployment.topics.status)
        statuses = [e["status"] for e in events]
        # Re-published events keep their event_id: count distinct ones.
        distinct = {e["event_id"]: e for e in events}
        terminal = [e for e in distinct.values() if e["status"] in TERMINAL]
        assert len(terminal) == 1, (request_id, statuses)
        end = terminal[0]
        if end["status"] != "completed":
            crash_loss = survivor is not None and end["error"]["code"] in LOST_IN_A_CRASH
            assert crash_loss, (request_id, end)
            lost.add(request_id)
        sequences = sorted(e["sequence"] for e in distinct.values())
        assert sequences == list(range(1, len(sequences) + 1)), (request_id, sequences)
        completed = {
            e["event_id"] for e in collector.events(request_id, deployment.topics.completed)
        }
        assert len(completed) == (0 if request_id in lost else 1), (request_id, completed)
        generations = await sim.generations(prompt_contains=f"[{request_id}]")
        assert generations >= (0 if request_id in lost else 1), request_id
        if generations > 1:
            extra_generations[request_id] = generations - 1
    assert not extra_generations, f"generated more than once: {extra_generations}"
    assert len(lost) < len(work), "the crash lost every submit: nothing was tested"
    # Every file under a final name is whole and is a task's; no temporary file is left behind.
    files = {p.name for p in deployment.video_dir.iterdir()}
    assert not [name for name in files if name.endswith(".part")], sorted(files)
    results: set[str] = set()
    tasks = await deployment.settled_tasks()
    assert len(tasks) == len(work), (len(tasks), len(work))
    for task in tasks:
        assert task["active"] is False, _summary(task)
        if task["request_id"] in lost:
            continue
        assert task["status"] == "completed", _summary(task)
        for video in task["result"]["videos"]:
            with open(video["local_path"], "rb") as handle:
                data = handle.read()
            assert len(data) == video["size_bytes"] and data[4:8] == b"ftyp", video
            results.add(video["filename"])
    assert files == results, {"not a task's": files - results, "missing": results - files}


def _summary(task: dict[str, Any]) -> dict[str, Any]:
    keys = ("request_id", "status", "active", "published", "lease_owner", "sequence")
    return {k: task.get(k) for k in keys} | {"events": len(task["events"])}
