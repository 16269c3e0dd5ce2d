"""Intake of request messages: validate, store as tasks, hand to the runner.

Every record ends in exactly one outcome, whatever its bytes, headers or size: a task, a
duplicate of a task (its current status is published again), or one dead letter. One record's
fault never touches another's fate: an error that concerns a single record (the validation of
its content, building its task, storing it alone) dead-letters that record with
`internal_error`, logged with its stack trace. Only the infrastructure's errors (`INFRA_ERRORS`:
MongoDB, Kafka, the disk) escape `handle`; the caller then reads the whole batch again after a
pause, and a batch is committed on Kafka only once `handle` returned: every accepted request is
then stored, and every rejected one has reached the dead-letter topic.

Each record is examined in its intake span (consumers/operations/tracing.py): the trace context
it gives is stored on the task, or carried by the rejection's events, and logged with them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.errors import MessageSizeTooLargeError

from consumers.engine.engine import Engine
from consumers.errors import INFRA_ERRORS
from consumers.messaging import events
from consumers.messaging.kafka import read_headers
from consumers.messaging.publisher import EventPublisher
from consumers.operations import tracing
from consumers.operations.logs import task_context
from consumers.operations.metrics import Metrics
from consumers.settings import Settings
from consumers.storage.base import TaskStore
from consumers.storage.task import Task
from consumers.subscribers.auth import Authenticator
from consumers.subscribers.unreadable import unreadable
from consumers.subscribers.validation import Accepted, Rejected, bounded, validate_request
from schemas.errors import ErrorCode, ErrorInfo
from schemas.status import TaskStatus

log = logging.getLogger("video.intake")

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def printable(text: str) -> str:
    """`text` for a log line: control characters escaped, so input cannot forge lines."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka message, as the intake needs it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: Mapping[str, str | None]  # UTF-8 values; a null value is None
    value: bytes
    binary_headers: Mapping[str, bytes] = field(default_factory=dict)  # values not UTF-8
    unreadable: str | None = None  # why the Kafka client could not read it (then no content)

    @classmethod
    def from_kafka(cls, record: ConsumerRecord[Any, Any]) -> Record:
        """Never raises, whatever the record holds."""
        text, binary = read_headers(record.headers)
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            headers=text,
            value=record.value or b"",
            binary_headers=binary,
            unreadable=unreadable(record),
        )

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


