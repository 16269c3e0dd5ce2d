"""`consumers.subscribers.unreadable`: a record the Kafka client cannot parse is found by its
offset and handed on as an `UnreadableRecord`, the records around it as usual (the real thing,
with aiokafka and a header name that is not UTF-8, is in tests/e2e/test_fuzz.py)."""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from consumers.subscribers.unreadable import guard, guard_single, unreadable

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


def rec(tp: TopicPartition, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, None, b"v", None, 0, 1, [])


class Consumer:
    """aiokafka's consumer as far as `salvage` uses it: partition A holds offsets 0..4, of which
    2 cannot be parsed; B holds 0..1. A fetch of several partitions fails as aiokafka's does."""

    def __init__(self) -> None:
        self.logs = {A: 5, B: 2}
        self.bad = {A: {2}, B: set()}
        self.positions = {A: 1, B: 2}  # where the failed fetch left them
        self.commits: dict[TopicPartition, int | None] = {A: 0, B: None}

    def assignment(self) -> set[TopicPartition]:
        return {A, B}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.commits[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.positions[tp] = offset

    async def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.positions[tp] = 0

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]

    async def getmany(self, *tps: TopicPartition, **kwargs: Any) -> dict[Any, Any]:
        got: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
        for tp in tps or (A, B):
            taken = 0
            while self.positions[tp] < self.logs[tp] and taken < kwargs.get("max_records", 99):
                if self.positions[tp] in self.bad[tp]:
                    raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
                got.setdefault(tp, []).append(rec(tp, self.positions[tp]))
                self.positions[tp] += 1
                taken += 1
        return got


class Subscriber:
    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer

    async def get_msg(self, consumer: Consumer) -> Any:
        return tuple(r for rs in (await consumer.getmany(max_records=500)).values() for r in rs)


async def test_the_unreadable_record_is_found_and_nothing_else_is_lost() -> None:
    consumer = Consumer()
    subscriber = Subscriber(consumer)
    guard(subscriber, 500)
    batch = await subscriber.get_msg(consumer)
    places = [(r.partition, r.offset, unreadable(r) is not None) for r in batch]
    # A is rewound to its commit (0), B (never committed) to its beginning.
    assert places == [(0, 0, False), (0, 1, False), (0, 2, True), (1, 0, False), (1, 1, False)]
    assert "UnicodeDecodeError" in (unreadable(batch[2]) or "")
    assert consumer.positions == {A: 3, B: 2}
    # Then the ordinary fetch goes on after it.
    assert [(r.partition, r.offset) for r in await subscriber.get_msg(consumer)] == [(0, 3), (0, 4)]


async def test_a_single_record_subscriber_gets_the_unreadable_one_alone() -> None:
    consumer = Consumer()
    consumer.positions[A] = consumer.commits[A] = 2
    consumer.commits[B] = 2

    class Single(Subscriber):
        async def get_msg(self, consumer: Consumer) -> Any:
            return (await consumer.getmany(max_records=1)).popitem()[1][0]

    subscriber = Single(consumer)
    guard_single(subscriber)
    record = await subscriber.get_msg(consumer)
    assert (record.partition, record.offset) == (0, 2) and unreadable(record)
    assert consumer.positions[A] == 3
