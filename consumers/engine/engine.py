"""The task engine assembled: actors, leases, the submit gate, the outbox and cancels.

The subscribers hand it new tasks (`adopt`) and cancel requests (`cancels`); everything else it
does on its own, from the task store. `stop` is the graceful half of SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping
from pathlib import Path

import httpx

from consumers.engine import actor
from consumers.engine.cancels import CancelDesk
from consumers.engine.clock import Clock
from consumers.engine.context import EngineContext
from consumers.engine.durations import Durations
from consumers.engine.gate import SubmitGate
from consumers.engine.leases import LeaseKeeper
from consumers.engine.outbox import Outbox
from consumers.engine.polling import PollPlanner
from consumers.engine.rates import VendorRates
from consumers.engine.scheduler import Alarm, Scheduler
from consumers.engine.slots import Slots
from consumers.errors import INFRA_ERRORS
from consumers.media.files import sweep_parts
from consumers.media.objects import ObjectSink
from consumers.messaging.publisher import EventPublisher
from consumers.operations.metrics import Metrics
from consumers.settings import Settings
from consumers.storage.base import TaskStore
from consumers.storage.task import Task
from providers.base import ModelParameters, ModelSpec, Provider, ProviderError
from schemas.errors import ErrorInfo
from schemas.status import TaskStatus

log = logging.getLogger("video.engine")


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        store: TaskStore,
        publisher: EventPublisher,
        providers: Mapping[str, Provider],
        metrics: Metrics,
        http: httpx.AsyncClient,
        clock: Clock | None = None,
        objects: ObjectSink | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.owner = settings.instance_id
        self.clock = clock or Clock()
        self.outbox = Outbox(store, publisher, metrics, self.clock, self.owner)
        self.scheduler = Scheduler(self._run, settings.max_in_flight)
        self.leases = LeaseKeeper(
            store, self.scheduler, self.clock, self.owner, settings.lease_ttl_s, metrics
        )
        self.gate = SubmitGate(self.leases.fresh)
        self.ctx = self._context(providers, metrics, http, objects)
        self.leases.renew_slots = self.ctx.slots.renew
        self.cancels = CancelDesk(
            store, self.scheduler, self.clock, owner=self.owner, settings=settings
        )
        metrics.in_flight.set_function(lambda: self.scheduler.held)

    def _context(
        self,
        providers: Mapping[str, Provider],
        metrics: Metrics,
        http: httpx.AsyncClient,
        objects: ObjectSink | None,
    ) -> EngineContext:
        settings, store, clock = self.settings, self.store, self.clock
        rates = VendorRates(store, clock)
        slots = Slots(
            store,
            self.owner,
            self.leases.until,
            clock.now,
            settings.tenant_max_running,
        )
        return EngineContext(
            settings=settings,
            store=store,
            outbox=self.outbox,
            providers=providers,
            metrics=metrics,
            clock=clock,
            http=http,
            durations=Durations(store, _typical_durations(providers)),
            slots=slots,
            rates=rates,
            planners=_planners(providers, rates),
            video_dir=Path(settings.video_dir).resolve(),
            allowed_hosts=settings.allowed_download_hosts(_result_hosts(providers)),
            gate=self.gate,
            leases_fresh=self.leases.fresh,
            downloads=asyncio.Semaphore(settings.max_concurrent_downloads),
            objects=objects,
        )

    @property
    def video_dir(self) -> Path:
        return self.ctx.video_dir

    def preflight(self, spec: ModelSpec, parameters: ModelParameters) -> ErrorInfo | None:
        """Why this configuration cannot submit these parameters, before any paid call."""
        provider = self.ctx.providers.get(spec.provider)
        if provider is None:
            return None  # no key: the task fails at once, naming the variable
        try:
            provider.preflight(spec.name, parameters)
        except ProviderError as exc:
            return exc.to_error()
        return None

    async def extend_leases(self, task_ids: Collection[str]) -> None:
        """Leases of tasks just stored: their insert may have waited out a MongoDB outage, and
        their lease, set before it, must not have run out by the time they land."""
        if task_ids:
            await self.store.renew_leases(self.owner, self.leases.until(), task_ids)

    def adopt(self, task: Task) -> None:
        """Drive a task this instance has just stored (its first step needs no read)."""
        if self.scheduler.adopt(task.id):
            self.outbox.remember(task)

    async def open(self) -> None:
        """Before the subscribers start (intake may adopt tasks at once): align with the
        database's clock, load what was learned, keep leases fresh."""
        try:
            await self.clock.sync(self.store)
            await self.ctx.durations.load()
        except INFRA_ERRORS as exc:
            log.warning("start-up: %r; the clock and durations follow later", exc)
        self.leases.start_renewing()

    async def start(self) -> None:
        """Once events can be published: sweep old temporary files, resume this instance's
        tasks and take over orphans."""
        if not self.leases.renewing:
            await self.open()
        try:
            await sweep_parts(self.video_dir, self._downloading_elsewhere)
        except INFRA_ERRORS as exc:
            log.warning("temporary files not swept: %r", exc)
        self.leases.start()

    async def stop(self, grace_s: float = 30.0) -> None:
        """Refuse new submits and wait for those under way; stop every actor; release the
        leases of tasks whose state is saved (not of those with an unrecorded submit)."""
        self.scheduler.close()
        unresolved = await self.gate.close(grace_s)
        await self.leases.stop()
        await self.scheduler.stop()
        for planner in self.ctx.planners.values():
            await planner.stop()
        await self.ctx.durations.stop()
        await self.outbox.publisher.replies.stop()
        try:
            released = await self.store.release_leases(self.owner, unresolved, self.clock.now())
            log.info("released %d unfinished tasks for any instance to resume", released)
        except INFRA_ERRORS as exc:
            log.warning("leases not released (%r): other instances take over after the TTL", exc)

    async def _run(self, task_id: str, alarm: Alarm) -> None:
        try:
            await actor.run(self.ctx, task_id, alarm)
        finally:
            await self.ctx.slots.release(task_id)
            self.outbox.forget(task_id)

    async def _downloading_elsewhere(self, task_ids: Collection[str]) -> set[str]:
        now = self.clock.now()
        return {
            t.id
            for t in await self.store.get_many(task_ids)
            if t.status is TaskStatus.DOWNLOADING
            and t.lease_owner not in (None, self.owner)
            and t.lease_until is not None
            and t.lease_until > now
        }


def _typical_durations(providers: Mapping[str, Provider]) -> dict[str, float]:
    return {
        name: spec.typical_duration_s
        for provider in providers.values()
        for name, spec in provider.models.items()
    }


def _planners(providers: Mapping[str, Provider], rates: VendorRates) -> dict[str, PollPlanner]:
    """One query budget per provider, shared by all instances (0 queries/s: no budget)."""
    planners = {}
    for name, provider in providers.items():
        acquire = rates.queries(name, provider.limits.queries_per_s)
        if acquire is not None:
            planners[name] = PollPlanner(acquire)
    return planners


def _result_hosts(providers: Mapping[str, Provider]) -> tuple[str, ...]:
    hosts: tuple[str, ...] = ()
    for provider in providers.values():
        hosts += provider.result_host_suffixes
    return hosts
