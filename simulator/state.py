"""Tasks and the clock they live by.

A task's phase is computed from its timestamps whenever someone asks, so nothing runs in the
background and 10,000 tasks in flight cost only their memory.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Clock:
    """Wall time plus an offset tests can move forward (to reach expiry without waiting)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.now()


class Phase(StrEnum):
    """Vendor-neutral task phase; each vendor module maps it to its own status strings."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"  # gone: fault-injected, or older than the retention window


@dataclass(frozen=True)
class Output:
    """What the finished video looks like, so the result host can pick a matching file."""

    width: int
    height: int
    duration: int


@dataclass
class Task:
    task_id: str
    vendor: str
    model: str
    path: str
    body: dict[str, Any]
    key_fp: str
    prompt: str | None
    output: Output
    created: float
    scheduled: float
    ended: float
    request_id: str | None = None  # BigModel: the client's (or generated) request_id
    account: str = ""  # the vendor account of the key that created it
    fail_code: str | None = None
    fail_message: str | None = None
    unknown: bool = False
    url_expired: bool = False
    canceled_at: float | None = None
    queries: int = 0
    query_key_fps: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)  # vendor-specific result fields

    def fail(self, code: str, message: str) -> None:
        self.fail_code, self.fail_message = code, message

    def phase(self, now: float, ttl_s: float) -> Phase:
        if self.unknown or now - self.created > ttl_s:
            return Phase.UNKNOWN
        if self.canceled_at is not None:
            return Phase.CANCELED
        if now < self.scheduled:
            return Phase.PENDING
        if now < self.ended:
            return Phase.RUNNING
        return Phase.FAILED if self.fail_code is not None else Phase.SUCCEEDED

    def has_result(self, now: float) -> bool:
        """A video exists (URL expiry is the result host's business, not the task's)."""
        done = now >= self.ended and self.canceled_at is None and not self.unknown
        return done and self.fail_code is None


def fingerprint(key: str) -> str:
    """A short, stable stand-in for an API key: the simulator never shows keys themselves."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class TaskStore:
    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}
        # (vendor, account, client request_id) -> the latest task created with it
        self._by_request_id: dict[tuple[str, str, str], Task] = {}

    def add(self, task: Task) -> None:
        self._tasks[task.task_id] = task
        if task.request_id is not None:
            self._by_request_id[(task.vendor, task.account, task.request_id)] = task

    def by_request_id(self, vendor: str, account: str, request_id: str) -> Task | None:
        return self._by_request_id.get((vendor, account, request_id))

    def get(self, vendor: str, task_id: str) -> Task | None:
        task = self._tasks.get(task_id)
        return task if task is not None and task.vendor == vendor else None

    def find(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def all(self) -> list[Task]:
        return list(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def clear(self) -> None:
        self._tasks.clear()
        self._by_request_id.clear()
