"""Group commit: calls that arrive while a write is in flight go out together in the next one.

Why: one round trip per call is most of what a small write costs the service (a MongoDB
`update` costs about 0.25 ms of our CPU, one of 50 in a bulk write well under 0.05 ms). Nothing
waits for a timer: alone, a call is written at once; under load, the calls that queued during
one write share the next. Each caller still returns only once its own write landed, and gets
that write's error, so callers keep their usual retry. Hand-written because it is twenty lines
on asyncio and no library offers it for pymongo's async client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class GroupWrite(Generic[K, V]):
    def __init__(
        self,
        write: Callable[[dict[K, V]], Awaitable[None]],
        merge: Callable[[V, V], V] = lambda _, new: new,
    ) -> None:
        self._write = write
        self._merge = merge  # two calls for one key before their write: what is written
        self._pending: dict[K, V] = {}
        self._landed: asyncio.Future[None] | None = None  # of the pending calls' write
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, key: K, value: V) -> None:
        """Write `value` for `key` together with the others waiting; returns once written."""
        known = self._pending.get(key)
        self._pending[key] = value if known is None else self._merge(known, value)
        if self._landed is None:
            self._landed = asyncio.get_running_loop().create_future()
        landed = self._landed
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        # Shielded: one caller cancelled must not cancel the write the others wait for.
        await asyncio.shield(landed)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, {}
                landed, self._landed = self._landed, None
                assert landed is not None
                try:
                    await self._write(batch)
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
                    landed.set_result(None)
        finally:
            self._writer = None
