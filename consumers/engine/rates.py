"""Vendor rate limits shared by every instance: submits per second per model, queries per second.

Each call reserves the next free instant of its rate in the task store (a compare-and-set on one
document per rate, see `TaskStore.reserve_turn`) and sleeps until then, so N instances together
never call a vendor faster than the account allows. This is the "virtual scheduling" form of the
generic cell rate algorithm, with the database as the one place the schedule lives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from consumers.engine.clock import Clock
from consumers.storage.base import TaskStore

Acquire = Callable[[], Awaitable[None]]

MARGIN = 1.05
JITTER_S = 0.02


class SharedRate:
    def __init__(self, store: TaskStore, clock: Clock, key: str, per_s: float) -> None:
        self._store = store
        self._clock = clock
        self._key = key
        # A little slower than allowed: a call that leaves late must not land within the
        # vendor's one-second window of the next ones (a sliding window counts arrivals).
        self._interval_s = MARGIN * (1.0 / per_s) + JITTER_S

    async def acquire(self) -> None:
        start = await self._store.reserve_turn(self._key, self._interval_s, self._clock.now())
        delay = start.timestamp() - self._clock.timestamp()
        if delay > 0:
            await asyncio.sleep(delay)


class VendorRates:
    """The shared rates of each provider, built from its documented limits (0: none)."""

    def __init__(self, store: TaskStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._rates: dict[str, SharedRate] = {}

    def submits(self, provider: str, model: str, per_s: float) -> Acquire | None:
        return self._rate(f"submits:{provider}:{model}", per_s)

    def queries(self, provider: str, per_s: float) -> Acquire | None:
        return self._rate(f"queries:{provider}", per_s)

    def _rate(self, key: str, per_s: float) -> Acquire | None:
        if per_s <= 0:
            return None
        if key not in self._rates:
            self._rates[key] = SharedRate(self._store, self._clock, key, per_s)
        return self._rates[key].acquire
