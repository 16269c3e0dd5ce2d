"""The submit gate: which submits are under way, so that a shutdown can wait for them.

A submit is the one step that can pay for a video: from the moment its request may leave for
the vendor until the vendor's answer is stored, it runs as a task of its own here (shielded from
its actor being stopped). A shutdown closes the gate: no submit may start sending after that,
and the instance waits until those under way are recorded. Any still unrecorded when the wait
ends keep their leases (they are not released for an immediate takeover).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from consumers.errors import LeaseLost, ShuttingDown

log = logging.getLogger("video.gate")

T = TypeVar("T")


class SubmitGate:
    def __init__(self, leases_fresh: Callable[[], bool] = lambda: True) -> None:
        self._leases_fresh = leases_fresh
        self._open = True
        self._running: dict[str, asyncio.Task[Any]] = {}

    @property
    def in_flight(self) -> set[str]:
        return set(self._running)

    def check_open(self) -> None:
        if not self._open:
            raise ShuttingDown

    def check_send(self) -> None:
        """Called right before a submit's request is sent: nothing awaits between this check
        and the send, so a closed gate or a doubtful lease stops it for certain."""
        if not self._open:
            raise ShuttingDown
        if not self._leases_fresh():
            raise LeaseLost

    def run(self, task_id: str, work: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Run one task's submit to its end even if its actor is stopped meanwhile."""
        if not self._open:
            work.close()
            raise ShuttingDown
        job = asyncio.ensure_future(work)
        self._running[task_id] = job
        job.add_done_callback(lambda _: self._running.pop(task_id, None))
        return asyncio.shield(job)

    async def close(self, timeout_s: float) -> set[str]:
        """Refuse new submits; wait for those under way. Returns the tasks still unrecorded."""
        self._open = False
        if self._running:
            log.info("waiting for %d submits to record their upstream task", len(self._running))
            await asyncio.wait(list(self._running.values()), timeout=timeout_s)
        unresolved = self.in_flight
        if unresolved:
            log.warning(
                "%d submits not recorded at shutdown; their leases are kept", len(unresolved)
            )
        return unresolved
