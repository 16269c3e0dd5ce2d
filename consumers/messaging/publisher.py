"""Publishing events to Kafka: keyed by `request_id`, with `reply_topic` copies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from faststream.kafka import KafkaBroker

from consumers.messaging.events import COMPLETED, STATUS
from consumers.settings import Settings


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class EventPublisher:
    def __init__(self, broker: KafkaBroker, settings: Settings) -> None:
        self._broker = broker
        self._topics = {STATUS: settings.topic_status, COMPLETED: settings.topic_completed}
        self._dlq = settings.topic_dlq

    async def publish_entries(
        self, request_id: str, entries: Sequence[Mapping[str, Any]], reply_topic: str | None
    ) -> None:
        """Publish outbox entries in order and wait until Kafka has them all (acks=all).

        The sends are issued back to back and confirmed together: one key means one partition,
        and the idempotent producer keeps their order.
        """
        key = request_id.encode()
        pending = []
        for entry in entries:
            value = _encode(entry["body"])
            topics = [self._topics[entry["kind"]]]
            if reply_topic:
                topics.append(reply_topic)
            for topic in topics:
                pending.append(await self._send(value, topic, key))
        await asyncio.gather(*pending)

    async def publish_status(self, body: Mapping[str, Any]) -> asyncio.Future[Any]:
        return await self._send(_encode(body), self._topics[STATUS], body["request_id"].encode())

    async def publish_dead_letter(
        self, body: Mapping[str, Any], key: bytes | None
    ) -> asyncio.Future[Any]:
        return await self._send(_encode(body), self._dlq, key)

    async def _send(self, value: bytes, topic: str, key: bytes | None) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await self._broker.publish(
            value,
            topic,
            key=key,
            headers={"content-type": "application/json"},
            no_confirm=True,
        )
        return future
