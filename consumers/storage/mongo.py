"""The MongoDB task store (pymongo's async client): the source of truth for every task.

Each write that moves a task is one update guarded by the writer's lease and the task's
`sequence`, so two instances can never both move the same task. Status events go into the task
document in the same update (a transactional outbox). Only single-document atomic updates are
used, which the development server (mongo-java-server) has too.

Guarded writes made together (moves and submit records, of any tasks) go out in one unordered
bulk write (`Batched`): each carries a `write_id` of its own, so when not all guards matched, one
read of those ids says which landed. The moved task is the one given with the changes applied
(what the guard proves the document became), not a document read back.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from consumers.storage.base import PendingCancel
from consumers.storage.batched import Batched
from consumers.storage.task import OutboxEntry, Task
from schemas.status import TERMINAL

Document = dict[str, Any]

DUPLICATE_KEY = 11000
_TERMINAL = [str(s) for s in TERMINAL]
TURN_ATTEMPTS = 20


class MongoTaskStore:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self._client = client
        self._db = client[database]
        self.tasks: AsyncCollection[Document] = self._db["tasks"]
        self.cancels: AsyncCollection[Document] = self._db["pending_cancels"]
        self.learned: AsyncCollection[Document] = self._db["learned"]
        self.limits: AsyncCollection[Document] = self._db["vendor_limits"]
        self._slot_keys: set[str] = set()  # slot documents known to exist
        # Every step after a sleep starts with this read and every task ends with this write:
        # calls made together share one round trip.
        self._reads = Batched[str, None, Task](self._get_batch)
        self._finished = Batched[str, int, None](self._mark_finished, merge=max)
        # Guarded writes of tasks, by write_id: True (landed), False (refused) or the write's error.
        self._moves = Batched[str, tuple[str, UpdateOne], bool | BulkWriteError](self._write_moves)

    async def ensure_indexes(self) -> None:
        await self.tasks.create_index([("request_id", ASCENDING)], unique=True)
        # The takeover scan: active tasks whose lease ran out.
        await self.tasks.create_index([("active", ASCENDING), ("lease_until", ASCENDING)])
        await self.tasks.create_index([("lease_owner", ASCENDING), ("active", ASCENDING)])

    async def ping(self) -> bool:
        try:
            await self._client.admin.command("ping")
        except Exception:
            return False
        return True

    async def clock(self) -> datetime:
        # `isMaster` (answered by every MongoDB and by mongo-java-server) carries localTime.
        reply = await self._db.command("isMaster")
        moment: datetime = reply["localTime"]
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    # --- intake -------------------------------------------------------------------------------

    async def insert_many(self, tasks: Sequence[Task]) -> set[int]:
        if not tasks:
            return set()
        try:
            await self.tasks.insert_many([t.to_document() for t in tasks], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return {int(e["index"]) for e in errors}
        except DuplicateKeyError:
            # Some servers report a single-document batch's duplicate this way.
            if len(tasks) == 1:
                return {0}
            raise
        return set()

    async def get(self, task_id: str) -> Task | None:
        return await self._reads(task_id, None)

    async def _get_batch(self, task_ids: Mapping[str, None]) -> dict[str, Task]:
        return {task.id: task for task in await self.get_many(task_ids)}

    async def get_many(self, task_ids: Collection[str]) -> list[Task]:
        cursor = self.tasks.find({"_id": {"$in": list(task_ids)}})
        return [Task.from_document(doc) async for doc in cursor]

    async def find_by_request_id(self, request_id: str) -> Task | None:
        return _task(await self.tasks.find_one({"request_id": request_id}))

    async def submits_unresolved_since(
        self, provider: str, model: str, since: datetime
    ) -> set[str]:
        cursor = self.tasks.find(
            {
                "provider": provider,
                "model": model,
                "upstream_task_id": None,
                "submit_started_at": {"$gte": since},
            },
            {"_id": 1},
        )
        return {doc["_id"] async for doc in cursor}

    async def upstream_ids_since(self, provider: str, model: str, since: datetime) -> set[str]:
        cursor = self.tasks.find(
            {"provider": provider, "model": model, "submitted_at": {"$gte": since}},
            {"upstream_task_id": 1},
        )
        return {doc["upstream_task_id"] async for doc in cursor if doc.get("upstream_task_id")}

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
        guard: Document = {"_id": task.id, "lease_owner": owner, "sequence": task.sequence}
        if even_if_cancelling:
            # Rare (a cancel ending the task), and the document may hold a cancel the given
            # task does not know of: read back what was written.
            return await self._update(guard, changes, events)
        guard["cancel_requested_at"] = None  # matches a missing field too (older documents)
        return await self._write(task, guard, changes, events)

    async def record_submit(
        self,
        task: Task,
        ticket: str | None,
        changes: Mapping[str, Any],
        events: Sequence[OutboxEntry],
    ) -> Task | None:
        guard = {"_id": task.id, "status": "accepted", "submit_ticket": ticket}
        return await self._write(task, guard, changes, events)

    async def drop_ticket(self, task_id: str, ticket: str, restore: Mapping[str, Any]) -> None:
        await self.tasks.update_one(
            {"_id": task_id, "status": "accepted", "submit_ticket": ticket},
            {"$set": dict(restore)},
        )

    async def request_cancel(
        self, task_id: str, reason: str | None, owner: str, lease_until: datetime, at: datetime
    ) -> Task | None:
        lease = {"lease_owner": owner, "lease_until": lease_until}
        # The first cancel's time and reason stay; a later one only takes the lease.
        first = await self._update(
            {"_id": task_id, "status": {"$nin": _TERMINAL}, "cancel_requested_at": None},
            {**lease, "cancel_requested_at": at, "cancel_reason": reason},
            (),
        )
        if first is not None:
            return first
        return await self._update({"_id": task_id, "status": {"$nin": _TERMINAL}}, lease, ())

    async def _write_moves(
        self, moves: Mapping[str, tuple[str, UpdateOne]]
    ) -> Mapping[str, bool | BulkWriteError]:
        """The moves made while the previous batch was in flight, in one round trip."""
        failed: dict[str, BulkWriteError] = {}
        try:
            result = await self.tasks.bulk_write([op for _, op in moves.values()], ordered=False)
            if result.matched_count == len(moves):
                return dict.fromkeys(moves, True)
        except BulkWriteError as exc:
            # One write's own error (the others were applied or refused): only its caller gets it.
            write_ids = list(moves)
            failed = {write_ids[e["index"]]: exc for e in exc.details.get("writeErrors", [])}
            if not failed:
                raise
        # Some guards failed (a takeover, a cancel): the ids left in the documents say which.
        task_ids = [task_id for task_id, _ in moves.values()]
        cursor = self.tasks.find({"_id": {"$in": task_ids}}, {"write_id": 1})
        landed = {doc.get("write_id") async for doc in cursor}
        return {w: failed.get(w) or w in landed for w in moves}

    async def mark_finished(self, task_id: str, published: int) -> None:
        await self._finished(task_id, published)

    async def _mark_finished(self, marks: Mapping[str, int]) -> Mapping[str, None]:
        """The tasks marked while the previous write was in flight, in one round trip."""
        await self.tasks.bulk_write(
            [
                UpdateOne(
                    {"_id": task_id, "published": {"$lte": published}},
                    {"$set": {"published": published, "active": False}},
                )
                for task_id, published in marks.items()
            ],
            ordered=False,
        )
        return {}

    # --- leases -------------------------------------------------------------------------------

    async def renew_leases(
        self, owner: str, until: datetime, task_ids: Collection[str] | None = None
    ) -> int:
        which: Document = {"lease_owner": owner, "active": True}
        if task_ids is not None:
            which["_id"] = {"$in": list(task_ids)}
        result = await self.tasks.update_many(which, {"$set": {"lease_until": until}})
        return result.matched_count

    async def held_task_ids(self, owner: str) -> set[str]:
        cursor = self.tasks.find({"lease_owner": owner, "active": True}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def claim_expired(
        self, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[Task]:
        candidates = self.tasks.find(
            {"active": True, "lease_until": {"$lt": now}}, {"_id": 1, "lease_until": 1}
        ).limit(limit)
        claimed: list[Task] = []
        async for candidate in candidates:
            task = await self._update(
                # Same expiry as seen: if another instance claimed it meanwhile, this misses.
                {"_id": candidate["_id"], "lease_until": candidate["lease_until"]},
                {"lease_owner": owner, "lease_until": until},
                (),
            )
            if task is not None:
                claimed.append(task)
        return claimed

    async def release_leases(self, owner: str, keep: Collection[str], now: datetime) -> int:
        result = await self.tasks.update_many(
            {"lease_owner": owner, "active": True, "_id": {"$nin": list(keep)}},
            {"$set": {"lease_until": now, "lease_owner": None}},
        )
        return result.modified_count

    # --- cancels that came before their request -----------------------------------------------

    async def remember_cancel(self, cancel: PendingCancel) -> None:
        await self.cancels.replace_one(
            {"_id": cancel.request_id},
            {
                "_id": cancel.request_id,
                "reason": cancel.reason,
                "user_id": cancel.user_id,
                "admin": cancel.admin,
                "expires_at": cancel.expires_at,
                "tenant_id": cancel.tenant_id,
                "authenticated": cancel.authenticated,
            },
            upsert=True,
        )

    async def pending_cancels(
        self, request_ids: Collection[str], now: datetime
    ) -> dict[str, PendingCancel]:
        cursor = self.cancels.find({"_id": {"$in": list(request_ids)}, "expires_at": {"$gt": now}})
        return {
            doc["_id"]: PendingCancel(
                request_id=doc["_id"],
                reason=doc.get("reason"),
                user_id=doc.get("user_id"),
                admin=bool(doc.get("admin")),
                expires_at=doc["expires_at"],
                tenant_id=doc.get("tenant_id"),
                authenticated=bool(doc.get("authenticated")),
            )
            async for doc in cursor
        }

    async def forget_cancel(self, request_id: str) -> None:
        await self.cancels.delete_one({"_id": request_id})

    # --- vendor limits shared by all instances ------------------------------------------------

    async def reserve_turn(self, key: str, interval_s: float, now: datetime) -> datetime:
        # Compare-and-set on the next free instant: under contention, one caller wins per round.
        for _ in range(TURN_ATTEMPTS):
            doc = await self.limits.find_one({"_id": key})
            previous = doc["next"] if doc else None
            start = max(previous, now) if previous else now
            following = start + timedelta(seconds=interval_s)
            if doc is None:
                try:
                    await self.limits.insert_one({"_id": key, "next": following})
                except DuplicateKeyError:
                    continue
                return start
            result = await self.limits.update_one(
                {"_id": key, "next": previous}, {"$set": {"next": following}}
            )
            if result.modified_count:
                return start
        return now + timedelta(seconds=interval_s * TURN_ATTEMPTS)  # heavy contention: back off

    async def claim_slot(
        self, key: str, limit: int, holder: str, owner: str, until: datetime, now: datetime
    ) -> bool:
        if key not in self._slot_keys:
            await self._create_slots(key, limit)
        taken = await self.limits.find_one_and_update(
            {
                "_id": {"$in": [f"{key}#{n}" for n in range(limit)]},
                "$or": [{"holder": None}, {"until": {"$lt": now}}, {"holder": holder}],
            },
            {"$set": {"holder": holder, "owner": owner, "until": until}},
        )
        return taken is not None

    async def keep_slot(self, key: str, holder: str, owner: str, until: datetime) -> bool:
        result = await self.limits.update_one(
            {"key": key, "holder": holder}, {"$set": {"owner": owner, "until": until}}
        )
        return result.matched_count > 0

    async def release_slot(self, key: str, holder: str) -> None:
        await self.limits.update_one(
            {"key": key, "holder": holder}, {"$set": {"holder": None, "owner": None}}
        )

    async def renew_slots(self, owner: str, holders: Collection[str], until: datetime) -> None:
        await self.limits.update_many(
            {"owner": owner, "holder": {"$in": list(holders)}}, {"$set": {"until": until}}
        )

    async def _create_slots(self, key: str, limit: int) -> None:
        empty = [
            {"_id": f"{key}#{n}", "key": key, "holder": None, "owner": None, "until": None}
            for n in range(limit)
        ]
        try:
            await self.limits.insert_many(empty, ordered=False)
        except BulkWriteError as exc:  # created by another instance: fine
            if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
                raise
        self._slot_keys.add(key)

    # --- what was learned ---------------------------------------------------------------------

    async def load_durations(self) -> dict[str, float]:
        doc = await self.learned.find_one({"_id": "durations"})
        # A list of pairs: model names hold "." (wanx2.1-...), which field names may not.
        return {p["model"]: float(p["seconds"]) for p in (doc or {}).get("models", [])}

    async def save_durations(self, seconds: Mapping[str, float]) -> None:
        pairs = [{"model": m, "seconds": s} for m, s in sorted(seconds.items())]
        await self.learned.replace_one({"_id": "durations"}, {"models": pairs}, upsert=True)

    # --- helpers ------------------------------------------------------------------------------

    async def _write(
        self,
        task: Task,
        guard: Document,
        changes: Mapping[str, Any],
        events: Sequence[OutboxEntry],
    ) -> Task | None:
        """A guarded write of `task`, batched with the others made meanwhile."""
        write_id = uuid.uuid4().hex
        update = _update_of({**changes, "write_id": write_id}, events)
        outcome = await self._moves(write_id, (task.id, UpdateOne(guard, update)))
        if isinstance(outcome, BulkWriteError):
            raise outcome
        if not outcome:
            return None
        return task.moved(changes, events)

    async def _update(
        self, guard: Document, changes: Mapping[str, Any], events: Sequence[OutboxEntry]
    ) -> Task | None:
        doc = await self.tasks.find_one_and_update(
            guard, _update_of(changes, events), return_document=ReturnDocument.AFTER
        )
        return _task(doc)


def _update_of(changes: Mapping[str, Any], events: Sequence[OutboxEntry]) -> Document:
    update: Document = {"$set": dict(changes)}
    if events:
        update["$push"] = {"events": {"$each": [e.model_dump() for e in events]}}
    return update


def _task(doc: Document | None) -> Task | None:
    return Task.from_document(doc) if doc is not None else None
