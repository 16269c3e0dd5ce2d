# Generated from schemas/events.py by `python client/contract_sync.py`: do not edit.
"""Every event of the contract, as pydantic models.

Producers in other services may import this module alone: it needs neither Kafka nor MongoDB.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from video_client.schemas.errors import ErrorInfo
from video_client.schemas.status import TaskStatus

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
# The same, for Python's `re.fullmatch` (whose `$` would also match before a final newline).
REQUEST_ID_CHARS = r"[A-Za-z0-9._:-]{1,128}"
METADATA_MAX_BYTES = 4096
MAX_DEPTH = 32  # nesting levels of objects and arrays in `metadata` and `parameters`
USER_ID_MAX_CHARS = 256
TENANT_ID_MAX_CHARS = 256
MODEL_MAX_CHARS = 128
PROVIDER_MAX_CHARS = 64
TIMEOUT_MIN_S = 60
TIMEOUT_MAX_S = 86400


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """Levels of objects and arrays in a decoded JSON value (a scalar is 0), counted without
    recursion and only up to `limit + 1`: a value nested deeper answers `limit + 1`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > limit:
            return limit + 1
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what MongoDB and most JSON readers take


def content_problem(value: Any) -> str | None:
    """What in `value` no event, log line or store takes, if anything: a string (keys
    included) that cannot be written as UTF-8 (a lone surrogate such as the JSON escape
    `"\\ud800"`), a key holding a NUL character, or an integer beyond 64 bits."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "holds text that is not valid Unicode (a lone surrogate)"
        elif isinstance(item, int) and not isinstance(item, bool):
            if not INT_MIN <= item <= INT_MAX:
                return "holds an integer beyond 64 bits"
        elif isinstance(item, dict):
            if any("\x00" in key for key in item):
                return "holds a key with a NUL character"
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _well_formed(value: Any) -> Any:
    if nesting_depth(value) > MAX_DEPTH:
        raise ValueError(f"is nested more than {MAX_DEPTH} levels deep")
    problem = content_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def utc_timestamp(moment: datetime | None = None) -> str:
    """The contract's timestamp: ISO 8601 UTC with milliseconds, e.g. 2026-11-27T20:08:58.123Z."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class RequestEvent(BaseModel):
    """A request to generate a video (`video.requests`). Unlisted fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    model: str = Field(min_length=1, max_length=MODEL_MAX_CHARS)
    provider: str | None = Field(default=None, max_length=PROVIDER_MAX_CHARS)
    parameters: dict[str, Any]
    user_id: str | None = Field(default=None, max_length=USER_ID_MAX_CHARS)
    tenant_id: str | None = Field(default=None, max_length=TENANT_ID_MAX_CHARS)
    metadata: dict[str, Any] | None = None
    reply_topic: str | None = Field(default=None, min_length=1, max_length=249)
    timeout_s: int | None = Field(default=None, ge=TIMEOUT_MIN_S, le=TIMEOUT_MAX_S)

    @field_validator("model", "provider", "user_id", "tenant_id", "reply_topic", "parameters")
    @classmethod
    def _text_and_depth(cls, value: Any) -> Any:
        return _well_formed(value) if value is not None else value

    @field_validator("metadata")
    @classmethod
    def _metadata_fits(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _well_formed(value)
            size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
            if size > METADATA_MAX_BYTES:
                raise ValueError(
                    f"metadata is {size} bytes as JSON; at most {METADATA_MAX_BYTES} are allowed"
                )
        return value


class CancelEvent(BaseModel):
    """A request to cancel a task (`video.cancel`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    reason: str | None = Field(default=None, max_length=1000)

    @field_validator("reason")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return _well_formed(value) if value is not None else value


class StatusEvent(BaseModel):
    """One state change of a task (`video.status`)."""

    event_id: str
    event_type: Literal["status"] = "status"
    request_id: str
    task_id: str
    sequence: int = Field(ge=1)
    status: TaskStatus
    provider: str | None
    model: str | None
    upstream_task_id: str | None = None
    upstream_status: str | None = None
    error: ErrorInfo | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    metadata: dict[str, Any] | None = None
    timestamp: str


class VideoFile(BaseModel):
    """One downloaded and checked video."""

    index: int
    url: str
    cover_image_url: str | None = None
    local_path: str
    filename: str
    size_bytes: int
    sha256: str
    content_type: str = "video/mp4"
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    # Set when the service uploads videos to object storage (OBJECT_STORE_*): the object's key
    # in the bucket, a URL other hosts can fetch it from, and when that URL stops working
    # (null for a public URL, which does not expire).
    object_key: str | None = None
    object_url: str | None = None
    object_url_expires_at: str | None = None


class TaskResult(BaseModel):
    upstream_task_id: str
    model: str
    created: str
    videos: list[VideoFile]
    prompt: str | None = None
    actual_prompt: str | None = None
    resolution: str | None = None
    usage: dict[str, Any] | None = None


class Timings(BaseModel):
    queued_s: float
    generation_s: float
    download_s: float
    total_s: float


class CompletedEvent(BaseModel):
    """A task that succeeded (`video.completed`): the status envelope plus result and timings."""

    event_id: str
    event_type: Literal["completed"] = "completed"
    request_id: str
    task_id: str
    sequence: int = Field(ge=1)
    status: Literal[TaskStatus.COMPLETED] = TaskStatus.COMPLETED
    provider: str
    model: str
    upstream_task_id: str | None = None
    upstream_status: str | None = None
    error: None = None
    user_id: str | None = None
    tenant_id: str | None = None
    metadata: dict[str, Any] | None = None
    timestamp: str
    result: TaskResult
    timings: Timings


class OriginalMessage(BaseModel):
    """Where a rejected message came from, and what it held.

    `headers` holds the header values that are UTF-8 text (a null value stays null);
    `binary_headers` those that are not, base64-encoded. Credential-bearing headers are never
    copied. `value` is the value as UTF-8 text or, with `value_encoding: "base64"`, base64; a
    value over 256 KiB is cut to that size (`value_truncated`); `value_size` and `value_sha256`
    always describe the whole original value.
    """

    topic: str
    partition: int
    offset: int
    key: str | None = None
    headers: dict[str, str | None] = Field(default_factory=dict)
    binary_headers: dict[str, str] = Field(default_factory=dict)
    headers_truncated: bool = False
    value: str
    value_encoding: Literal["base64"] | None = None
    value_truncated: bool = False
    value_size: int = 0
    value_sha256: str | None = None


class DeadLetterEvent(BaseModel):
    """Input that could not become a task (`video.requests.dlq`)."""

    event_type: Literal["rejected"] = "rejected"
    error: ErrorInfo
    original: OriginalMessage
    timestamp: str
