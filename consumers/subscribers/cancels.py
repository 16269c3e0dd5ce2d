"""The `video.cancel` subscriber.

A cancel that cannot be honoured (not JSON, no valid token, not the task's owner, anything
else about the record) is logged and committed: it is never read again. Only the
infrastructure's errors (MongoDB or Kafka unreachable) make it be read again, after a pause.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any, cast

from aiokafka import ConsumerRecord
from faststream import AckPolicy, Context
from faststream.kafka import KafkaMessage, KafkaRouter, Topic
from pydantic import ValidationError

from consumers.engine.engine import Engine
from consumers.errors import INFRA_ERRORS
from consumers.messaging.kafka import lenient_single, read_headers, undecoded
from consumers.settings import Settings
from consumers.subscribers import requests, unreadable
from consumers.subscribers.auth import Authenticator, AuthError
from consumers.subscribers.intake import printable
from consumers.subscribers.validation import describe_validation_error
from schemas.events import CancelEvent

log = logging.getLogger("video.cancel")


def build_router(settings: Settings) -> tuple[KafkaRouter, Any]:
    router = KafkaRouter()
    subscriber = router.subscriber(
        Topic(settings.topic_cancel, declare=False),
        group_id=settings.kafka_group_id,
        auto_offset_reset="earliest",
        # Only infrastructure failures raise, after a pause: read again; a cancel is idempotent.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        parser=lenient_single,
        decoder=undecoded,
        no_reply=True,
    )
    unreadable.guard_single(subscriber)  # a record aiokafka cannot read

    @subscriber
    async def on_cancel(
        msg: KafkaMessage,
        engine: Annotated[Engine, Context("engine")],
        auth: Annotated[Authenticator, Context("auth")],
    ) -> None:
        record = cast("ConsumerRecord[Any, Any]", msg.raw_message)  # one record, not a batch
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if unreadable.unreadable(record):
            log.warning("cancel %s skipped: the Kafka client cannot read it", where)
            return
        try:
            text, binary = read_headers(record.headers)
            identity = auth.identify({**text, **binary})
            cancel = CancelEvent.model_validate_json(record.value or b"")
        except AuthError as exc:
            log.warning("cancel %s refused: %s: %s", where, exc.code, printable(exc.message))
            return
        except ValidationError as exc:
            log.warning(
                "cancel %s ignored, invalid: %s", where, printable(describe_validation_error(exc))
            )
            return
        except Exception:
            log.exception("cancel %s ignored: it could not be read", where)
            return
        try:
            await engine.cancels.cancel(cancel.request_id, cancel.reason, identity)
        except INFRA_ERRORS:
            await asyncio.sleep(requests.RETRY_PAUSE_S)  # then NACK: read again, not in a hot loop
            raise
        except Exception:
            log.exception("cancel %s of %s failed; it is not read again", where, cancel.request_id)

    return router, subscriber
