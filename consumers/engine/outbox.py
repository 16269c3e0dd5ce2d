"""Moving a task and publishing what the move wrote: the transactional outbox.

A move is one guarded store update that sets the task's fields and appends its event(s). The
events are then published; what reached Kafka is remembered here, in memory, and stored with the
task's next write (not in a write of its own). A crash in between only publishes the latest
events again, with the same event ids; without a crash nothing is published twice. Each event
carries the task's trace context as headers (consumers/operations/tracing.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from consumers.engine.clock import Clock, seconds_between
from consumers.errors import TaskMoved
from consumers.messaging import events
from consumers.messaging.publisher import EventPublisher
from consumers.operations import tracing
from consumers.operations.metrics import Metrics
from consumers.storage.base import TaskStore
from consumers.storage.task import OutboxEntry, Task
from schemas.errors import ErrorInfo
from schemas.status import TaskStatus


class Outbox:
    def __init__(
        self,
        store: TaskStore,
        publisher: EventPublisher,
        metrics: Metrics,
        clock: Clock,
        owner: str,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.metrics = metrics
        self.clock = clock
        self.owner = owner
        self._published: dict[str, int] = {}  # per task: events known to have reached Kafka
        # The document each write returned, for the actor's next step when it follows at once
        # (one read fewer per step); dropped when the actor sleeps or its task moved.
        self._latest: dict[str, Task] = {}

    async def update(
        self, task: Task, changes: Mapping[str, Any], *, even_if_cancelling: bool = False
    ) -> Task:
        """Change fields without a new status. Raises TaskMoved when the task moved on."""
        fields = {**changes, "published": self._known(task)}
        moved = await self.store.move(
            task, self.owner, fields, even_if_cancelling=even_if_cancelling
        )
        if moved is None:
            raise TaskMoved
        return self.remember(moved)

    async def move(
        self,
        task: Task,
        status: TaskStatus,
        changes: Mapping[str, Any],
        *,
        error: ErrorInfo | None = None,
        entries: Sequence[OutboxEntry] = (),
        even_if_cancelling: bool = False,
    ) -> Task:
        """Move the task to `status`, writing its event(s) in the same update, then publish."""
        entries = entries or [self.status_entry(task, status, changes, error)]
        fields = self._fields(task, status, changes, error, entries)
        moved = await self.store.move(
            task, self.owner, fields, entries, even_if_cancelling=even_if_cancelling
        )
        if moved is None:
            raise TaskMoved
        self._count(moved, error)
        return self.remember(await self.flush(moved))

    async def record_submit(
        self, task: Task, ticket: str | None, changes: Mapping[str, Any]
    ) -> Task | None:
        """Record the answer to submit `ticket` as `submitted`, whoever holds the task now.
        None when the task no longer waits for that submit."""
        entries = [self.status_entry(task, TaskStatus.SUBMITTED, changes, None)]
        fields = self._fields(task, TaskStatus.SUBMITTED, changes, None, entries)
        recorded = await self.store.record_submit(task, ticket, fields, entries)
        if recorded is None:
            return None
        self._count(recorded, None)
        return self.remember(recorded)

    def status_entry(
        self,
        task: Task,
        status: TaskStatus,
        changes: Mapping[str, Any],
        error: ErrorInfo | None,
    ) -> OutboxEntry:
        preview = task.model_copy(update={k: v for k, v in changes.items() if k != "videos"})
        return events.status_event(preview, status, error=error)

    async def flush(self, task: Task) -> Task:
        """Publish the task's events that may not have reached Kafka yet."""
        done = self._known(task)
        if done < len(task.events):
            await self.publisher.publish_entries(
                task.request_id,
                task.events[done:],
                task.reply_topic,
                headers=tracing.event_headers(task.trace_context),
            )
            done = self._published[task.id] = len(task.events)
        if task.terminal and task.active:
            await self.store.mark_finished(task.id, done)
            self.forget(task.id)
            task = task.model_copy(update={"active": False, "published": done})
        return task

    def forget(self, task_id: str) -> None:
        self._published.pop(task_id, None)
        self._latest.pop(task_id, None)

    def latest(self, task_id: str) -> Task | None:
        """The task as this instance's last write left it (once), if that write was the last."""
        return self._latest.pop(task_id, None)

    def remember(self, task: Task) -> Task:
        self._latest[task.id] = task
        return task

    def _known(self, task: Task) -> int:
        return max(task.published, self._published.get(task.id, 0))

    def _fields(
        self,
        task: Task,
        status: TaskStatus,
        changes: Mapping[str, Any],
        error: ErrorInfo | None,
        entries: Sequence[OutboxEntry],
    ) -> dict[str, Any]:
        now = self.clock.now()
        fields = {
            **changes,
            "status": str(status),
            "sequence": entries[0].body["sequence"],
            "error": error.model_dump(mode="json") if error else None,
            "updated_at": now,
            "published": self._known(task),
        }
        if status.terminal:
            fields["finished_at"] = now
        return fields

    def _count(self, task: Task, error: ErrorInfo | None) -> None:
        labels = (task.provider, task.model)
        self.metrics.statuses.labels(*labels, str(task.status)).inc()
        if task.terminal:
            elapsed = seconds_between(task.created_at, self.clock.now())
            self.metrics.task_seconds.labels(*labels, str(task.status)).observe(elapsed)
            if error is not None:
                self.metrics.errors.labels(*labels, str(error.code)).inc()
