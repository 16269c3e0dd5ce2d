"""Group commit: calls that arrive while a batch is in flight go out together in the next one.

Why: one round trip per call is most of what a small read or write costs the service (a MongoDB
`update` costs about 0.25 ms of our CPU, one of 50 in a bulk write well under 0.05 ms). Nothing
waits for a timer: alone, a call goes out at once; under load, the calls that queued during one
batch share the next. Each caller still returns only once its own batch is done, with its own
result or that batch's error, so callers keep their usual retry. Hand-written: it is thirty
lines on asyncio, and no library offers it for pymongo's async client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")


class Batched(Generic[K, V, R]):
    def __init__(
        self,
        run: Callable[[dict[K, V]], Awaitable[Mapping[K, R]]],
        merge: Callable[[V, V], V] = lambda _, new: new,
    ) -> None:
        self._run = run  # one batch: {key: value} -> {key: result} (keys without one: None)
        self._merge = merge  # two calls for one key in one batch: the value it runs with
        self._pending: dict[K, V] = {}
        self._landed: asyncio.Future[Mapping[K, R]] | None = None  # of the pending batch
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self, key: K, value: V) -> R | None:
        """Run `key` with the others waiting; returns once its batch is done."""
        known = self._pending.get(key)
        self._pending[key] = value if known is None else self._merge(known, value)
        if self._landed is None:
            self._landed = asyncio.get_running_loop().create_future()
        landed = self._landed
        if self._runner is None:
            self._runner = asyncio.create_task(self._drain())
        # Shielded: one caller cancelled must not cancel the batch the others wait for.
        return (await asyncio.shield(landed)).get(key)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                landed, self._landed = self._landed, None
                assert landed is not None
                try:
                    results = await self._run(batch)
                except asyncio.CancelledError:  # the loop is closing: nobody waits for ever
                    for waiting in (landed, self._landed):
                        if waiting is not None:
                            waiting.cancel()
                    self._pending, self._landed = {}, None
                    raise
                except Exception as exc:
                    landed.set_exception(exc)
                    landed.exception()  # read here too: all its callers may have gone
                else:
                    landed.set_result(results)
        finally:
            self._runner = None
