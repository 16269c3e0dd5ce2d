"""An in-memory task store for the in-process test tier (dramatiq's stub-broker idea).

It passes the same store suite as `MongoTaskStore`, so the engine's tests on it say something
about production. Its clock is injectable: tests move time instead of sleeping.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from consumers.storage.base import PendingCancel
from consumers.storage.task import OutboxEntry, Task


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MemoryTaskStore:
    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock
        self._tasks: dict[str, dict[str, Any]] = {}
        self._by_request: dict[str, str] = {}
        self._cancels: dict[str, PendingCancel] = {}
        self._durations: dict[str, float] = {}
        self._turns: dict[str, datetime] = {}
        self._slots: dict[str, dict[str, tuple[str, datetime]]] = {}  # key -> holder -> keeper

    async def ensure_indexes(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def clock(self) -> datetime:
        return self._clock()

    # --- intake -------------------------------------------------------------------------------

    async def insert_many(self, tasks: Sequence[Task]) -> set[int]:
        duplicates: set[int] = set()
        for position, task in enumerate(tasks):
            if task.request_id in self._by_request or task.id in self._tasks:
                duplicates.add(position)
                continue
            self._tasks[task.id] = task.to_document()
            self._by_request[task.request_id] = task.id
        return duplicates

    async def get(self, task_id: str) -> Task | None:
        return self._load(task_id)

    async def get_many(self, task_ids: Collection[str]) -> list[Task]:
        return [t for t in map(self._load, task_ids) if t is not None]

    async def find_by_request_id(self, request_id: str) -> Task | None:
        task_id = self._by_request.get(request_id)
        return self._load(task_id) if task_id else None

    async def submits_unresolved_since(
        self, provider: str, model: str, since: datetime
    ) -> set[str]:
        return {
            d["_id"]
            for d in self._tasks.values()
            if d["provider"] == provider
            and d["model"] == model
            and d.get("upstream_task_id") is None
            and d.get("submit_started_at") is not None
            and d["submit_started_at"] >= since
        }

    async def upstream_ids_since(self, provider: str, model: str, since: datetime) -> set[str]:
        return {
            d["upstream_task_id"]
            for d in self._tasks.values()
            if d["provider"] == provider
            and d["model"] == model
            and d.get("upstream_task_id")
            and d.get("submitted_at") is not None
            and d["submitted_at"] >= since
        }

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
        doc = self._tasks.get(task.id)
        if doc is None or doc["lease_owner"] != owner or doc["sequence"] != task.sequence:
            return None
        if not even_if_cancelling and doc.get("cancel_requested_at") is not None:
            return None
        applied = self._apply(doc, changes, events)
        # As MongoTaskStore: the given task with the changes (the cancel step's move reads back).
        return applied if even_if_cancelling else task.moved(changes, events)

    async def record_submit(
        self,
        task: Task,
        ticket: str | None,
        changes: Mapping[str, Any],
        events: Sequence[OutboxEntry],
    ) -> Task | None:
        doc = self._tasks.get(task.id)
        if doc is None or doc["status"] != "accepted" or doc.get("submit_ticket") != ticket:
            return None
        self._apply(doc, changes, events)
        return task.moved(changes, events)

    async def drop_ticket(self, task_id: str, ticket: str, restore: Mapping[str, Any]) -> None:
        doc = self._tasks.get(task_id)
        if doc is not None and doc["status"] == "accepted" and doc.get("submit_ticket") == ticket:
            doc.update(copy.deepcopy(dict(restore)))

    async def request_cancel(
        self, task_id: str, reason: str | None, owner: str, lease_until: datetime, at: datetime
    ) -> Task | None:
        doc = self._tasks.get(task_id)
        if doc is None or doc["status"] in ("completed", "failed", "cancelled"):
            return None
        changes: dict[str, Any] = {"lease_owner": owner, "lease_until": lease_until}
        if doc.get("cancel_requested_at") is None:
            changes.update(cancel_requested_at=at, cancel_reason=reason)
        return self._apply(doc, changes, ())

    async def mark_finished(self, task_id: str, published: int) -> None:
        doc = self._tasks.get(task_id)
        if doc is not None and doc["published"] <= published:
            doc.update(published=published, active=False)

    # --- leases -------------------------------------------------------------------------------

    async def renew_leases(
        self, owner: str, until: datetime, task_ids: Collection[str] | None = None
    ) -> int:
        held = [d for d in self._held(owner) if task_ids is None or d["_id"] in task_ids]
        for doc in held:
            doc["lease_until"] = until
        return len(held)

    async def held_task_ids(self, owner: str) -> set[str]:
        return {doc["_id"] for doc in self._held(owner)}

    async def claim_expired(
        self, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[Task]:
        claimed: list[Task] = []
        for doc in self._tasks.values():
            if len(claimed) >= limit:
                break
            if doc["active"] and (doc["lease_until"] is None or doc["lease_until"] < now):
                claimed.append(self._apply(doc, {"lease_owner": owner, "lease_until": until}, ()))
        return claimed

    async def release_leases(self, owner: str, keep: Collection[str], now: datetime) -> int:
        released = [doc for doc in self._held(owner) if doc["_id"] not in keep]
        for doc in released:
            doc.update(lease_owner=None, lease_until=now)
        return len(released)

    # --- cancels that came before their request -----------------------------------------------

    async def remember_cancel(self, cancel: PendingCancel) -> None:
        self._cancels[cancel.request_id] = cancel

    async def pending_cancels(
        self, request_ids: Collection[str], now: datetime
    ) -> dict[str, PendingCancel]:
        found = {r: self._cancels[r] for r in request_ids if r in self._cancels}
        return {r: c for r, c in found.items() if c.expires_at > now}

    async def forget_cancel(self, request_id: str) -> None:
        self._cancels.pop(request_id, None)

    # --- vendor limits shared by all instances ------------------------------------------------

    async def reserve_turn(self, key: str, interval_s: float, now: datetime) -> datetime:
        start = max(self._turns.get(key, now), now)
        self._turns[key] = start + timedelta(seconds=interval_s)
        return start

    async def claim_slot(
        self, key: str, limit: int, holder: str, owner: str, until: datetime, now: datetime
    ) -> bool:
        slots = self._slots.setdefault(key, {})
        if holder not in slots:
            expired = [h for h, (_, end) in slots.items() if end < now]
            for gone in expired:
                del slots[gone]
            if len(slots) >= limit:
                return False
        slots[holder] = (owner, until)
        return True

    async def keep_slot(self, key: str, holder: str, owner: str, until: datetime) -> bool:
        slots = self._slots.get(key, {})
        if holder not in slots:
            return False
        slots[holder] = (owner, until)
        return True

    async def release_slot(self, key: str, holder: str) -> None:
        self._slots.get(key, {}).pop(holder, None)

    async def renew_slots(self, owner: str, holders: Collection[str], until: datetime) -> None:
        for slots in self._slots.values():
            for holder, (keeper, _) in slots.items():
                if keeper == owner and holder in holders:
                    slots[holder] = (owner, until)

    # --- what was learned ---------------------------------------------------------------------

    async def load_durations(self) -> dict[str, float]:
        return dict(self._durations)

    async def save_durations(self, seconds: Mapping[str, float]) -> None:
        self._durations.update(seconds)

    # --- helpers ------------------------------------------------------------------------------

    def _load(self, task_id: str) -> Task | None:
        doc = self._tasks.get(task_id)
        return Task.from_document(copy.deepcopy(doc)) if doc is not None else None

    def _held(self, owner: str) -> list[dict[str, Any]]:
        return [d for d in self._tasks.values() if d["lease_owner"] == owner and d["active"]]

    def _apply(
        self, doc: dict[str, Any], changes: Mapping[str, Any], events: Sequence[OutboxEntry]
    ) -> Task:
        doc.update(copy.deepcopy(dict(changes)))
        doc["events"] = doc.get("events", []) + [e.model_dump() for e in events]
        return Task.from_document(copy.deepcopy(doc))
