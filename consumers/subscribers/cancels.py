"""The `video.cancel` subscriber."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from faststream import AckPolicy, Context
from faststream.kafka import KafkaMessage, KafkaRouter, Topic
from pydantic import ValidationError

from consumers.engine.engine import Engine
from consumers.errors import INFRA_ERRORS
from consumers.messaging.kafka import undecoded
from consumers.settings import Settings
from consumers.subscribers.auth import Authenticator, AuthError
from consumers.subscribers.requests import RETRY_PAUSE_S
from consumers.subscribers.validation import describe_validation_error
from schemas.events import CancelEvent

log = logging.getLogger("video.cancel")


def build_router(settings: Settings) -> tuple[KafkaRouter, Any]:
    router = KafkaRouter()
    subscriber = router.subscriber(
        Topic(settings.topic_cancel, declare=False),
        group_id=settings.kafka_group_id,
        auto_offset_reset="earliest",
        # Failures (MongoDB down) are read again; a cancel is idempotent.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=undecoded,
    )

    @subscriber
    async def on_cancel(
        msg: KafkaMessage,
        engine: Annotated[Engine, Context("engine")],
        auth: Annotated[Authenticator, Context("auth")],
    ) -> None:
        try:
            identity = auth.identify(msg.headers)
            cancel = CancelEvent.model_validate_json(msg.body)
        except AuthError as exc:
            log.warning("cancel refused: %s: %s", exc.code, exc.message)
            return
        except ValidationError as exc:
            log.warning("cancel ignored, invalid: %s", describe_validation_error(exc))
            return
        try:
            await engine.cancels.cancel(cancel.request_id, cancel.reason, identity)
        except INFRA_ERRORS:
            await asyncio.sleep(RETRY_PAUSE_S)  # then NACK: read again, without a hot loop
            raise

    return router, subscriber
