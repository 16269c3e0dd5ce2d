# Generated from schemas/status.py by `python client/contract_sync.py`: do not edit.
"""Task status and the moves it may make."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """The status of a task, as published on `video.status`, in lifecycle order."""

    ACCEPTED = "accepted"
    SUBMITTED = "submitted"
    RUNNING = "running"
    DOWNLOADING = "downloading"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    def can_move_to(self, new: TaskStatus) -> bool:
        """Statuses only move forward (some may be skipped) and never leave a terminal one."""
        return not self.terminal and _RANK[new] > _RANK[self]


TERMINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

_RANK = {
    TaskStatus.ACCEPTED: 1,
    TaskStatus.SUBMITTED: 2,
    TaskStatus.RUNNING: 3,
    TaskStatus.DOWNLOADING: 4,
    TaskStatus.COMPLETED: 5,
    TaskStatus.FAILED: 5,
    TaskStatus.CANCELLED: 5,
}
