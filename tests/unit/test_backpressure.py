"""Back-pressure across rebalances: aiokafka forgets which partitions were paused when it
assigns them again, so the request listener hands each new assignment to back-pressure."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from consumers.operations.metrics import Metrics
from consumers.settings import Settings
from consumers.subscribers.backpressure import Backpressure
from consumers.subscribers.requests import build_router


class Consumer:
    """The part of aiokafka's consumer back-pressure uses; a new assignment is unpaused."""

    def __init__(self, partitions: set[int]) -> None:
        self.partitions = partitions
        self.paused: set[int] = set()

    def assignment(self) -> set[int]:
        return set(self.partitions)

    def pause(self, *partitions: int) -> None:
        self.paused |= set(partitions)

    def resume(self, *partitions: int) -> None:
        self.paused -= set(partitions)

    def rebalance(self, partitions: set[int]) -> None:
        self.partitions, self.paused = partitions, set()


class Scheduler:
    def __init__(self, held: int) -> None:
        self.held = held
        self.room = asyncio.Event()

    async def wait_for_room(self, below: int) -> None:
        await self.room.wait()


def backpressure(held: int, limit: int = 10) -> tuple[Backpressure, Consumer, Scheduler]:
    consumer = Consumer({0, 1})
    scheduler = Scheduler(held)
    subscriber = SimpleNamespace(consumer=consumer)
    return Backpressure(subscriber, scheduler, limit, Metrics()), consumer, scheduler  # type: ignore[arg-type]


async def test_partitions_assigned_while_paused_are_paused_again() -> None:
    bp, consumer, _ = backpressure(held=10)
    rebalances = build_router(Settings(_env_file=None)).rebalances
    rebalances.on_assigned = bp.assigned
    bp.check()
    assert bp.paused and consumer.paused == {0, 1}
    consumer.rebalance({1, 2, 3})  # another instance left: its partitions come to this one
    await rebalances.on_partitions_assigned({1, 2, 3})
    assert consumer.paused == {1, 2, 3}
    await bp.stop()


async def test_an_instance_starting_at_its_limit_pauses_its_first_assignment() -> None:
    bp, consumer, _ = backpressure(held=12)  # tasks of its last run, adopted at start
    bp.assigned({0, 1})
    assert bp.paused and consumer.paused == {0, 1}
    await bp.stop()


async def test_below_the_limit_an_assignment_is_read() -> None:
    bp, consumer, scheduler = backpressure(held=3)
    bp.assigned({0, 1})
    assert not bp.paused and consumer.paused == set()
    scheduler.held = 10
    bp.check()
    scheduler.room.set()  # tasks ended: intake resumes
    for _ in range(10):
        await asyncio.sleep(0)
    assert not bp.paused and consumer.paused == set()
