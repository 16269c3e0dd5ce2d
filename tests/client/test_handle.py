"""TaskHandle without Kafka: events fed as the client's reader hands them over."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from video_client import RequestRejected, TaskCancelled, TaskFailed, Topics, VideoClient
from video_client.client import MESSAGE_ID_HEADER, TaskHandle

TOPICS = Topics()


def status(seq: int, name: str, task: str = "task-1", **extra: Any) -> bytes:
    body = {
        "event_id": f"{task}-{seq}",
        "event_type": "status",
        "request_id": "r-1",
        "task_id": task,
        "sequence": seq,
        "status": name,
        "provider": "aliyun",
        "model": "wanx2.1-t2v-turbo",
        "timestamp": "2026-11-27T20:08:58.123Z",
        **extra,
    }
    return json.dumps(body).encode()


def completed(task: str = "task-1") -> bytes:
    body = json.loads(status(5, "completed", task))
    body.update(
        event_type="completed",
        event_id="done",
        result={"upstream_task_id": "u", "model": "m", "created": "x", "videos": []},
        timings={"queued_s": 0, "generation_s": 1, "download_s": 0, "total_s": 1},
    )
    return json.dumps(body).encode()


def handle(**kwargs: Any) -> TaskHandle:
    return TaskHandle(VideoClient("unused:9092", topics=TOPICS), "r-1", **kwargs)


async def drain(h: TaskHandle) -> list[tuple[int, str]]:
    async with asyncio.timeout(5):
        return [(e.sequence, e.status) async for e in h.events()]


async def test_each_event_once_in_sequence_order() -> None:
    h = handle()
    sequences = [(1, "accepted"), (2, "submitted"), (1, "accepted"), (2, "submitted"),
                 (3, "running"), (2, "submitted")]  # fmt: skip
    for seq, name in sequences:
        h._receive(TOPICS.status, status(seq, name), [])
    h._receive(TOPICS.status, b"not json", [])
    h._receive(TOPICS.status, status(4, "completed"), [])
    h._receive(TOPICS.completed, completed(), [])
    assert await drain(h) == [(1, "accepted"), (2, "submitted"), (3, "running"), (4, "completed")]
    assert (await h.result(1)).event_id == "done"
    assert h.done


async def test_iterators_started_early_see_later_events() -> None:
    h = handle()
    seen = asyncio.create_task(drain(h))
    await asyncio.sleep(0.05)
    h._receive(TOPICS.status, status(1, "accepted"), [])
    await asyncio.sleep(0.05)
    h._receive(TOPICS.status, status(2, "failed", error={"code": "timeout", "message": "late"}), [])
    assert await seen == [(1, "accepted"), (2, "failed")]
    with pytest.raises(TaskFailed) as caught:
        await h.result(1)
    assert caught.value.code == "timeout" and "late" in str(caught.value)


async def test_cancelled_raises_task_cancelled() -> None:
    h = handle()
    h._receive(TOPICS.status, status(1, "accepted"), [])
    h._receive(
        TOPICS.status, status(2, "cancelled", error={"code": "cancelled", "message": "x"}), []
    )
    with pytest.raises(TaskCancelled):
        await h.result(1)


async def test_history_comes_first_then_what_arrived_meanwhile() -> None:
    h = handle(history=True)
    h._receive(TOPICS.status, status(3, "running"), [])  # live, while the past is read
    assert h.statuses == [] and not h.done
    h._history_loaded(
        [(TOPICS.status, status(1, "accepted"), []), (TOPICS.status, status(2, "submitted"), [])]
    )
    await h.loaded()
    assert [e.sequence for e in h.statuses] == [1, 2, 3]


async def test_a_reused_request_id_follows_the_new_task() -> None:
    h = handle(history=True)
    refused = status(
        1, "failed", task="rejected-1", error={"code": "invalid_parameters", "message": "x"}
    )
    h._history_loaded([(TOPICS.status, refused, []), (TOPICS.status, status(1, "accepted"), [])])
    assert [(e.task_id, e.status) for e in h.statuses] == [("task-1", "accepted")]


def dead_letter(message_id: str, code: str = "unauthorized") -> bytes:
    body = {
        "event_type": "rejected",
        "error": {"code": code, "message": "no token"},
        "original": {"topic": TOPICS.requests, "partition": 0, "offset": 1, "key": "r-1",
                     "headers": {MESSAGE_ID_HEADER: message_id}, "value": "{}"},
        "timestamp": "2026-11-27T20:08:58.123Z",
    }  # fmt: skip
    return json.dumps(body).encode()


async def test_a_dead_letter_of_its_own_request_ends_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("video_client.client.REJECTION_GRACE_S", 0.1)
    h = handle(message_ids={"mine"})
    h._receive(TOPICS.dlq, dead_letter("someone-else"), [])
    assert not h.done
    h._receive(TOPICS.dlq, dead_letter("mine"), [])
    with pytest.raises(RequestRejected) as caught:
        await h.result(2)
    assert caught.value.code == "unauthorized" and caught.value.event is None
    with pytest.raises(RequestRejected):
        await drain(h)


async def test_a_dead_letter_with_a_failed_status_gives_the_status() -> None:
    h = handle(message_ids={"mine"})
    h._receive(TOPICS.dlq, dead_letter("mine", "invalid_parameters"), [])
    failed = status(
        1, "failed", task="rejected-1", error={"code": "invalid_parameters", "message": "x"}
    )
    h._receive(TOPICS.status, failed, [])
    assert await drain(h) == [(1, "failed")]
    with pytest.raises(TaskFailed) as caught:
        await h.result(1)
    assert not isinstance(caught.value, RequestRejected)


async def test_result_times_out() -> None:
    with pytest.raises(TimeoutError):
        await handle().result(0.1)


class Router:
    def __init__(self) -> None:
        self.unregistered: list[TaskHandle] = []

    def unregister(self, h: TaskHandle) -> None:
        self.unregistered.append(h)


async def test_the_completed_event_may_come_before_the_completed_status() -> None:
    h = handle()
    router = Router()
    h.client._router = router  # type: ignore[assignment]
    h._receive(TOPICS.status, status(1, "accepted"), [])
    h._receive(TOPICS.completed, completed(), [])  # from the other topic, first
    assert router.unregistered == []  # the status is still to come
    h._receive(TOPICS.status, status(5, "completed"), [])
    assert router.unregistered == [h]
    assert await drain(h) == [(1, "accepted"), (5, "completed")]
    assert (await h.result(1)).event_id == "done"
