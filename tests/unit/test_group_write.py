"""Group commit (consumers/storage/group_write.py): alone at once, together under load, and
each caller gets its own write's outcome."""

from __future__ import annotations

import asyncio

import pytest

from consumers.storage.group_write import GroupWrite


class Recorder:
    def __init__(self) -> None:
        self.writes: list[dict[str, int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_next = False

    async def write(self, batch: dict[str, int]) -> None:
        self.writes.append(dict(batch))
        await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("injected")


async def test_a_lone_call_is_written_at_once() -> None:
    recorder = Recorder()
    await GroupWrite(recorder.write)("a", 1)
    assert recorder.writes == [{"a": 1}]


async def test_calls_made_during_a_write_share_the_next_one() -> None:
    recorder = Recorder()
    group = GroupWrite(recorder.write, merge=max)
    recorder.gate.clear()
    first = asyncio.create_task(group("a", 1))
    await asyncio.sleep(0)  # the first write is in flight
    later = [asyncio.create_task(group(f"t{n}", n)) for n in range(10)]
    later.append(asyncio.create_task(group("t3", 30)))  # the same key twice: merged
    await asyncio.sleep(0)
    assert not any(task.done() for task in [first, *later])
    recorder.gate.set()
    await asyncio.gather(first, *later)
    assert recorder.writes == [{"a": 1}, {**{f"t{n}": n for n in range(10)}, "t3": 30}]


async def test_a_failed_write_fails_its_callers_only() -> None:
    recorder = Recorder()
    group = GroupWrite(recorder.write)
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
    group = GroupWrite(recorder.write)
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
