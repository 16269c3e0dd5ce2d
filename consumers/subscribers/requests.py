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
from typing import Annotated, Any

from faststream import AckPolicy, Context
from faststream.kafka import KafkaMessage, KafkaRouter, Topic

from consumers.errors import INFRA_ERRORS
from consumers.messaging.kafka import lenient_batch, undecoded
from consumers.settings import Settings
from consumers.subscribers.backpressure import Backpressure
from consumers.subscribers.intake import Intake, Record

log = logging.getLogger("video.requests")

BATCH_MAX_RECORDS = 500
RETRY_PAUSE_S = 1.0  # before a failed batch is read again (MongoDB or Kafka unreachable)
RETRY_PAUSE_MAX_S = 30.0  # the pause doubles with each failure in a row, up to this


class Retries:
    """Consecutive failed batches, for the pause before the next attempt."""

    def __init__(self) -> None:
        self.failures = 0

    def pause_s(self) -> float:
        self.failures += 1
        return float(min(RETRY_PAUSE_S * 2 ** (self.failures - 1), RETRY_PAUSE_MAX_S))


def build_router(settings: Settings) -> tuple[KafkaRouter, Any]:
    router = KafkaRouter()
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
    )
    retries = Retries()

    @subscriber
    async def on_requests(
        msg: KafkaMessage,
        intake: Annotated[Intake, Context("intake")],
        backpressure: Annotated[Backpressure, Context("backpressure")],
    ) -> None:
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

    return router, subscriber


async def _settle(action: Any, what: str) -> None:
    """Commit or rewind; a rebalance meanwhile makes either fail, harmlessly: the partition's
    new owner reads from the last commit."""
    try:
        await action()
    except Exception as exc:
        log.warning("could not %s the batch: %r", what, exc)
