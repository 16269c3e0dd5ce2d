"""Everything one simulator instance shares between its routes, built once per app."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from simulator.config import SimConfig
from simulator.faults import FaultBook
from simulator.limits import RateWindow, Slots
from simulator.state import Clock, Task, TaskStore, fingerprint
from simulator.stats import Stats
from simulator.uploads import Uploads


@dataclass
class Sim:
    config: SimConfig
    clock: Clock = field(default_factory=Clock)
    tasks: TaskStore = field(default_factory=TaskStore)
    faults: FaultBook = field(default_factory=FaultBook)
    rates: RateWindow = field(default_factory=RateWindow)
    slots: Slots = field(default_factory=Slots)
    uploads: Uploads = field(default_factory=Uploads)  # DashScope's oss:// files
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
        self.uploads.clear()
        self.stats.clear(self.clock.now())

    def account_of(self, key: str) -> str:
        """The account a key belongs to (`accounts` config); a key listed nowhere is its own."""
        for account, keys in self.config.accounts.items():
            if key in keys:
                return account
        return f"key-{fingerprint(key)}"

    def admit(self, vendor: str, account: str, model: str) -> tuple[float, float] | None:
        """(start, end) of a new task's run, or None when a rate or running limit refuses it.
        Limits are the account's, shared by all its keys (§1.9: "shared by main account and
        RAM sub-accounts"; §2.7: per account tier)."""
        now = self.clock.now()
        if not self.rates.allow(("submit", vendor, account, model), now, self.config.submit_qps):
            return None
        timing = self.config.timing_for(model)
        start = now + timing.queued_s
        limit = self.config.running_limit
        bucket = (vendor, account, model)
        if limit is not None and self.config.running_limit_mode == "reject":
            if self.slots.busy(bucket, now) >= limit:
                return None
        elif limit is not None:
            start = self.slots.first_free(bucket, start, limit)
        return start, start + timing.running_s

    def allow_query(self, vendor: str, account: str) -> bool:
        """The query rate limit of an account (§1.9: 20 QPS per account)."""
        return self.rates.allow(("query", vendor, account), self.clock.now(), self.config.query_qps)

    def add_task(self, task: Task) -> None:
        self.tasks.add(task)
        bucket = (task.vendor, task.account, task.model)
        self.slots.take(bucket, task.ended, task.task_id, self.clock.now())

    def visible(self, task: Task | None, account: str) -> Task | None:
        """The task if the caller's account may see it: any key of the owning account may query
        it, other accounts may not (§1.6: "any task of the same Aliyun main account")."""
        return task if task is not None and task.account == account else None

    def cancel(self, task: Task) -> None:
        task.canceled_at = self.clock.now()
        self.slots.release((task.vendor, task.account, task.model), task.task_id)
