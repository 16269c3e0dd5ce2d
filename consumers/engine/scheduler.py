"""The actors: one small asyncio task per task in flight, sleeping on a timer between steps.

Ten thousand tasks in flight cost ten thousand sleeping coroutines and timers, not workers. The
scheduler only starts, wakes and stops actors; what an actor does is `consumers.engine.actor`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any


class Alarm:
    """An actor's sleep: until a time, or until rung (a cancel, a freed slot, a stop).

    A ring while the actor is awake is kept, so the next sleep returns at once: a cancel that
    arrives during a step is never slept through.
    """

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None
        self._rung = False

    async def sleep(self, seconds: float, until: asyncio.Future[None] | None = None) -> None:
        """Sleep `seconds`, or less: until rung, or until `until` is done."""
        if self._rung:
            self._rung = False
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(max(0.0, seconds), _resolve, waiter)
        if until is not None:
            until.add_done_callback(lambda _: _resolve(waiter))
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
            self._rung = False

    def ring(self) -> None:
        if self._waiter is not None:
            _resolve(self._waiter)
        else:
            self._rung = True


Run = Callable[[str, Alarm], Coroutine[Any, Any, None]]


class Scheduler:
    def __init__(self, run: Run, limit: int) -> None:
        self._run = run
        self.limit = limit
        self._actors: dict[str, asyncio.Task[None]] = {}
        self._alarms: dict[str, Alarm] = {}
        self._freed = asyncio.Event()
        self._stopping = False

    @property
    def held(self) -> int:
        return len(self._actors)

    @property
    def has_room(self) -> bool:
        return self.held < self.limit

    def holds(self, task_id: str) -> bool:
        return task_id in self._actors

    def held_ids(self) -> set[str]:
        return set(self._actors)

    def adopt(self, task_id: str) -> bool:
        """Start an actor for a task this instance holds; False if stopping or already driven."""
        if self._stopping or task_id in self._actors:
            return False
        alarm = Alarm()
        actor = asyncio.create_task(self._run(task_id, alarm), name=f"task {task_id}")
        self._actors[task_id] = actor
        self._alarms[task_id] = alarm
        # A done callback, not a `finally` in the actor: it runs even for an actor cancelled
        # before its first step.
        actor.add_done_callback(lambda done: self._ended(task_id, done))
        return True

    def wake(self, task_id: str) -> None:
        """Cut an actor's sleep short so it reloads its task (after a cancel request)."""
        alarm = self._alarms.get(task_id)
        if alarm is not None:
            alarm.ring()

    def forget(self, task_ids: Iterable[str]) -> None:
        """Stop the actors of tasks this instance no longer holds."""
        for task_id in task_ids:
            actor = self._actors.get(task_id)
            if actor is not None:
                actor.cancel()

    async def wait_for_room(self, below: int) -> None:
        """Return once fewer than `below` tasks are held."""
        while self.held >= below:
            self._freed.clear()
            await self._freed.wait()

    def close(self) -> None:
        """Adopt nothing more (the instance is shutting down)."""
        self._stopping = True

    async def stop(self) -> None:
        """Stop every actor (each task is saved at its last step)."""
        self._stopping = True
        actors = list(self._actors.values())
        for actor in actors:
            actor.cancel()
        await asyncio.gather(*actors, return_exceptions=True)

    def _ended(self, task_id: str, actor: asyncio.Task[None]) -> None:
        if self._actors.get(task_id) is actor:
            del self._actors[task_id]
            del self._alarms[task_id]
        self._freed.set()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
