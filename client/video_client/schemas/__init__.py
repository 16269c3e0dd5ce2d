# Generated from schemas/__init__.py by `python client/contract_sync.py`: do not edit.
"""The service's public event schemas. Import this package alone to produce or read events."""

from video_client.schemas.errors import ErrorCode, ErrorInfo
from video_client.schemas.events import (
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
from video_client.schemas.status import TERMINAL, TaskStatus

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
