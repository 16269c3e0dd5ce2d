"""The service's public event schemas. Import this package alone to produce or read events."""

from schemas.errors import ErrorCode, ErrorInfo
from schemas.events import (
    CancelEvent,
    CompletedEvent,
    DeadLetterEvent,
    OriginalMessage,
    RequestEvent,
    StatusEvent,
    TaskResult,
    Timings,
    VideoFile,
    utc_timestamp,
)
from schemas.status import TERMINAL, TaskStatus

__all__ = [
    "TERMINAL",
    "CancelEvent",
    "CompletedEvent",
    "DeadLetterEvent",
    "ErrorCode",
    "ErrorInfo",
    "OriginalMessage",
    "RequestEvent",
    "StatusEvent",
    "TaskResult",
    "TaskStatus",
    "Timings",
    "VideoFile",
    "utc_timestamp",
]
