"""Spending a vendor account's query budget on the tasks most likely to have finished.

Every running task may be polled at most every `POLL_INTERVAL_MIN_S` (its actor sleeps until
then) and then asks the planner for a turn. Turns are handed out at the account's query rate, in
order of when each task is due: its submit (or its last sign of life, while the vendor still
queues it) plus its model's learned duration, capped by `POLL_INTERVAL_MAX_S` since its last
poll. With budget to spare every task is polled about once a second and completion is noticed
within about a second; when the budget is short, the most overdue tasks go first.

Hand-written because it is a priority queue and a rate, and no library has this shape: a heap
of waiting turns and a token interval, about forty lines.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable

from consumers.errors import INFRA_ERRORS, INFRA_RETRY_S

log = logging.getLogger("video.polling")

Acquire = Callable[[], Awaitable[None]]


class PollPlanner:
    def __init__(self, acquire: Acquire | None) -> None:
        """`acquire` waits for one query of the budget; None: no budget, every turn at once."""
        self._acquire = acquire
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._granter: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return sum(1 for *_, turn in self._waiting if not turn.done())

    def request(self, due: float) -> asyncio.Future[None]:
        """A turn to send one query, done when granted; tasks due earliest go first. Cancel it
        to give it up."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._acquire is None:
            turn.set_result(None)
            return turn
        heapq.heappush(self._waiting, (due, next(self._order), turn))
        if self._granter is None or self._granter.done():
            self._granter = asyncio.create_task(self._grant())
        self._wake.set()
        return turn

    async def turn(self, due: float) -> None:
        """Wait for a turn (see `request`)."""
        turn = self.request(due)
        try:
            await turn
        finally:
            turn.cancel()  # given up while waiting: the granter skips it

    async def _grant(self) -> None:
        assert self._acquire is not None
        while True:
            while self._waiting and self._waiting[0][2].done():
                heapq.heappop(self._waiting)
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._acquire()
            except INFRA_ERRORS as exc:  # the shared budget is out of reach: try again soon
                log.warning("query budget unavailable (%r)", exc)
                await asyncio.sleep(INFRA_RETRY_S)
                continue
            while self._waiting:
                *_, turn = heapq.heappop(self._waiting)
                if not turn.done():
                    turn.set_result(None)
                    break

    async def stop(self) -> None:
        if self._granter is not None:
            self._granter.cancel()
            await asyncio.gather(self._granter, return_exceptions=True)
