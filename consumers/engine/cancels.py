"""Cancel requests: mark the task, take its lease, and let its actor carry the cancel out here.

Marking first means no other step can move the task any more (the store refuses ordinary moves
of a task whose cancel was requested), so a vendor's CANCELED can never be written as `failed`.
A cancel for a `request_id` not seen yet is remembered for `CANCEL_MEMORY_S`: requests and
cancels travel on different topics, so a cancel can overtake its request. Each side writes
first and then looks for the other, so at least one of them sees both.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from enum import StrEnum

from consumers.engine.clock import Clock
from consumers.engine.scheduler import Scheduler
from consumers.operations.logs import task_context
from consumers.settings import Settings
from consumers.storage.base import PendingCancel, TaskStore
from consumers.storage.task import Task
from consumers.subscribers.auth import Identity

log = logging.getLogger("video.cancel")


class CancelOutcome(StrEnum):
    CANCELLING = "cancelling"
    REMEMBERED = "remembered"  # no such task yet: applied if its request comes in time
    ALREADY_OVER = "already_over"
    REFUSED = "refused"


class CancelDesk:
    def __init__(
        self,
        store: TaskStore,
        scheduler: Scheduler,
        clock: Clock,
        *,
        owner: str,
        settings: Settings,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.clock = clock
        self.owner = owner
        self.lease_ttl_s = settings.lease_ttl_s
        self.memory_s = settings.cancel_memory_s

    async def cancel(
        self, request_id: str, reason: str | None, identity: Identity | None = None
    ) -> CancelOutcome:
        task = await self.store.find_by_request_id(request_id)
        if task is None:
            await self._remember(request_id, reason, identity)
            task = await self.store.find_by_request_id(request_id)  # its request came meanwhile?
            if task is None:
                log.info("cancel of unknown request_id %s remembered", request_id)
                return CancelOutcome.REMEMBERED
        with task_context(task):  # the lines carry the task's ids and trace, as its steps' do
            if task.terminal:
                log.info("cancel of %s ignored: already %s", request_id, task.status)
                return CancelOutcome.ALREADY_OVER
            refused = identity.may_cancel(task.user_id, task.tenant_id) if identity else None
            if refused:
                log.warning("cancel of %s refused: %s", request_id, refused)
                return CancelOutcome.REFUSED
            return await self._mark(task, reason)

    async def apply_pending(self, tasks: Sequence[Task]) -> None:
        """Called by intake once new tasks are stored: cancels that came before them apply."""
        if not tasks:
            return
        pending = await self.store.pending_cancels([t.request_id for t in tasks], self.clock.now())
        for task in tasks:
            cancel = pending.get(task.request_id)
            if cancel is None:
                continue
            refused = _refusal(cancel, task)
            with task_context(task):
                if refused is None:
                    log.info("request %s was cancelled before it came", task.request_id)
                    await self._mark(task, cancel.reason)
                else:
                    log.warning("early cancel of %s refused: %s", task.request_id, refused)
            await self.store.forget_cancel(task.request_id)

    async def _mark(self, task: Task, reason: str | None) -> CancelOutcome:
        now = self.clock.now()
        lease_until = self.clock.after(self.lease_ttl_s)
        marked = await self.store.request_cancel(task.id, reason, self.owner, lease_until, now)
        if marked is None:
            return CancelOutcome.ALREADY_OVER
        if not self.scheduler.adopt(task.id):
            self.scheduler.wake(task.id)  # driven here already: cut its sleep short
        return CancelOutcome.CANCELLING

    async def _remember(
        self, request_id: str, reason: str | None, identity: Identity | None
    ) -> None:
        await self.store.remember_cancel(
            PendingCancel(
                request_id=request_id,
                reason=reason,
                user_id=identity.user_id if identity else None,
                admin=identity.admin if identity else False,
                expires_at=self.clock.after(self.memory_s),
                tenant_id=identity.tenant_id if identity else None,
                authenticated=identity is not None,
            )
        )


def _refusal(cancel: PendingCancel, task: Task) -> str | None:
    """The same rule as for a task that exists: its own user and tenant, or an admin."""
    if not cancel.authenticated:
        return None
    who = Identity(cancel.user_id, cancel.tenant_id, None, admin=cancel.admin)
    return who.may_cancel(task.user_id, task.tenant_id)
