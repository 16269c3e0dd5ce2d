"""Building the contract's output events from a task document.

Event ids are UUID5s of the task id and the event's place in the task's life, so an event
published again after a crash or a redelivery carries the same `event_id` and `sequence`.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from typing import Any

from consumers.storage.task import OutboxEntry, Task
from schemas.errors import ErrorInfo
from schemas.events import (
    CompletedEvent,
    DeadLetterEvent,
    OriginalMessage,
    StatusEvent,
    TaskResult,
    Timings,
    utc_timestamp,
)
from schemas.status import TaskStatus

_NAMESPACE = uuid.UUID("5b0f3c0e-8f7a-4d53-9d0c-6f1d2a7c9e11")

# Outbox entries name their topic by kind; the topic names come from settings at publish time.
STATUS = "status"
COMPLETED = "completed"


def event_id(task_id: str, sequence: int, kind: str = STATUS) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{task_id}:{sequence}:{kind}"))


def rejected_task_id(topic: str, partition: int, offset: int) -> str:
    """A stable id for a request that never became a task (the same on every redelivery)."""
    return str(uuid.uuid5(_NAMESPACE, f"rejected:{topic}:{partition}:{offset}"))


def status_event(task: Task, status: TaskStatus, *, error: ErrorInfo | None = None) -> OutboxEntry:
    """The outbox entry of the task's next status (its sequence is the task's plus one)."""
    sequence = task.sequence + 1
    event = StatusEvent(
        event_id=event_id(task.id, sequence),
        request_id=task.request_id,
        task_id=task.id,
        sequence=sequence,
        status=status,
        provider=task.provider,
        model=task.model,
        upstream_task_id=task.upstream_task_id,
        upstream_status=task.upstream_status,
        error=error,
        user_id=task.user_id,
        tenant_id=task.tenant_id,
        metadata=json.loads(task.metadata_json) if task.metadata_json else None,
        timestamp=utc_timestamp(),
    )
    return OutboxEntry(kind=STATUS, body=event.model_dump(mode="json"))


def completed_event(status_entry: OutboxEntry, result: TaskResult, timings: Timings) -> OutboxEntry:
    """The outbox entry of `video.completed`, sharing the completed status event's envelope."""
    envelope = dict(status_entry.body)
    envelope.update(
        event_type="completed",
        event_id=event_id(envelope["task_id"], envelope["sequence"], COMPLETED),
    )
    event = CompletedEvent.model_validate({**envelope, "result": result, "timings": timings})
    return OutboxEntry(kind=COMPLETED, body=event.model_dump(mode="json"))


def rejected_status_event(
    raw: Mapping[str, Any],
    request_id: str,
    error: ErrorInfo,
    topic: str,
    partition: int,
    offset: int,
) -> dict[str, Any]:
    """The `failed` status of a request that could not become a task."""

    def text(name: str) -> str | None:
        value = raw.get(name)
        return value if isinstance(value, str) else None

    metadata = raw.get("metadata")
    event = StatusEvent(
        event_id=event_id(rejected_task_id(topic, partition, offset), 1),
        request_id=request_id,
        task_id=rejected_task_id(topic, partition, offset),
        sequence=1,
        status=TaskStatus.FAILED,
        provider=text("provider"),
        model=text("model"),
        error=error,
        user_id=text("user_id"),
        tenant_id=text("tenant_id"),
        metadata=metadata if isinstance(metadata, dict) else None,
        timestamp=utc_timestamp(),
    )
    return event.model_dump(mode="json")


def dead_letter_event(
    error: ErrorInfo,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    headers: Mapping[str, str],
    value: bytes,
) -> dict[str, Any]:
    try:
        text, encoding = value.decode("utf-8"), None
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(value).decode("ascii"), "base64"
    original = OriginalMessage(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", errors="replace") if key is not None else None,
        # Tokens must never leave the service.
        headers={k: v for k, v in headers.items() if k.lower() != "authorization"},
        value=text,
        value_encoding=encoding,
    )
    event = DeadLetterEvent(error=error, original=original, timestamp=utc_timestamp())
    return event.model_dump(mode="json", exclude_none=False)
