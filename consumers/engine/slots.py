"""Running slots: the vendor's limit on tasks running at once per model, taken in FIFO order.

The count itself lives with the provider (`provider.running_slots`); this keeps which task holds
which slot and the queue of tasks waiting for one, so a slot freed goes to the longest waiter.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque

from providers.base import Provider


class Slots:
    def __init__(self) -> None:
        self._held: dict[str, tuple[Provider, str]] = {}
        self._queues: dict[tuple[str, str], deque[asyncio.Future[None]]] = defaultdict(deque)

    def holds(self, task_id: str) -> bool:
        return task_id in self._held

    async def acquire(self, task_id: str, provider: Provider, model: str, timeout_s: float) -> bool:
        """Take a slot of `model` for the task; False when none came free within `timeout_s`."""
        if task_id in self._held:
            return True
        queue = self._queues[(provider.name, model)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not provider.running_slots.try_acquire(model):
            waiter: asyncio.Future[None] = loop.create_future()
            queue.append(waiter)
            try:
                await asyncio.wait_for(waiter, max(0.0, deadline - loop.time()))
            except TimeoutError:
                return False
            finally:
                if waiter in queue:
                    queue.remove(waiter)
        self._held[task_id] = (provider, model)
        return True

    def force(self, task_id: str, provider: Provider, model: str) -> None:
        """Count a task that is already running upstream (resumed or taken over)."""
        if task_id not in self._held:
            provider.running_slots.force_acquire(model)
            self._held[task_id] = (provider, model)

    def release(self, task_id: str) -> None:
        held = self._held.pop(task_id, None)
        if held is None:
            return
        provider, model = held
        provider.running_slots.release(model)
        queue = self._queues[(provider.name, model)]
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
