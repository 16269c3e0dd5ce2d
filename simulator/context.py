"""Everything one simulator instance shares between its routes, built once per app."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from simulator.config import SimConfig
from simulator.faults import FaultBook
from simulator.limits import RateWindow, Slots
from simulator.state import Clock, Task, TaskStore
from simulator.stats import Stats


@dataclass
class Sim:
    config: SimConfig
    clock: Clock = field(default_factory=Clock)
    tasks: TaskStore = field(default_factory=TaskStore)
    faults: FaultBook = field(default_factory=FaultBook)
    rates: RateWindow = field(default_factory=RateWindow)
    slots: Slots = field(default_factory=Slots)
    # Signs result URLs, so a client cannot stretch `Expires` by editing the URL.
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    stats: Stats = field(init=False)

    def __post_init__(self) -> None:
        self.initial_config = self.config
        self.stats = Stats(self.clock.now())

    def reset(self) -> None:
        """Forget tasks, rules, counters and clock offset; restore the start-up config."""
        self.config = self.initial_config
        self.clock.offset = 0.0
        self.tasks.clear()
        self.faults.clear()
        self.rates.clear()
        self.slots.clear()
        self.stats.clear(self.clock.now())

    def admit(self, vendor: str, key_fp: str, model: str) -> tuple[float, float] | None:
        """(start, end) of a new task's run, or None when a rate or running limit refuses it."""
        now = self.clock.now()
        if not self.rates.allow(("submit", vendor, key_fp, model), now, self.config.submit_qps):
            return None
        timing = self.config.timing_for(model)
        start = now + timing.queued_s
        limit = self.config.running_limit
        bucket = (vendor, key_fp, model)
        if limit is not None and self.config.running_limit_mode == "reject":
            if self.slots.busy(bucket, now) >= limit:
                return None
        elif limit is not None:
            start = self.slots.first_free(bucket, start, limit)
        return start, start + timing.running_s

    def add_task(self, task: Task) -> None:
        self.tasks.add(task)
        bucket = (task.vendor, task.key_fp, task.model)
        self.slots.take(bucket, task.ended, task.task_id, self.clock.now())

    def cancel(self, task: Task) -> None:
        task.canceled_at = self.clock.now()
        self.slots.release((task.vendor, task.key_fp, task.model), task.task_id)
