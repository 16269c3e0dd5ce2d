"""A rebalance waits for the batch in hand, counted from the fetch that returned it: FastStream's
middlewares and parser run before the handler, and a rebalance there used to reset the positions
under a batch that was then handled anyway, and read again (its dead letters sent twice)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from consumers.settings import Settings
from consumers.subscribers.requests import build_router

PARTITION = TopicPartition("video.requests", 0)


class Consumer:
    """The part of aiokafka's consumer the batch fetch uses: one batch, then nothing."""

    def __init__(self) -> None:
        record = ConsumerRecord(
            "video.requests", 0, 7, 0, 0, b"k", b"{}", None, 1, 2, []
        )  # topic, partition, offset, timestamp, type, key, value, checksum, sizes, headers
        self.batches: list[dict[TopicPartition, list[Any]]] = [{PARTITION: [record]}]

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        return self.batches.pop(0) if self.batches else {}


async def test_a_rebalance_waits_for_a_fetched_batch_not_yet_handled() -> None:
    route = build_router(Settings(_env_file=None))
    consumer = Consumer()
    (record,) = await route.subscriber.get_msg(consumer)
    assert record.offset == 7
    # Fetched, not handled yet (the middlewares and the parser run first): a rebalance now waits.
    revoked = asyncio.create_task(route.rebalances.on_partitions_revoked({PARTITION}))
    await asyncio.sleep(0.05)
    assert not revoked.done()
    async with route.rebalances.handling():  # the handler runs, stores, commits
        assert not revoked.done()
    await asyncio.wait_for(revoked, 1)


async def test_between_batches_a_rebalance_goes_on_at_once() -> None:
    route = build_router(Settings(_env_file=None))
    consumer = Consumer()
    await route.subscriber.get_msg(consumer)
    async with route.rebalances.handling():
        pass
    await asyncio.wait_for(route.rebalances.on_partitions_revoked({PARTITION}), 0.5)


async def test_a_batch_fetched_and_never_handled_is_over_at_the_next_fetch() -> None:
    route = build_router(Settings(_env_file=None))
    consumer = Consumer()
    await route.subscriber.get_msg(consumer)  # then dropped before the handler (a stop)
    await route.subscriber.get_msg(consumer)  # the loop fetches again: nothing in hand
    await asyncio.wait_for(route.rebalances.on_partitions_revoked({PARTITION}), 0.5)
