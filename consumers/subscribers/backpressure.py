"""Back-pressure: pause request consumption while MAX_IN_FLIGHT tasks are held.

Pausing the partitions (rather than blocking the handler or buffering messages) keeps the
consumer polling, so it stays in its group, and leaves unread requests safely in Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

from consumers.engine.scheduler import Scheduler
from consumers.operations.metrics import Metrics

log = logging.getLogger("video.backpressure")

RESUME_FRACTION = 0.9  # resume below 90% of the limit, so intake does not flap


class Backpressure:
    def __init__(self, subscriber: Any, scheduler: Scheduler, limit: int, metrics: Metrics) -> None:
        self._subscriber = subscriber
        self._scheduler = scheduler
        self._limit = limit
        self._metrics = metrics
        self._resumer: asyncio.Task[None] | None = None

    @property
    def paused(self) -> bool:
        return self._resumer is not None and not self._resumer.done()

    def check(self) -> None:
        """Called after each stored batch."""
        consumer = self._subscriber.consumer
        if self._scheduler.held < self._limit or consumer is None:
            return
        # Pausing again is harmless and covers partitions assigned by a rebalance meanwhile.
        consumer.pause(*consumer.assignment())
        if self.paused:
            return
        self._metrics.intake_paused.set(1)
        log.warning(
            "%d tasks in flight (MAX_IN_FLIGHT=%d): request intake paused",
            self._scheduler.held,
            self._limit,
        )
        self._resumer = asyncio.create_task(self._resume_when_room())

    def assigned(self, partitions: Collection[Any]) -> None:
        """Partitions a rebalance has just assigned come unpaused (aiokafka forgets pauses):
        pause them while intake is paused, or when the tasks held already reach the limit (an
        instance that starts with its earlier tasks)."""
        consumer = self._subscriber.consumer
        if consumer is None or not partitions:
            return
        if self.paused:
            consumer.pause(*partitions)
        else:
            self.check()

    async def _resume_when_room(self) -> None:
        await self._scheduler.wait_for_room(int(self._limit * RESUME_FRACTION) or 1)
        consumer = self._subscriber.consumer
        if consumer is not None:
            consumer.resume(*consumer.assignment())
        self._metrics.intake_paused.set(0)
        log.info("%d tasks in flight: request intake resumed", self._scheduler.held)

    async def stop(self) -> None:
        if self._resumer is not None:
            self._resumer.cancel()
            await asyncio.gather(self._resumer, return_exceptions=True)
