"""The `video.requests` subscriber: batches of requests become stored tasks, then commit.

Two kinds of failure, told apart: a record at fault becomes a dead letter inside the intake
(never holding up the records beside it); the infrastructure at fault (`INFRA_ERRORS`: MongoDB
or Kafka unreachable) rewinds the batch, which is read again after a pause that grows while the
outage lasts. The handler itself never raises: with manual acknowledgement, a batch that is
neither acknowledged nor rewound would be committed past by the next one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, NamedTuple

from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream import AckPolicy, Context
from faststream.kafka import KafkaMessage, KafkaRouter, Topic

from consumers.errors import INFRA_ERRORS
from consumers.messaging.kafka import lenient_batch, undecoded
from consumers.settings import Settings
from consumers.subscribers import unreadable
from consumers.subscribers.backpressure import Backpressure
from consumers.subscribers.intake import Intake, Record

log = logging.getLogger("video.requests")

BATCH_MAX_RECORDS = 500
RETRY_PAUSE_S = 1.0  # before a failed batch is read again (MongoDB or Kafka unreachable)
RETRY_PAUSE_MAX_S = 30.0  # the pause doubles with each failure in a row, up to this
# A rebalance waits this long at most for the batch in hand (the group coordinator waits
# `session_timeout_ms`, 10 s by default, for its members to rejoin).
REVOKE_WAIT_S = 5.0


class Retries:
    """Consecutive failed batches, for the pause before the next attempt."""

    def __init__(self) -> None:
        self.failures = 0

    def pause_s(self) -> float:
        self.failures += 1
        return float(min(RETRY_PAUSE_S * 2 ** (self.failures - 1), RETRY_PAUSE_MAX_S))


class BatchInHand(ConsumerRebalanceListener):
    """Lets a rebalance wait until the batch in hand is stored and committed, and hands the new
    assignment to `on_assigned` (back-pressure pauses it again: aiokafka forgets pauses).

    A rebalance (an instance, or this instance's own cancel consumer, joining or leaving the
    group) resets the positions of the partitions it reassigns to their last commit: a batch
    still being handled would be read again, and its dead letters sent twice. Waiting for it in
    `on_partitions_revoked`, while the old assignment still holds, lets its commit land first;
    aiokafka hands out no new records until the new assignment is known.

    A batch is in hand from the moment the fetch returns it (`watch`), not only once the handler
    runs: FastStream's middlewares and parser run in between, and a rebalance there reset the
    positions under a batch that was then handled, and read again (duplicate dead letters).
    """

    def __init__(self) -> None:
        self._idle = asyncio.Event()
        self._idle.set()
        self.on_assigned: Callable[[set[TopicPartition]], None] | None = None  # set at start

    def watch(self, subscriber: Any) -> None:
        """Count a batch as in hand from the fetch that returns it (the subscriber's consume
        loop is sequential: when it fetches again, the batch before is over)."""
        fetch: Callable[[Any], Awaitable[tuple[Any, ...]]] = subscriber.get_msg

        async def get_msg(consumer: Any) -> tuple[Any, ...]:
            self._idle.set()
            records = await fetch(consumer)
            if records:
                self._idle.clear()
            return records

        subscriber.get_msg = get_msg

    @asynccontextmanager
    async def handling(self) -> AsyncIterator[None]:
        self._idle.clear()
        try:
            yield
        finally:
            self._idle.set()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        try:
            await asyncio.wait_for(self._idle.wait(), REVOKE_WAIT_S)
        except TimeoutError:
            log.warning("rebalance: the batch in hand is still running; it may be read again")

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.on_assigned is not None:
            self.on_assigned(assigned)


class RequestsRoute(NamedTuple):
    router: KafkaRouter
    subscriber: Any
    rebalances: BatchInHand


def build_router(settings: Settings) -> RequestsRoute:
    router = KafkaRouter()
    in_hand = BatchInHand()
    subscriber = router.subscriber(
        Topic(settings.topic_requests, declare=False),
        group_id=settings.kafka_group_id,
        batch=True,
        max_records=BATCH_MAX_RECORDS,
        batch_timeout_ms=100,
        auto_offset_reset="earliest",  # a new group must not skip requests sent before it
        ack_policy=AckPolicy.MANUAL,  # commit only once every task of the batch is stored
        parser=lenient_batch,  # no header value can make FastStream drop a batch
        decoder=undecoded,
        no_reply=True,  # a `reply_to` header must not make the service publish anywhere
        listener=in_hand,
    )
    unreadable.guard(subscriber, BATCH_MAX_RECORDS)  # a record aiokafka cannot read
    in_hand.watch(subscriber)
    retries = Retries()

    @subscriber
    async def on_requests(
        msg: KafkaMessage,
        intake: Annotated[Intake, Context("intake")],
        backpressure: Annotated[Backpressure, Context("backpressure")],
    ) -> None:
        async with in_hand.handling():
            records = [Record.from_kafka(r) for r in msg.raw_message]
            try:
                await intake.handle(records)
            except Exception as exc:
                pause = retries.pause_s()
                if isinstance(exc, INFRA_ERRORS):
                    log.warning(
                        "batch of %d requests not stored (%r); read again in %.0f s",
                        len(records),
                        exc,
                        pause,
                    )
                else:  # intake isolates records; reaching here is a bug, not a record's fault
                    log.exception(
                        "batch of %d requests failed; read again in %.0f s", len(records), pause
                    )
                await asyncio.sleep(pause)
                await _settle(msg.nack, "rewind")
                return
            retries.failures = 0
            await _settle(msg.ack, "commit")
        backpressure.check()

    return RequestsRoute(router, subscriber, in_hand)


async def _settle(action: Any, what: str) -> None:
    """Commit or rewind; a rebalance meanwhile makes either fail, harmlessly: the partition's
    new owner reads from the last commit."""
    try:
        await action()
    except Exception as exc:
        log.warning("could not %s the batch: %r", what, exc)
