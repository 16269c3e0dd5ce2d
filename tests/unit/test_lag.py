"""The request topic's consumer lag (consumers/operations/lag.py) against a stand-in consumer;
the real one is measured end to end in tests/e2e/test_observability.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, generate_latest

from consumers.operations.lag import NAME, ConsumerLag

TOPIC = "video.requests"


class Consumer:
    """What the sampler asks of aiokafka's consumer."""

    def __init__(self) -> None:
        self.assigned = {TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 2)}
        self.assigned.add(TopicPartition("video.cancel", 0))  # another topic: not reported
        self.ends = {0: 120, 2: 40}
        self.commits: dict[int, int | None] = {0: 100, 2: None}
        self.firsts = {0: 0, 2: 10}
        self.fail: Exception | None = None

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.fail is not None:
            raise self.fail
        assert all(tp.topic == TOPIC for tp in partitions)
        return {tp: self.ends[tp.partition] for tp in partitions}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.commits[tp.partition]

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return {tp: self.firsts[tp.partition] for tp in partitions}


class Subscriber:
    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer


async def test_lag_per_assigned_partition() -> None:
    consumer = Consumer()
    lag = ConsumerLag(Subscriber(consumer), TOPIC, CollectorRegistry())
    # Partition 0: committed 100 of 120. Partition 2: nothing committed yet, records 10..39.
    assert await lag.sample() == {0: 20, 2: 30}
    consumer.commits[2] = 40
    assert await lag.sample() == {0: 20, 2: 0}
    assert await ConsumerLag(Subscriber(None), TOPIC, CollectorRegistry()).sample() == {}
    consumer.assigned = {TopicPartition("video.cancel", 0)}
    assert await lag.sample() == {}


async def test_sampled_in_the_background_and_exported_from_start_to_stop() -> None:
    consumer = Consumer()
    registry = CollectorRegistry()
    lag = ConsumerLag(Subscriber(consumer), TOPIC, registry, interval_s=0.01)
    assert NAME not in generate_latest(registry).decode()
    lag.start()
    lag.start()  # once only
    for _ in range(200):
        if lag.lags:
            break
        await asyncio.sleep(0.01)
    value = registry.get_sample_value(NAME, {"topic": TOPIC, "partition": "0"})
    assert value == 20
    assert registry.get_sample_value(NAME, {"topic": TOPIC, "partition": "2"}) == 30

    consumer.fail = TimeoutError("no leader")  # a failed sample exports nothing, not stale data
    for _ in range(200):
        if not lag.lags:
            break
        await asyncio.sleep(0.01)
    exposition = generate_latest(registry).decode()
    assert f"# TYPE {NAME} gauge" in exposition and f"{NAME}{{" not in exposition

    consumer.fail = None
    for _ in range(200):
        if lag.lags:
            break
        await asyncio.sleep(0.01)
    assert lag.lags == {0: 20, 2: 30}
    await lag.stop()
    assert NAME not in generate_latest(registry).decode()
    lag.start()  # an app started again registers again
    await lag.stop()


async def test_a_persistent_failure_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    consumer = Consumer()
    consumer.fail = ConnectionError("broker down")
    lag = ConsumerLag(Subscriber(consumer), TOPIC, CollectorRegistry(), interval_s=0.001)
    lag.start()
    for _ in range(500):  # the third failure in a row is logged
        if "cannot be read" in caplog.text:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # more failures, not logged again
    await lag.stop()
    assert caplog.text.count("cannot be read") == 1
