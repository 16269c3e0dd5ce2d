"""Building the contract's output events from a task document.

Event ids are UUID5s of the task id and the event's place in the task's life, so an event
published again after a crash or a redelivery carries the same `event_id` and `sequence`.
"""

from __future__ import annotations

import base64
import hashlib
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
    echo: Mapping[str, Any],
    request_id: str,
    error: ErrorInfo,
    topic: str,
    partition: int,
    offset: int,
) -> dict[str, Any]:
    """The `failed` status of a request that could not become a task.

    `echo` holds only what passed validation (see `validation.Rejected.echo`): a field the
    message sent but that was not checked, or that came from an unverified sender, is left out.
    """

    def text(name: str) -> str | None:
        value = echo.get(name)
        return value if isinstance(value, str) else None

    metadata = echo.get("metadata")
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


# Dead letters must fit in one Kafka message (the producer's and the broker's default limit is
# 1 MiB) whatever the record held, key and headers included.
VALUE_BUDGET = 256 * 1024  # raw bytes of the original value kept
VALUE_TEXT_BUDGET = 384 * 1024  # the value as escaped JSON text; beyond it, base64 (<= 342 KiB)
HEADERS_BUDGET = 64 * 1024  # header names and values, as JSON text
KEY_BUDGET = 16 * 1024  # bytes of the key kept (for the dead letter's own key and its copy)
DEAD_LETTER_MAX = 900 * 1024  # a last guard: key plus event above it lose headers and value

# Header names that carry credentials are never copied: these exactly, and any name holding
# one of the fragments (case-insensitive).
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
CREDENTIAL_FRAGMENTS = (
    "authorization",
    "cookie",
    "token",
    "secret",
    "password",
    "passwd",
    "api-key",
    "api_key",
    "apikey",
    "credential",
    "signature",
)


def is_credential_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in CREDENTIAL_HEADERS or any(f in lowered for f in CREDENTIAL_FRAGMENTS)


def _json_size(text: str) -> int:
    """Bytes of `text` as a JSON string in an event (the publisher writes UTF-8, unescaped)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", errors="surrogatepass"))


def _represent_value(value: bytes) -> dict[str, Any]:
    """The contract's `value`, `value_encoding`, `value_truncated`, `value_size`, `value_sha256`."""
    kept = value[:VALUE_BUDGET]
    truncated = len(kept) < len(value)
    text: str | None
    try:
        value.decode("utf-8")
        # Cut at a character boundary: the prefix of valid UTF-8 loses at most its last,
        # incomplete character.
        text = kept.decode("utf-8", errors="ignore")
    except UnicodeDecodeError:
        text = None
    if text is not None and _json_size(text) <= VALUE_TEXT_BUDGET:
        represented, encoding = text, None
    else:
        represented, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    return {
        "value": represented,
        "value_encoding": encoding,
        "value_truncated": truncated,
        "value_size": len(value),
        "value_sha256": hashlib.sha256(value).hexdigest(),
    }


def _represent_headers(
    headers: Mapping[str, str | None], binary_headers: Mapping[str, bytes]
) -> dict[str, Any]:
    text: dict[str, str | None] = {}
    binary: dict[str, str] = {}
    used, truncated = 0, False
    items: list[tuple[str, str | None, bool]] = [(k, v, False) for k, v in headers.items()]
    items += [(k, base64.b64encode(v).decode("ascii"), True) for k, v in binary_headers.items()]
    for name, shown, is_binary in items:
        if is_credential_header(name):
            continue
        size = _json_size(name) + (_json_size(shown) if shown is not None else 4) + 2
        if used + size > HEADERS_BUDGET:
            truncated = True
            continue
        used += size
        if is_binary:
            binary[name] = shown or ""
        else:
            text[name] = shown
    return {"headers": text, "binary_headers": binary, "headers_truncated": truncated}


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The dead letter's own Kafka key: the original key, cut to `KEY_BUDGET` bytes."""
    return key[:KEY_BUDGET] if key is not None else None


def dead_letter_event(
    error: ErrorInfo,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    headers: Mapping[str, str | None],
    value: bytes,
    binary_headers: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """The dead letter of one record: always fits in one Kafka message, never holds a
    credential header, never raises on what the record held."""
    shown_key = dead_letter_key(key)
    original = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": shown_key.decode("utf-8", errors="replace") if shown_key is not None else None,
        **_represent_headers(headers, binary_headers or {}),
        **_represent_value(value),
    }
    event = DeadLetterEvent(
        error=error,
        original=OriginalMessage.model_validate(original),
        timestamp=utc_timestamp(),
    )
    body = event.model_dump(mode="json", exclude_none=False)
    size = len(json.dumps(body, ensure_ascii=False).encode()) + len(shown_key or b"")
    if size > DEAD_LETTER_MAX:  # not reached with the budgets above; kept as a guard
        body["original"].update(
            headers={}, binary_headers={}, headers_truncated=True, value="", value_truncated=True
        )
    return body
