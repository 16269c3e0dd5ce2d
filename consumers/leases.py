"""Leases: keep this instance's tasks, and take over tasks whose instance died.

Every `LEASE_TTL_S / 3` the instance renews all its leases in one update. When the store holds
a different number of tasks for it than it drives, it reconciles: tasks cancelled or taken over
elsewhere are dropped, tasks it holds but does not drive (after a restart with the same
INSTANCE_ID) are resumed. Every `LEASE_TTL_S / 2` it claims active tasks whose lease ran out.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from consumers.operations.metrics import Metrics
from consumers.runner import INFRA_ERRORS, TaskRunner
from consumers.store import TaskStore, now

log = logging.getLogger("video.leases")

CLAIM_BATCH = 500


class LeaseKeeper:
    def __init__(
        self, store: TaskStore, runner: TaskRunner, ttl_s: float, metrics: Metrics
    ) -> None:
        self.store = store
        self.runner = runner
        self.ttl_s = ttl_s
        self.metrics = metrics
        self._loops: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._every(self.ttl_s / 3, self.renew)),
            asyncio.create_task(self._every(self.ttl_s / 2, self.claim_expired)),
        ]

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)

    async def _every(self, period_s: float, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await action()
            except INFRA_ERRORS as exc:
                log.warning("%s failed: %r", getattr(action, "__name__", action), exc)
            await asyncio.sleep(period_s * random.uniform(0.8, 1.0))

    async def renew(self) -> None:
        until = now() + timedelta(seconds=self.ttl_s)
        matched = await self.store.renew_leases(self.runner.owner, until)
        if matched != self.runner.held:
            await self.reconcile()

    async def reconcile(self) -> None:
        stored = await self.store.held_task_ids(self.runner.owner)
        driven = self.runner.held_ids()
        self.runner.forget(driven - stored)
        for task_id in stored - driven:
            task = await self.store.get(task_id)
            if task is not None and task.get("lease_owner") == self.runner.owner:
                self.runner.adopt(task)

    async def claim_expired(self) -> None:
        room = self.runner.settings.max_in_flight - self.runner.held
        while room > 0:
            until = now() + timedelta(seconds=self.ttl_s)
            claimed = await self.store.claim_expired(
                self.runner.owner, until, min(room, CLAIM_BATCH)
            )
            for task in claimed:
                log.info(
                    "took over task %s (%s) at %s", task["_id"], task["request_id"], task["status"]
                )
                self.metrics.takeovers.inc()
                self.runner.adopt(task)
            if len(claimed) < min(room, CLAIM_BATCH):
                return
            room -= len(claimed)