def internal_error(exc: BaseException) -> Rejected:
    message = f"the service failed on this record ({type(exc).__name__}); it logged why"
    return Rejected(ErrorInfo(code=ErrorCode.INTERNAL_ERROR, message=message), None)


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
        """Give every record its outcome. Raises only INFRA_ERRORS (read the batch again)."""
        try:
            await self._handle(records)
        except INFRA_ERRORS:
            raise
        except Exception as exc:
            # Not expected: each record's own steps are guarded below. Nothing tells which
            # record is at fault, so each is taken again alone.
            if len(records) == 1:
                log.exception("request %s failed; it becomes a dead letter", records[0].where)
                trace = tracing.carried(records[0].headers)
                await self._send_dead_letter(records[0], internal_error(exc).error, trace)
                return
            log.exception("a batch of %d requests failed; taking them one by one", len(records))
            for record in records:
                await self.handle([record])

    async def _handle(self, records: Sequence[Record]) -> None:
        rejections: list[tuple[Record, Rejected, dict[str, str]]] = []  # and its trace context
        accepted: list[tuple[Record, Task]] = []
        for record in records:
            with tracing.intake_span(record.headers) as trace:
                outcome = self._examine(record, trace)
                _describe(outcome)
            if isinstance(outcome, Rejected):
                rejections.append((record, outcome, trace))
            else:
                accepted.append((record, outcome))

        duplicates, failed = await self._store([task for _, task in accepted])
        for position, rejected in failed.items():
            record, task = accepted[position]
            rejections.append((record, rejected, task.trace_context or {}))
        stored = [
            task for p, (_, task) in enumerate(accepted) if p not in duplicates and p not in failed
        ]
        await self.engine.extend_leases([task.id for task in stored])
        await self.engine.cancels.apply_pending(stored)
        for task in stored:
            self.metrics.statuses.labels(task.provider, task.model, str(task.status)).inc()
            self.engine.adopt(task)
        for position in sorted(duplicates):
            await self._republish_current(accepted[position][1].request_id)
        # Last, so that a rejected copy of a request stored above publishes no `failed` status.
        results = await asyncio.gather(
            *(self._reject(record, rejected, trace) for record, rejected, trace in rejections),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _examine(self, record: Record, trace: dict[str, str]) -> Task | Rejected:
        if record.unreadable is not None:
            message = (
                "the record could not be read (a header name that is not UTF-8?); its content "
                f"is unknown: {record.unreadable}"
            )
            return Rejected(
                ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=bounded(message)), None
            )
        try:
            headers = {**record.headers, **record.binary_headers}
            outcome = validate_request(record.value, headers, self.settings, self.auth)
            if isinstance(outcome, Rejected):
                return outcome
            refused = self.engine.preflight(outcome.spec, outcome.parameters)
            if refused is not None:  # e.g. an oss:// file this configuration cannot submit
                request, spec = outcome.request, outcome.spec
                echo: dict[str, Any] = {"model": spec.name, "provider": spec.provider}
                echo.update(user_id=request.user_id, tenant_id=request.tenant_id)
                echo.update(metadata=request.metadata)
                return Rejected(refused, request.request_id, echo)
            return self._new_task(outcome, trace)
        except Exception as exc:  # RecursionError, MemoryError of one record, a bug: its own
            log.exception(
                "request %s could not be examined; it becomes a dead letter", record.where
            )
            return internal_error(exc)

    async def _store(self, tasks: Sequence[Task]) -> tuple[set[int], dict[int, Rejected]]:
        """Insert the tasks: the positions of duplicates, and of tasks that could not be stored
        for a reason of their own (each then dead-lettered)."""
        if not tasks:
            return set(), {}
        try:
            return await self.store.insert_many(tasks), {}
        except INFRA_ERRORS:
            raise
        except Exception:
            log.exception("storing %d tasks failed; storing them one by one", len(tasks))
        duplicates: set[int] = set()
        failed: dict[int, Rejected] = {}
        for position, task in enumerate(tasks):
            try:
                if await self.store.insert_many([task]):
                    duplicates.add(position)
            except INFRA_ERRORS:
                raise
            except Exception as exc:
                log.exception("task of request %s could not be stored", task.request_id)
                failed[position] = internal_error(exc)
        return duplicates, failed

    async def _reject(self, record: Record, rejected: Rejected, trace: dict[str, str]) -> None:
        error = rejected.error
        self.metrics.rejected.labels(str(error.code)).inc()
        with task_context(request_id=rejected.request_id, trace_id=tracing.trace_id(trace)):
            log.info(
                "rejected %s (request_id=%s): %s: %s",
                record.where,
                rejected.request_id,
                error.code,
                printable(error.message),
            )
            # The status first: whoever waits for the dead letter finds the status already there.
            if rejected.publishes_status and rejected.request_id is not None:
                await self._send_rejected_status(record, rejected, rejected.request_id, trace)
            await self._send_dead_letter(record, error, trace)

    async def _send_dead_letter(
        self, record: Record, error: ErrorInfo, trace: dict[str, str]
    ) -> None:
        key = events.dead_letter_key(record.key)
        try:
            body = events.dead_letter_event(
                error,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                headers=record.headers,
                binary_headers=record.binary_headers,
                value=record.value,
            )
        except Exception:
            log.exception("dead letter of %s sent without its content", record.where)
            body = self._bare(record, error)
        try:
            await (await self.publisher.publish_dead_letter(body, key, headers=trace))
        except MessageSizeTooLargeError:
            # The budgets keep a dead letter well under 1 MiB; a topic configured smaller
            # still gets one, without the original's headers and value.
            log.warning(
                "dead letter of %s too large for its topic; sent without content", record.where
            )
            bare = self._bare(record, error)
            await (await self.publisher.publish_dead_letter(bare, key, headers=trace))

    @staticmethod
    def _bare(record: Record, error: ErrorInfo) -> dict[str, Any]:
        return events.dead_letter_event(
            error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=None,
            headers={},
            value=b"",
        )

    async def _send_rejected_status(
        self, record: Record, rejected: Rejected, request_id: str, trace: dict[str, str]
    ) -> None:
        """The `failed` status of a rejected request, unless its request_id has a task: that
        task's own events are the truth, and the dead letter alone records the rejected copy."""
        if await self.store.find_by_request_id(request_id) is not None:
            return
        try:
            status = events.rejected_status_event(
                rejected.echo,
                request_id,
                rejected.error,
                record.topic,
                record.partition,
                record.offset,
            )
        except Exception:
            log.exception("no failed status for %s: it could not be built", record.where)
            return
        await (await self.publisher.publish_status(status, headers=trace))

    async def _republish_current(self, request_id: str) -> None:
        """A request_id seen before starts nothing: its task's current status goes out again."""
        self.metrics.duplicates.inc()
        task = await self.store.find_by_request_id(request_id)
        if task is None:
            return
        last_status = [e for e in task.events if e.kind == events.STATUS][-1:]
        with task_context(task):  # its lines name the task, and its trace
            log.info(
                "duplicate request_id %s: re-publishing its %s status", request_id, task.status
            )
            try:
                await self.publisher.publish_entries(
                    request_id,
                    last_status,
                    task.reply_topic,
                    headers=tracing.event_headers(task.trace_context),
                )
            except INFRA_ERRORS:
                raise
            except Exception:  # the duplicate stays a duplicate; its task's events go out anyway
                log.exception("re-publishing the status of %s failed", request_id)

    def _new_task(self, accepted: Accepted, trace: dict[str, str]) -> Task:
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
            trace_context=trace or None,
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


def _describe(outcome: Task | Rejected) -> None:
    """The intake span's attributes (tracing on): what the record became."""
    if isinstance(outcome, Rejected):
        tracing.set_attributes(request_id=outcome.request_id, error_code=str(outcome.error.code))
    else:
        tracing.set_attributes(
            request_id=outcome.request_id,
            task_id=outcome.id,
            provider=outcome.provider,
            model=outcome.model,
        )
