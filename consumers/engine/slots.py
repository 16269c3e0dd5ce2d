"""Running slots: the vendor's limit on tasks running at once per model, shared by every instance.

The slots themselves are documents in the task store (see `TaskStore.claim_slot`), kept by the
instance that drives their task and renewed with its leases, so N instances together never run
more than the account allows, and a crashed instance's slots come back after its lease. Here,
an instance's own waiters queue per model: one turn per tenant in rotation (a burst of one
tenant cannot starve the others), first come first served within a tenant, and optionally at
most `TENANT_MAX_RUNNING` slots per tenant. Across instances, a freed slot goes to whichever
instance asks first; each asks again at least every `RETRY_S`: a freed slot stands idle for
half of that on average, a tenth of a second, which keeps even 2 s generations' slots over 90%
busy. Only the head waiter of each model asks, so the store sees at most five small claims a
second per model and instance while work waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from consumers.errors import INFRA_ERRORS
from consumers.storage.base import TaskStore
from providers.base import Provider

log = logging.getLogger("video.slots")

RETRY_S = 0.2
NO_TENANT = ""


@dataclass
class _Queue:
    """One model's waiters on this instance, by tenant, in rotation."""

    tenants: OrderedDict[str, deque[str]] = field(default_factory=OrderedDict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, tenant: str, task_id: str) -> None:
        self.tenants.setdefault(tenant, deque()).append(task_id)

    def remove(self, tenant: str, task_id: str) -> None:
        waiting = self.tenants.get(tenant)
        if waiting is not None and task_id in waiting:
            waiting.remove(task_id)
            if not waiting:
                del self.tenants[tenant]
        self.changed.set()

    def head(self, running: Callable[[str], int], cap: int) -> str | None:
        """The next task to try: the first tenant in rotation (under its cap) with a waiter."""
        for tenant, waiting in self.tenants.items():
            if not cap or tenant == NO_TENANT or running(tenant) < cap:
                return waiting[0]
        return None

    def served(self, tenant: str) -> None:
        if tenant in self.tenants:
            self.tenants.move_to_end(tenant)  # its next task waits for the other tenants' turns


class Slots:
    def __init__(
        self,
        store: TaskStore,
        owner: str,
        lease_until: Callable[[], datetime],
        now: Callable[[], datetime],
        tenant_cap: int = 0,
    ) -> None:
        self._store = store
        self._owner = owner
        self._lease_until = lease_until
        self._now = now
        self._tenant_cap = tenant_cap
        self._held: dict[str, tuple[str, str]] = {}  # task -> (slot key, tenant)
        self._queues: dict[str, _Queue] = {}

    def holds(self, task_id: str) -> bool:
        return task_id in self._held

    async def acquire(
        self, task_id: str, tenant: str | None, provider: Provider, model: str, timeout_s: float
    ) -> bool:
        """Take a running slot of `model`; False when none came free within `timeout_s`."""
        limit = provider.running_slots.limit(model)
        if limit <= 0 or task_id in self._held:
            return True
        key, who = _key(provider, model), tenant or NO_TENANT
        queue = self._queues.setdefault(key, _Queue())
        queue.add(who, task_id)
        try:
            async with asyncio.timeout(timeout_s):
                await self._wait_for_turn(queue, key, limit, task_id)
        except TimeoutError:
            return False
        finally:
            queue.remove(who, task_id)
        queue.served(who)
        self._held[task_id] = (key, who)
        return True

    async def _wait_for_turn(self, queue: _Queue, key: str, limit: int, task_id: str) -> None:
        while True:
            if queue.head(self._running, self._tenant_cap) == task_id:
                until, now = self._lease_until(), self._now()
                if await self._store.claim_slot(key, limit, task_id, self._owner, until, now):
                    return
            queue.changed.clear()
            # Not asyncio.wait_for: in Python 3.11 it can swallow a cancellation that arrives
            # as the event is set (a stopping instance's actor would carry on and submit).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RETRY_S):
                    await queue.changed.wait()

    async def keep(self, task_id: str, tenant: str | None, provider: Provider, model: str) -> None:
        """Count a task that already runs upstream (resumed or taken over) as this instance's,
        over the limit if need be: stopping it would waste what is paid for."""
        limit = provider.running_slots.limit(model)
        if task_id in self._held or limit <= 0:
            return
        key = _key(provider, model)
        until = self._lease_until()
        if not await self._store.keep_slot(key, task_id, self._owner, until):
            await self._store.claim_slot(key, limit, task_id, self._owner, until, self._now())
        self._held[task_id] = (key, tenant or NO_TENANT)

    async def release(self, task_id: str) -> None:
        held = self._held.pop(task_id, None)
        if held is None:
            return
        key, _ = held
        try:
            await self._store.release_slot(key, task_id)
        except INFRA_ERRORS as exc:  # no longer renewed: it comes back after the lease TTL
            log.warning("running slot of task %s not released (%r)", task_id, exc)
        queue = self._queues.get(key)
        if queue is not None:
            queue.changed.set()  # this instance's next waiter may take it at once

    async def renew(self) -> None:
        if self._held:
            await self._store.renew_slots(self._owner, list(self._held), self._lease_until())

    def _running(self, tenant: str) -> int:
        return sum(1 for _, who in self._held.values() if who == tenant)


def _key(provider: Provider, model: str) -> str:
    """The slot documents of one model at one vendor (one account per vendor)."""
    return f"running:{provider.name}:{model}"
