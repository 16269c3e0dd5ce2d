"""What the lifecycle steps share: the parts of one running engine, in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from consumers.engine.clock import Clock
from consumers.engine.durations import Durations
from consumers.engine.gate import SubmitGate
from consumers.engine.outbox import Outbox
from consumers.engine.polling import PollPlanner
from consumers.engine.rates import VendorRates
from consumers.engine.scheduler import Alarm
from consumers.engine.slots import Slots
from consumers.media.objects import ObjectSink
from consumers.operations.metrics import Metrics
from consumers.settings import Settings
from consumers.storage.base import TaskStore
from providers.base import Provider


@dataclass
class Progress:
    """What an actor keeps in memory between steps; lost on restart, and that is fine."""

    alarm: Alarm = field(default_factory=Alarm)  # rung by a cancel request
    next_at: float = 0.0  # database timestamp of the next step
    attempts: int = 0  # consecutive transient failures of the current step
    due_from: float | None = None  # since when the vendor has been generating, as far as known
    last_poll: float = 0.0
    # A poll waits for its turn in the vendor's query budget between steps, holding no task
    # document: (provider, when the task is due, its deadline), then `granted`.
    poll_turn: tuple[str, float, float] | None = None
    granted: bool = False


@dataclass
class EngineContext:
    settings: Settings
    store: TaskStore
    outbox: Outbox
    providers: Mapping[str, Provider]
    metrics: Metrics
    clock: Clock
    http: httpx.AsyncClient
    video_dir: Path
    allowed_hosts: tuple[str, ...]
    durations: Durations
    slots: Slots
    rates: VendorRates
    planners: Mapping[str, PollPlanner] = field(default_factory=dict)  # per provider
    gate: SubmitGate = field(default_factory=SubmitGate)
    leases_fresh: Callable[[], bool] = lambda: True
    downloads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(32))
    objects: ObjectSink | None = None  # checked videos are uploaded there too, when set

    @property
    def owner(self) -> str:
        return self.outbox.owner

    def seconds_left(self, deadline_ts: float) -> float:
        return max(0.0, deadline_ts - self.clock.timestamp())
