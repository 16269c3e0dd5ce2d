"""How long each model's generations take, learned from finished tasks.

The estimate starts at the model's documented typical duration and moves a fifth of the way
towards each new observation in log space, each step clipped to a factor of e: one stuck or
instant outlier cannot throw it off, a real change is followed within a few dozen tasks. It is
kept in the task store, so restarts and other instances start from what was learned. It decides
which running tasks get the query budget first; it never delays a poll when budget is spare.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping

from consumers.errors import INFRA_ERRORS
from consumers.storage.base import TaskStore

log = logging.getLogger("video.durations")

WEIGHT = 0.2
SAVE_EVERY_S = 10.0


class Durations:
    def __init__(self, store: TaskStore, typical_s: Mapping[str, float]) -> None:
        self._store = store
        self._seconds = dict(typical_s)
        self._saving: asyncio.Task[None] | None = None
        self._dirty = False

    def estimate(self, model: str) -> float:
        return self._seconds.get(model, 60.0)

    def learn(self, model: str, seconds: float) -> None:
        old = self.estimate(model)
        step = math.log(max(seconds, 0.1)) - math.log(old)
        self._seconds[model] = old * math.exp(WEIGHT * max(-1.0, min(1.0, step)))
        self._dirty = True
        if self._saving is None or self._saving.done():
            self._saving = asyncio.create_task(self._save_soon())

    async def load(self) -> None:
        try:
            self._seconds.update(await self._store.load_durations())
        except INFRA_ERRORS as exc:
            log.warning("learned durations not loaded (%r): starting from the typical ones", exc)

    async def _save_soon(self) -> None:
        await asyncio.sleep(SAVE_EVERY_S)  # one write for many finished tasks
        self._dirty = False
        try:
            await self._store.save_durations(dict(self._seconds))
        except INFRA_ERRORS as exc:
            log.info("learned durations not saved (%r); next time", exc)

    async def stop(self) -> None:
        if self._saving is not None and not self._saving.done():
            self._saving.cancel()
        if self._dirty:
            try:
                await self._store.save_durations(dict(self._seconds))
            except INFRA_ERRORS:
                pass
