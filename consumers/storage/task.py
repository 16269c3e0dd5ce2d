"""The task as the store keeps it: a typed model instead of a dict of string keys.

Documents written by earlier versions load too: every field added since the first version has a
default, and fields this version no longer knows are ignored (rolling deploys, old records).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.status import TaskStatus


class OutboxEntry(BaseModel):
    """One event of the task, stored with the move that made it (a transactional outbox)."""

    model_config = ConfigDict(extra="ignore")

    kind: str  # "status" or "completed": the topic is chosen from settings at publish time
    body: dict[str, Any]


class PlannedVideo(BaseModel):
    """A video the upstream produced, before (and while) it is downloaded."""

    model_config = ConfigDict(extra="ignore")

    index: int
    url: str
    cover_image_url: str | None = None
    filename: str  # the final name under VIDEO_DIR
    temp_name: str  # the name it is written under until whole and checked


class Task(BaseModel):
    """One request on its way through the service."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(alias="_id")
    request_id: str
    provider: str
    model: str
    params: dict[str, Any] = Field(default_factory=dict)
    prompt: str | None = None
    resolution: str | None = None
    user_id: str | None = None
    tenant_id: str | None = None
    metadata_json: str | None = None  # JSON text: producers' keys may hold "." or "$"
    reply_topic: str | None = None
    # The W3C trace context its events carry as headers (`traceparent`, `tracestate`): the
    # request's, or of our intake span when tracing is on (consumers/operations/tracing.py).
    trace_context: dict[str, str] | None = None
    timeout_s: int
    created_at: datetime
    deadline_at: datetime

    # Where it is, and who moves it.
    status: TaskStatus = TaskStatus.ACCEPTED
    sequence: int = 0  # the sequence of its latest status event; every move is guarded by it
    active: bool = True  # false once terminal and all its events reached Kafka
    lease_owner: str | None = None
    lease_until: datetime | None = None
    events: list[OutboxEntry] = Field(default_factory=list)
    published: int = 0  # how many of `events` are known to have reached Kafka
    error: dict[str, Any] | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None

    # Cancel: once requested, only the cancel step (and the record of a submit) may move it.
    cancel_requested_at: datetime | None = None
    cancel_reason: str | None = None

    # Upstream.
    submit_ticket: str | None = None  # the submit under way; its answer is recorded only with it
    submit_started_at: datetime | None = None
    submit_attempts: int = 0
    upstream_task_id: str | None = None
    upstream_status: str | None = None
    key_id: str | None = None
    submitted_at: datetime | None = None
    next_action_at: datetime | None = None
    upstream_done_at: datetime | None = None
    actual_prompt: str | None = None
    orig_prompt: str | None = None
    usage: dict[str, Any] | None = None

    # Result.
    videos: list[PlannedVideo] | None = None
    result: dict[str, Any] | None = None

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Task:
        return cls.model_validate(document)

    def moved(self, changes: Mapping[str, Any], events: Sequence[OutboxEntry] = ()) -> Task:
        """This task with a move's `changes` set and `events` appended: what the stored document
        is right after a guarded move of it."""
        fields = {**dict(self), **changes, "events": [*self.events, *events]}
        return Task.model_validate(fields)

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="python")

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def cancelling(self) -> bool:
        return self.cancel_requested_at is not None and not self.terminal

    @property
    def submit_unresolved(self) -> bool:
        """A submit was started and its answer never recorded: the vendor may hold a task.
        (Tasks stored by version 0.1, which had no tickets, show it by `submit_started_at`.)"""
        return self.status is TaskStatus.ACCEPTED and self.submit_started_at is not None

    def unpublished(self, already: int = 0) -> list[OutboxEntry]:
        return self.events[max(self.published, already) :]
