"""The task log context in a running engine: lines logged during a task's steps carry its ids
(consumers.engine.actor sets it around each step; consumers/operations/logs.py)."""

from __future__ import annotations

import logging

import pytest

from tests.engine.harness import World, request


async def test_lines_of_a_tasks_steps_carry_its_ids(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    engine = world.start_engine()
    await engine.start()
    world.sim.faults.add({"action": "503", "route": "query", "times": 1})  # a retry is logged
    bodies = [request("wanx2.1-t2v-turbo"), request("cogvideox-flash")]
    await world.send(*bodies)
    for body in bodies:
        assert await world.finished(body["request_id"]) == "completed"
    found = [await world.store.find_by_request_id(b["request_id"]) for b in bodies]
    tasks = {t.request_id: t for t in found if t is not None}
    assert len(tasks) == 2
    concerned = 0
    for record in caplog.records:
        for task in tasks.values():
            if task.id not in record.getMessage() and task.request_id not in record.getMessage():
                continue
            fields = getattr(record, "video_task", None)
            if fields is None:
                continue  # logged outside a step (intake, the poll scheduler)
            concerned += 1
            assert fields["task_id"] == task.id, record.getMessage()
            assert fields["request_id"] == task.request_id
            assert fields["provider"] == task.provider and fields["model"] == task.model
    assert concerned >= 3  # both submits, and the query retry
    created = [r for r in caplog.records if "created for" in r.getMessage()]
    assert len(created) == 2 and all(hasattr(r, "video_task") for r in created)
    retried = [r for r in caplog.records if "retry" in r.getMessage()]
    assert retried and all(getattr(r, "video_task", {}).get("upstream_task_id") for r in retried)
