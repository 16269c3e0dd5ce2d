"""Group commit (consumers/storage/batched.py): alone at once, together under load, and each
caller gets its own result, or its own batch's error."""

from __future__ import annotations

import asyncio

import pytest

from consumers.storage.batched import Batched


class Recorder:
    def __init__(self) -> None:
        self.writes: list[dict[str, int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next = False

    async def write(self, batch: dict[str, int]) -> dict[str, int]:
        self.writes.append(dict(batch))
        await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("injected")
        return {key: value * 10 for key, value in batch.items() if key != "absent"}


async def test_a_lone_call_is_written_at_once_with_its_result() -> None:
    recorder = Recorder()
    batched = Batched(recorder.write)
    assert await batched("a", 1) == 10
    assert await batched("absent", 1) is None
    assert recorder.writes == [{"a": 1}, {"absent": 1}]


async def test_calls_made_during_a_write_share_the_next_one() -> None:
    recorder = Recorder()
    group = Batched(recorder.write, merge=max)
    recorder.gate.clear()
    first = asyncio.create_task(group("a", 1))
    await asyncio.sleep(0)  # the first write is in flight
    later = [asyncio.create_task(group(f"t{n}", n)) for n in range(10)]
    later.append(asyncio.create_task(group("t3", 30)))  # the same key twice: merged
    await asyncio.sleep(0)
    assert not any(task.done() for task in [first, *later])
    recorder.gate.set()
    results = await asyncio.gather(first, *later)
    # Both calls for t3 ran as one, with the merged value.
    assert results == [10, *(300 if n == 3 else n * 10 for n in range(10)), 300]
    assert recorder.writes == [{"a": 1}, {**{f"t{n}": n for n in range(10)}, "t3": 30}]


async def test_a_failed_write_fails_its_callers_only() -> None:
    recorder = Recorder()
    group = Batched(recorder.write)
    recorder.gate.clear()
    recorder.fail_next = True
    failing = asyncio.create_task(group("a", 1))
    await asyncio.sleep(0)
    next_one = asyncio.create_task(group("b", 2))
    recorder.gate.set()
    with pytest.raises(ConnectionError):
        await failing
    await next_one
    assert recorder.writes == [{"a": 1}, {"b": 2}]


async def test_a_cancelled_caller_does_not_cancel_the_others_write() -> None:
    recorder = Recorder()
    group = Batched(recorder.write)
    recorder.gate.clear()
    await_first = asyncio.create_task(group("a", 1))
    await asyncio.sleep(0)
    leaving = asyncio.create_task(group("b", 2))
    staying = asyncio.create_task(group("c", 3))
    await asyncio.sleep(0)
    leaving.cancel()
    recorder.gate.set()
    await asyncio.gather(await_first, staying)
    assert leaving.cancelled()
    assert recorder.writes == [{"a": 1}, {"b": 2, "c": 3}]
