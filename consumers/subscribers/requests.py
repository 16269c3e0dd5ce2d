"""The `video.requests` subscriber: batches of requests become stored tasks, then commit."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from faststream import AckPolicy, Context
from faststream.kafka import KafkaMessage, KafkaRouter, Topic

from consumers.messaging.kafka import undecoded
from consumers.settings import Settings
from consumers.subscribers.backpressure import Backpressure
from consumers.subscribers.intake import Intake, Record

log = logging.getLogger("video.requests")

BATCH_MAX_RECORDS = 500
RETRY_PAUSE_S = 1.0  # before a failed batch is read again (MongoDB or Kafka unreachable)


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
        decoder=undecoded,
    )

    @subscriber
    async def on_requests(
        msg: KafkaMessage,
        intake: Annotated[Intake, Context("intake")],
        backpressure: Annotated[Backpressure, Context("backpressure")],
    ) -> None:
        records = [
            Record(
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                key=r.key,
                headers={k: v.decode("utf-8", errors="replace") for k, v in (r.headers or ())},
                value=r.value or b"",
            )
            for r in msg.raw_message
        ]
        try:
            await intake.handle(records)
        except Exception:
            log.exception("batch of %d requests not stored; it will be read again", len(records))
            await asyncio.sleep(RETRY_PAUSE_S)
            await msg.nack()
            return
        await msg.ack()
        backpressure.check()

    return router, subscriber
