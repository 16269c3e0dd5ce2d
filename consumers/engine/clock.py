"""Time as the database tells it, so that instances with different clocks agree on leases.

The offset between this machine's clock and the database's is measured on every lease round
(half the round trip is allowed for); between rounds, `now()` is the local clock plus that offset.
An instance whose clock runs 20 s ahead therefore still sees other instances' leases as live.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from consumers.storage.base import TaskStore

MAX_ROUND_TRIP_S = 0.5


class Clock:
    def __init__(self, local: Callable[[], float] = time.time) -> None:
        self._local = local
        self._offset_s = 0.0

    def timestamp(self) -> float:
        """Seconds since the epoch, in the database's time."""
        return self._local() + self._offset_s

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def after(self, seconds: float) -> datetime:
        return self.now() + timedelta(seconds=seconds)

    async def sync(self, store: TaskStore) -> None:
        """Measure the database clock's offset from ours."""
        sent = self._local()
        database = (await store.clock()).timestamp()
        received = self._local()
        if received - sent > MAX_ROUND_TRIP_S:
            return  # blocked across an outage: the midpoint says nothing; keep the last offset
        self._offset_s = database - (sent + received) / 2

    @property
    def offset_s(self) -> float:
        return self._offset_s


def seconds_between(start: datetime | None, end: datetime | None) -> float:
    if start is None or end is None:
        return 0.0
    return round(max(0.0, (end - start).total_seconds()), 3)
