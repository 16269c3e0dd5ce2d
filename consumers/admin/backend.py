"""What the operator commands talk to: the service's MongoDB (`tasks`) and Kafka, as its own
settings name them. The commands see only `Backend`; the in-process tests give them another."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from consumers.admin.redrive import DeadLetter, Outgoing, read_dead_letter
from consumers.messaging.kafka import aiokafka_options
from consumers.operations.retention import MongoRetentionStore, RetentionSweeper
from consumers.settings import Settings

Document = dict[str, Any]
READ_IDLE_S = 10.0  # reading the dead-letter topic gives up after this long without progress


class TopicMissing(Exception):
    pass


class Backend(Protocol):
    settings: Settings

    async def now(self) -> datetime: ...

    async def find_task(self, ident: str) -> Document | None:
        """By task id or request_id."""
        ...

    async def find_tasks(
        self, query: Mapping[str, Any], *, sort: Sequence[tuple[str, int]], limit: int | None
    ) -> list[Document]: ...

    async def count_tasks(self, query: Mapping[str, Any]) -> int: ...

    async def statuses(self, request_ids: Collection[str]) -> dict[str, str]:
        """The status of each of `request_ids` that has a task."""
        ...

    async def dead_letters(self, since_ms: int | None) -> list[DeadLetter]:
        """The dead-letter topic's records (from `since_ms` on), up to its end now."""
        ...

    async def send(self, records: Sequence[Outgoing]) -> None:
        """Send, in order, each acknowledged by every in-sync replica."""
        ...

    def retention(self, settings: Settings) -> RetentionSweeper: ...

    async def close(self) -> None: ...


class LiveBackend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._mongo: AsyncMongoClient[Document] = AsyncMongoClient(
            settings.mongodb_url.get_secret_value(), tz_aware=True, serverSelectionTimeoutMS=8000
        )
        self.db = self._mongo[settings.mongodb_db]
        self.tasks = self.db["tasks"]
        self._producer: AIOKafkaProducer | None = None

    async def now(self) -> datetime:
        reply = await self.db.command("isMaster")
        moment: datetime = reply["localTime"]
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    async def find_task(self, ident: str) -> Document | None:
        return await self.tasks.find_one({"$or": [{"_id": ident}, {"request_id": ident}]})

    async def find_tasks(
        self, query: Mapping[str, Any], *, sort: Sequence[tuple[str, int]], limit: int | None
    ) -> list[Document]:
        cursor = self.tasks.find(dict(query), {"events": 0, "params": 0})
        if sort:
            cursor = cursor.sort(list(sort))
        if limit:
            cursor = cursor.limit(limit)
        return [doc async for doc in cursor]

    async def count_tasks(self, query: Mapping[str, Any]) -> int:
        return await self.tasks.count_documents(dict(query))

    async def statuses(self, request_ids: Collection[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        ids = list(request_ids)
        for start in range(0, len(ids), 1000):
            cursor = self.tasks.find(
                {"request_id": {"$in": ids[start : start + 1000]}}, {"request_id": 1, "status": 1}
            )
            async for doc in cursor:
                found[doc["request_id"]] = doc["status"]
        return found

    async def dead_letters(self, since_ms: int | None) -> list[DeadLetter]:
        topic = self.settings.topic_dlq
        partitions = [TopicPartition(topic, p) for p in await self._partitions(topic)]
        consumer = AIOKafkaConsumer(
            **aiokafka_options(self.settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id="video-service-admin",
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            end = await consumer.end_offsets(partitions)
            start = await consumer.beginning_offsets(partitions)
            if since_ms is not None:
                found = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
                start = {tp: (found[tp].offset if found[tp] else end[tp]) for tp in partitions}
            for tp in partitions:
                consumer.seek(tp, start[tp])
            pending = {tp for tp in partitions if start[tp] < end[tp]}
            letters: list[DeadLetter] = []
            idle_since = time.monotonic()
            while pending:
                batch = await consumer.getmany(*pending, timeout_ms=500)
                if not batch and time.monotonic() - idle_since > READ_IDLE_S:
                    raise TimeoutError(f"reading {topic} made no progress for {READ_IDLE_S} s")
                for tp, records in batch.items():
                    idle_since = time.monotonic()
                    for r in records:
                        if r.offset < end[tp]:
                            letters.append(
                                read_dead_letter(
                                    r.topic, r.partition, r.offset, r.timestamp, r.value
                                )
                            )
                    if records and records[-1].offset + 1 >= end[tp]:
                        pending.discard(tp)
            return sorted(letters, key=lambda d: (d.timestamp_ms, d.partition, d.offset))
        finally:
            await consumer.stop()

    async def _partitions(self, topic: str) -> list[int]:
        admin = AIOKafkaAdminClient(**aiokafka_options(self.settings))
        await admin.start()
        try:
            # Listed first: describing a missing topic would have the broker create it.
            if topic not in await admin.list_topics():
                raise TopicMissing(f"topic {topic} does not exist (no dead letter yet?)")
            (described,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        if described.get("error_code") or not described.get("partitions"):
            raise TopicMissing(f"topic {topic} does not exist (no dead letter yet?)")
        return sorted(int(p["partition"]) for p in described["partitions"])

    async def send(self, records: Sequence[Outgoing]) -> None:
        if self._producer is None:
            self._producer = AIOKafkaProducer(
                **aiokafka_options(self.settings),
                acks="all",
                enable_idempotence=True,
                client_id="video-service-admin",
            )
            await self._producer.start()
        confirmations = [
            await self._producer.send(r.topic, r.value, key=r.key, headers=r.headers)
            for r in records
        ]
        await asyncio.gather(*confirmations)

    def retention(self, settings: Settings) -> RetentionSweeper:
        return RetentionSweeper(MongoRetentionStore(self.db), settings)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        await self._mongo.close()
