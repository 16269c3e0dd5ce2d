"""Leases: keep this instance's tasks, and take over tasks whose instance died.

Every `LEASE_TTL_S / 3` the instance renews all its leases in one update, in the database's time
(see `Clock`). When the store holds a different set of tasks for it than it drives, it
reconciles. Every `LEASE_TTL_S / 2` it claims active tasks whose lease ran out.

`fresh()` says whether the leases are surely still ours: true until two thirds of the TTL after
the start of the last successful renewal, by this process's monotonic clock. An instance whose
renewals fail, or whose event loop stalled, starts no submit and no download until it renews.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from consumers.engine.clock import Clock
from consumers.engine.scheduler import Scheduler
from consumers.operations.logs import task_context
from consumers.operations.metrics import Metrics
from consumers.storage.base import TaskStore

log = logging.getLogger("video.leases")

CLAIM_BATCH = 500
FRESH_FRACTION = 2 / 3


class LeaseKeeper:
    def __init__(
        self,
        store: TaskStore,
        scheduler: Scheduler,
        clock: Clock,
        owner: str,
        ttl_s: float,
        metrics: Metrics,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.clock = clock
        self.owner = owner
        self.ttl_s = ttl_s
        self.metrics = metrics
        self._monotonic = monotonic
        self._fresh_until = monotonic() + ttl_s * FRESH_FRACTION  # set at acceptance/adoption
        self._loops: list[asyncio.Task[None]] = []
        self.renew_slots: Callable[[], Awaitable[None]] | None = None  # set by the engine

    def until(self) -> datetime:
        """A lease taken or renewed now lasts until then (in the database's time)."""
        return self.clock.after(self.ttl_s)

    @property
    def renewing(self) -> bool:
        return bool(self._loops)

    def fresh(self) -> bool:
        return self._monotonic() < self._fresh_until

    def start_renewing(self) -> None:
        """Keep this instance's leases (from the moment it may take requests in)."""
        if not self._loops:
            self._loops.append(asyncio.create_task(self._every(self.ttl_s / 3, self.renew)))

    def start(self) -> None:
        """Renew, and also take over orphans (once the broker can publish their events)."""
        self.start_renewing()
        if len(self._loops) < 2:
            claim = self._every(self.ttl_s / 2, self.claim_expired)
            self._loops.append(asyncio.create_task(claim))

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []

    async def _every(self, period_s: float, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await action()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never die silently: the next round tries again
                log.warning("%s failed: %r", getattr(action, "__name__", action), exc)
            await asyncio.sleep(period_s * random.uniform(0.8, 1.0))

    async def renew(self) -> None:
        started = self._monotonic()
        await self.clock.sync(self.store)
        matched = await self.store.renew_leases(self.owner, self.clock.after(self.ttl_s))
        if self.renew_slots is not None:
            await self.renew_slots()
        if matched != self.scheduler.held:
            await self.reconcile()
        # Only now: a task taken over meanwhile has been forgotten above.
        self._fresh_until = started + self.ttl_s * FRESH_FRACTION

    async def reconcile(self) -> None:
        """Stop driving tasks stored as someone else's; drive tasks stored as ours."""
        driven = self.scheduler.held_ids()  # before the await: adoptions meanwhile are kept
        stored = await self.store.held_task_ids(self.owner)
        self.scheduler.forget(driven - stored)
        for task_id in stored - self.scheduler.held_ids():
            self.scheduler.adopt(task_id)

    async def claim_expired(self) -> None:
        room = self.scheduler.limit - self.scheduler.held
        while room > 0:
            batch = min(room, CLAIM_BATCH)
            claimed = await self.store.claim_expired(
                self.owner, self.clock.now(), self.clock.after(self.ttl_s), batch
            )
            for task in claimed:
                with task_context(task):
                    log.info("took over task %s (%s) at %s", task.id, task.request_id, task.status)
                self.metrics.takeovers.inc()
                self.scheduler.adopt(task.id)
            if len(claimed) < batch:
                return
            room -= len(claimed)
