"""Admission limits: requests per second, and tasks in flight per (vendor, key, model).

Both are off unless configured. Buckets only hold recent timestamps or live tasks, so their cost
stays bounded by the limits themselves.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from collections.abc import Hashable


class RateWindow:
    """Sliding one-second windows; a refused request is not counted against the window."""

    def __init__(self) -> None:
        self._hits: dict[Hashable, deque[float]] = defaultdict(deque)

    def allow(self, bucket: Hashable, now: float, per_second: float | None) -> bool:
        if per_second is None:
            return True
        hits = self._hits[bucket]
        while hits and hits[0] <= now - 1.0:
            hits.popleft()
        if len(hits) >= per_second:
            return False
        hits.append(now)
        return True

    def clear(self) -> None:
        self._hits.clear()


class Slots:
    """Running slots per bucket, as a heap of (end time, task id) of the tasks holding them."""

    def __init__(self) -> None:
        self._held: dict[Hashable, list[tuple[float, str]]] = defaultdict(list)

    def busy(self, bucket: Hashable, now: float) -> int:
        """How many slots are held at `now`."""
        held = self._held[bucket]
        while held and held[0][0] <= now:
            heapq.heappop(held)
        return len(held)

    def first_free(self, bucket: Hashable, at: float, limit: int) -> float:
        """When a task wanting to start at `at` can start, FIFO behind the slot holders."""
        held = self._held[bucket]
        while held and held[0][0] <= at:
            heapq.heappop(held)
        if len(held) < limit:
            return at
        return heapq.heappop(held)[0]

    def take(self, bucket: Hashable, ends: float, task_id: str, now: float) -> None:
        held = self._held[bucket]
        while held and held[0][0] <= now:  # keeps buckets small even when no limit is set
            heapq.heappop(held)
        heapq.heappush(held, (ends, task_id))

    def release(self, bucket: Hashable, task_id: str) -> None:
        """Give a cancelled task's slot back (rare, so a linear rebuild is fine)."""
        held = [entry for entry in self._held[bucket] if entry[1] != task_id]
        heapq.heapify(held)
        self._held[bucket] = held

    def clear(self) -> None:
        self._held.clear()
