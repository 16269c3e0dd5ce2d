"""Intake of request messages: validate, store as tasks, hand to the runner.

A batch is committed on Kafka only after this returns: every accepted request is then stored,
and every rejected one has reached the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from consumers.engine.engine import Engine
from consumers.messaging import events
from consumers.messaging.publisher import EventPublisher
from consumers.operations.metrics import Metrics
from consumers.settings import Settings
from consumers.storage.base import TaskStore
from consumers.storage.task import Task
from consumers.subscribers.auth import Authenticator
from consumers.subscribers.validation import Accepted, Rejected, validate_request
from schemas.status import TaskStatus

log = logging.getLogger("video.intake")


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka message, as the intake needs it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: Mapping[str, str]
    value: bytes


class Intake:
    def __init__(
        self,
        *,
        store: TaskStore,
        engine: Engine,
        publisher: EventPublisher,
        settings: Settings,
        metrics: Metrics,
        auth: Authenticator,
    ) -> None:
        self.store = store
        self.engine = engine
        self.publisher = publisher
        self.settings = settings
        self.metrics = metrics
        self.auth = auth

    async def handle(self, records: Sequence[Record]) -> None:
        confirmations: list[Awaitable[Any]] = []
        tasks: list[Task] = []
        for record in records:
            outcome = validate_request(record.value, record.headers, self.settings, self.auth)
            if isinstance(outcome, Rejected):
                confirmations += await self._reject(record, outcome)
            else:
                tasks.append(self._new_task(outcome))

        duplicates = await self.store.insert_many(tasks)
        stored = [task for position, task in enumerate(tasks) if position not in duplicates]
        await self.engine.cancels.apply_pending(stored)
        for position, task in enumerate(tasks):
            if position in duplicates:
                await self._republish_current(task.request_id)
            else:
                self.metrics.statuses.labels(task.provider, task.model, str(task.status)).inc()
                self.engine.adopt(task.id)
        await asyncio.gather(*confirmations)

    async def _reject(self, record: Record, rejected: Rejected) -> list[Awaitable[Any]]:
        error = rejected.error
        self.metrics.rejected.labels(str(error.code)).inc()
        log.info(
            "rejected %s[%d]@%d (request_id=%s): %s: %s",
            record.topic,
            record.partition,
            record.offset,
            rejected.request_id,
            error.code,
            error.message,
        )
        dead_letter = events.dead_letter_event(
            error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            headers=record.headers,
            value=record.value,
        )
        sent = [await self.publisher.publish_dead_letter(dead_letter, record.key)]
        if rejected.request_id is not None:
            status = events.rejected_status_event(
                rejected.raw,
                rejected.request_id,
                error,
                record.topic,
                record.partition,
                record.offset,
            )
            sent.append(await self.publisher.publish_status(status))
        return sent

    async def _republish_current(self, request_id: str) -> None:
        """A request_id seen before starts nothing: its task's current status goes out again."""
        self.metrics.duplicates.inc()
        task = await self.store.find_by_request_id(request_id)
        if task is None:
            return
        last_status = [e for e in task.events if e.kind == events.STATUS][-1:]
        log.info("duplicate request_id %s: re-publishing its %s status", request_id, task.status)
        await self.publisher.publish_entries(request_id, last_status, task.reply_topic)

    def _new_task(self, accepted: Accepted) -> Task:
        request = accepted.request
        clock = self.engine.clock
        timeout_s = request.timeout_s or self.settings.task_timeout_s
        created = clock.now()
        task = Task(
            id=str(uuid.uuid4()),
            request_id=request.request_id,
            provider=accepted.spec.provider,
            model=accepted.spec.name,
            params=accepted.parameters.model_dump(mode="json", exclude_none=True),
            prompt=accepted.parameters.prompt,
            resolution=accepted.parameters.resolution_label(),
            user_id=request.user_id,
            tenant_id=request.tenant_id,
            metadata_json=json.dumps(request.metadata) if request.metadata is not None else None,
            reply_topic=request.reply_topic,
            timeout_s=timeout_s,
            created_at=created,
            deadline_at=created + timedelta(seconds=timeout_s),
            lease_owner=self.engine.owner,
            lease_until=clock.after(self.settings.lease_ttl_s),
        )
        accepted_event = events.status_event(task, TaskStatus.ACCEPTED)
        return task.model_copy(
            update={"status": TaskStatus.ACCEPTED, "sequence": 1, "events": [accepted_event]}
        )
