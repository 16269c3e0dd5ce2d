"""The task store's interface: what the engine needs from a database, and nothing more.

Two implementations pass one shared test suite (`tests/storage/`): `MongoTaskStore` (the real
one) and `MemoryTaskStore` (for the in-process test tier). Every write that moves a task is one
atomic, guarded, single-document update; no transactions, TTL indexes or change streams are used.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from consumers.storage.task import OutboxEntry, Task


@dataclass(frozen=True, slots=True)
class PendingCancel:
    """A cancel that arrived before its request (requests and cancels travel separately)."""

    request_id: str
    reason: str | None
    user_id: str | None  # who asked, from the verified token (None without authentication)
    admin: bool
    expires_at: datetime
    tenant_id: str | None = None
    authenticated: bool = False  # False: AUTH_MODE=none, anyone may cancel


class TaskStore(Protocol):
    async def ensure_indexes(self) -> None: ...

    async def ping(self) -> bool: ...

    async def clock(self) -> datetime:
        """The database's current time: leases are compared against it, never against the
        instance's own clock (instances' clocks may differ)."""
        ...

    # --- intake -------------------------------------------------------------------------------

    async def insert_many(self, tasks: Sequence[Task]) -> set[int]:
        """Insert new tasks; returns the positions whose `request_id` was already stored."""
        ...

    async def get(self, task_id: str) -> Task | None: ...

    async def get_many(self, task_ids: Collection[str]) -> list[Task]: ...

    async def find_by_request_id(self, request_id: str) -> Task | None: ...

    async def submits_unresolved_since(
        self, provider: str, model: str, since: datetime
    ) -> set[str]:
        """The ids of `model`'s tasks with a submit started since `since` and no upstream task
        stored (on its way, lost, or given up as undecidable): a vendor task listed since then
        may be theirs."""
        ...

    async def upstream_ids_since(self, provider: str, model: str, since: datetime) -> set[str]:
        """The upstream task ids of `model`'s tasks submitted since `since` (they belong to
        known tasks: never adopted when a lost submit is looked up)."""
        ...

    # --- moving a task ------------------------------------------------------------------------

    async def move(
        self,
        task: Task,
        owner: str,
        changes: Mapping[str, Any],
        events: Sequence[OutboxEntry] = (),
        *,
        even_if_cancelling: bool = False,
    ) -> Task | None:
        """Apply `changes` (and append `events`) if `owner` still holds `task` at its sequence
        and, unless `even_if_cancelling`, no cancel was requested. None when the task moved on
        without us (taken over, cancel requested, or finished).

        Returns `task` with the changes applied, which the guard proves the document became
        (apart from lease renewals); with `even_if_cancelling`, the document read back."""
        ...

    async def record_submit(
        self,
        task: Task,
        ticket: str | None,
        changes: Mapping[str, Any],
        events: Sequence[OutboxEntry],
    ) -> Task | None:
        """Record the vendor's answer to the submit `ticket`, whoever holds the task now, as long
        as the task is still waiting for that very submit. None otherwise.

        Like `move`, returns `task` with the changes applied, not the document read back: what
        others changed meanwhile without the guard (a takeover, a cancel request) shows at the
        next read, and the next guarded move fails on it."""
        ...

    async def drop_ticket(self, task_id: str, ticket: str, restore: Mapping[str, Any]) -> None:
        """Submit `ticket` created nothing upstream: if the task still waits for it, set the
        submit fields back to `restore` (whoever holds the task now)."""
        ...

    async def request_cancel(
        self, task_id: str, reason: str | None, owner: str, lease_until: datetime, at: datetime
    ) -> Task | None:
        """Mark an unfinished task as to be cancelled and take its lease (so the cancel is
        carried out at once, here). None when it is already terminal or unknown."""
        ...

    async def mark_finished(self, task_id: str, published: int) -> None:
        """All `published` events of a terminal task reached Kafka: it leaves every scan."""
        ...

    # --- leases -------------------------------------------------------------------------------

    async def renew_leases(
        self, owner: str, until: datetime, task_ids: Collection[str] | None = None
    ) -> int:
        """Extend `owner`'s leases (only those of `task_ids`, when given)."""
        ...

    async def held_task_ids(self, owner: str) -> set[str]: ...

    async def claim_expired(
        self, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[Task]:
        """Atomically take up to `limit` active tasks whose lease ran out before `now`."""
        ...

    async def release_leases(self, owner: str, keep: Collection[str], now: datetime) -> int:
        """Let other instances take this instance's tasks at once, except those in `keep`."""
        ...

    # --- cancels that came before their request -----------------------------------------------

    async def remember_cancel(self, cancel: PendingCancel) -> None: ...

    async def pending_cancels(
        self, request_ids: Collection[str], now: datetime
    ) -> dict[str, PendingCancel]: ...

    async def forget_cancel(self, request_id: str) -> None: ...

    # --- vendor limits shared by all instances ------------------------------------------------

    async def reserve_turn(self, key: str, interval_s: float, now: datetime) -> datetime:
        """Reserve the next call of the rate `key` (one call every `interval_s`, shared by every
        instance): returns when the caller may make it (`now` or later)."""
        ...

    async def claim_slot(
        self, key: str, limit: int, holder: str, owner: str, until: datetime, now: datetime
    ) -> bool:
        """Take one of the `limit` slots of `key` for `holder` (a task) if one is free or its
        holder's lease ran out; True also when `holder` holds one already."""
        ...

    async def keep_slot(self, key: str, holder: str, owner: str, until: datetime) -> bool:
        """Make `owner` the keeper of the slot `holder` holds (after a takeover)."""
        ...

    async def release_slot(self, key: str, holder: str) -> None: ...

    async def renew_slots(self, owner: str, holders: Collection[str], until: datetime) -> None:
        """Extend the slots `owner` keeps for `holders` (those it no longer drives expire)."""
        ...

    # --- what was learned ---------------------------------------------------------------------

    async def load_durations(self) -> dict[str, float]:
        """Each model's learned generation time, in seconds."""
        ...

    async def save_durations(self, seconds: Mapping[str, float]) -> None: ...
