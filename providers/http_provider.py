"""The I/O shared by both vendors: one reused httpx client, keys, rate limits, running slots.

A vendor's `client.py` only names itself and hands over its pure `wire` module. Nothing is
retried here: a failed call raises `ProviderError` and the task runner schedules any retry
durably.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import ClassVar, Self

import httpx

from providers.base import (
    HttpRequest,
    ModelParameters,
    PollResult,
    Provider,
    ProviderLimits,
    Submitted,
)
from providers.http import HttpResponse, send
from providers.keys import KeyRing
from providers.limits import RateLimiter, RunningSlots
from providers.settings import ProviderSettings, VendorSettings
from providers.wire_types import Wire

log = logging.getLogger(__name__)


def api_base(base_url: str, api_root: str) -> str:
    """The root URL: `…/api/v1` (as the vendors' docs and SDKs write it) is tolerated too."""
    root = base_url.rstrip("/")
    return root[: -len(api_root)] if root.endswith(api_root) else root


class HttpProvider(Provider):
    wire: ClassVar[Wire]

    def __init__(
        self,
        *,
        keys: KeyRing,
        base_url: str,
        limits: ProviderLimits,
        timeout: httpx.Timeout,
        pool: httpx.Limits,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.limits = limits
        self.running_slots = RunningSlots(limits.running_per_model)  # the runner's to use
        self._keys = keys
        self._submits = {
            model: RateLimiter(limits.submits_per_s_per_model) for model in self.models
        }
        self._queries = RateLimiter(limits.queries_per_s)  # status queries and cancels
        # Calls wait their turn here, not inside httpx's pool: its queue is scanned on every
        # release, which costs O(waiters) each time with thousands of tasks in flight.
        self._connections = asyncio.Semaphore(pool.max_connections or 100)
        self._client = httpx.AsyncClient(
            base_url=api_base(base_url, self.wire.API_ROOT),
            timeout=timeout,
            limits=pool,
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls,
        vendor: VendorSettings,
        settings: ProviderSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Self:
        return cls(
            keys=KeyRing(cls.key_env, vendor.api_keys),
            base_url=vendor.base_url,
            limits=ProviderLimits(
                submits_per_s_per_model=vendor.submits_per_s,
                running_per_model=vendor.running_per_model,
                queries_per_s=vendor.queries_per_s,
            ),
            timeout=httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            pool=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,  # no connect churn under load
            ),
            transport=transport,
        )

    @property
    def key_ids(self) -> tuple[str, ...]:
        return self._keys.key_ids

    async def submit(
        self,
        request_id: str,
        model: str,
        parameters: ModelParameters,
        *,
        on_send: Callable[[], None] | None = None,
    ) -> Submitted:
        key_id, key = self._keys.next()
        request = self.wire.build_submit(model, parameters, request_id, key)
        await self._submits[model].acquire()
        response = await self._send(request, on_send)
        task = self.wire.parse_submit(response.status_code, response.headers, response.body)
        log.info(
            "%s task %s created for %s (key %s)",
            self.name,
            task.upstream_task_id,
            request_id,
            key_id,
        )
        return Submitted(task.upstream_task_id, task.upstream_status, key_id)

    async def poll(self, upstream_task_id: str, key_id: str) -> PollResult:
        request = self.wire.build_query(upstream_task_id, self._keys.get(key_id))
        await self._queries.acquire()
        response = await self._send(request)
        return self.wire.parse_poll(response.status_code, response.headers, response.body)

    async def cancel(self, upstream_task_id: str, key_id: str) -> bool:
        if not self.supports_cancel:
            return False
        request = self.wire.build_cancel(upstream_task_id, self._keys.get(key_id))
        if request is None:
            return False
        await self._queries.acquire()
        response = await self._send(request)
        return self.wire.parse_cancel(response.status_code, response.headers, response.body)

    async def _send(
        self, request: HttpRequest, on_send: Callable[[], None] | None = None
    ) -> HttpResponse:
        async with self._connections:
            if on_send is not None:
                on_send()
            return await send(self._client, request, self.wire.VENDOR)

    async def aclose(self) -> None:
        await self._client.aclose()
