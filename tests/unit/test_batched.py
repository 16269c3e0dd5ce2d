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


async def test_a_burst_goes_out_in_parts_whose_callers_go_on_at_once() -> None:
    writes: list[list[str]] = []
    permits: asyncio.Queue[None] = asyncio.Queue()  # one per write allowed to land

    async def write(batch: dict[str, int]) -> dict[str, int]:
        writes.append(list(batch))
        await permits.get()
        return {key: value * 10 for key, value in batch.items()}

    group = Batched(write, most=3, parallel=1)
    first = asyncio.create_task(group("a", 1))
    await asyncio.sleep(0)  # the first write is in flight
    burst = [asyncio.create_task(group(f"t{n}", n)) for n in range(7)]
    for _ in range(2):  # the first write lands, then the burst's first part
        permits.put_nowait(None)
        await asyncio.sleep(0.01)
    assert first.done() and all(t.done() for t in burst[:3])
    assert not any(t.done() for t in burst[3:])
    for _ in range(2):
        permits.put_nowait(None)
    assert await asyncio.gather(*burst) == [n * 10 for n in range(7)]
    assert writes == [["a"], ["t0", "t1", "t2"], ["t3", "t4", "t5"], ["t6"]]


async def test_a_burst_larger_than_a_part_goes_out_in_parallel_parts() -> None:
    in_flight: list[list[str]] = []
    most_at_once = 0
    release = asyncio.Event()

    async def write(batch: dict[str, int]) -> dict[str, int]:
        nonlocal most_at_once
        in_flight.append(list(batch))
        most_at_once = max(most_at_once, len(in_flight))
        await release.wait()
        in_flight.remove(list(batch))
        return {key: value * 10 for key, value in batch.items()}

    group = Batched(write, most=2, parallel=3)
    first = asyncio.create_task(group("a", 1))
    await asyncio.sleep(0)
    burst = [asyncio.create_task(group(f"t{n}", n)) for n in range(8)]
    await asyncio.sleep(0.01)
    release.set()
    assert await asyncio.gather(first, *burst) == [10, *(n * 10 for n in range(8))]
    assert most_at_once == 3  # the first write and two more parts; never more than `parallel`


async def test_calls_one_at_a_time_make_one_round_trip_at_a_time() -> None:
    at_once = 0
    most_at_once = 0

    async def write(batch: dict[str, int]) -> dict[str, int]:
        nonlocal at_once, most_at_once
        at_once += 1
        most_at_once = max(most_at_once, at_once)
        await asyncio.sleep(0.001)
        at_once -= 1
        return dict(batch)

    group = Batched(write, most=5, parallel=4)
    calls = [asyncio.create_task(group(f"t{n}", n)) for n in range(5)]
    assert await asyncio.gather(*calls) == list(range(5))
    assert most_at_once == 1  # no more than a part waited: no second round trip at once
