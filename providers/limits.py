"""Vendor limits that queue work instead of failing it.

`RateLimiter` spaces calls out (submits per model, status queries per provider); `RunningSlots`
counts the vendor tasks running per model. Both serve waiters first come, first served.

Limits are per process: several instances of the service each keep to the whole limit, so the
vendor may still answer 429 now and then; that is a transient error the runner retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping

log = logging.getLogger(__name__)


class RateLimiter:
    """At most `rate_per_s` acquisitions per second, in call order (`rate_per_s` 0 = no limit).

    Each caller reserves the next free instant and sleeps until it, so thousands of waiters cost
    one timer each and are never woken just to go back to sleep ("virtual scheduling" / GCRA).
    `burst` lets that many calls through at once after a quiet spell.
    """

    def __init__(self, rate_per_s: float, burst: int = 1) -> None:
        self._interval = 1.0 / rate_per_s if rate_per_s > 0 else 0.0
        self._tolerance = (max(burst, 1) - 1) * self._interval
        self._tat = float("-inf")  # "theoretical arrival time" of the next call

    def wait_time(self) -> float:
        """Seconds a call made now would wait (the queue's length in time)."""
        now = asyncio.get_running_loop().time()
        return max(0.0, max(self._tat, now) - self._tolerance - now) if self._interval else 0.0

    async def acquire(self) -> None:
        if not self._interval:
            return
        now = asyncio.get_running_loop().time()
        tat = max(self._tat, now)
        self._tat = tat + self._interval
        delay = tat - self._tolerance - now
        if delay <= 0:
            return
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            if self._tat == tat + self._interval:  # nobody queued behind us: give the slot back
                self._tat = tat
            raise


class RunningSlots:
    """How many vendor tasks run per model, against a per-model limit (0 = no limit).

    `try_acquire` never waits (and never jumps the queue of `acquire` waiters); `force_acquire`
    counts a task that is already running upstream, e.g. one taken over after a crash, even when
    that goes over the limit; `release` frees the slot when the task ends.
    """

    def __init__(self, limit_per_model: int | Mapping[str, int]) -> None:
        self._limits = limit_per_model
        self._used: dict[str, int] = {}
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}

    def limit(self, model: str) -> int:
        if isinstance(self._limits, int):
            return self._limits
        return self._limits.get(model, 0)

    def in_use(self, model: str) -> int:
        return self._used.get(model, 0)

    def try_acquire(self, model: str) -> bool:
        if self._queue(model) or not self._has_room(model):
            return False
        self.force_acquire(model)
        return True

    def force_acquire(self, model: str) -> None:
        self._used[model] = self.in_use(model) + 1

    async def acquire(self, model: str) -> None:
        """Wait for a slot, in turn."""
        if self.try_acquire(model):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(model, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted, but the waiter is gone
                self.release(model)
            raise

    def release(self, model: str) -> None:
        used = self.in_use(model)
        if used <= 0:
            log.warning("running slot of %s released more often than acquired", model)
            return
        self._used[model] = used - 1
        queue = self._queue(model)
        while queue and self._has_room(model):
            self.force_acquire(model)
            queue.popleft().set_result(None)

    def _has_room(self, model: str) -> bool:
        limit = self.limit(model)
        return limit <= 0 or self.in_use(model) < limit

    def _queue(self, model: str) -> deque[asyncio.Future[None]]:
        """The model's waiters, without those that gave up."""
        queue = self._waiters.get(model, deque())
        while queue and queue[0].done():
            queue.popleft()
        return queue
