"""The task store: MongoDB is the source of truth for every task in flight.

Each write that moves a task is one atomic document update guarded by the writer's lease and
the task's `sequence` (its version), so two instances can never both move the same task. Status
events are written into the task document in the same update (a transactional outbox): an event
that may not have reached Kafka before a crash is found there and published again.

Only single-document atomic updates are used: no transactions, TTL indexes or change streams,
which the MongoDB-wire server used in development (mongo-java-server) does not have either.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from schemas.status import TERMINAL

Task = dict[str, Any]

DUPLICATE_KEY = 11000
_TERMINAL = [str(s) for s in TERMINAL]


def now() -> datetime:
    return datetime.now(UTC)


class TaskStore:
    def __init__(self, client: AsyncMongoClient[Task], database: str) -> None:
        self._client = client
        self.tasks: AsyncCollection[Task] = client[database]["tasks"]

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

    # --- intake -------------------------------------------------------------------------------

    async def insert_many(self, tasks: list[Task]) -> set[int]:
        """Insert new tasks; returns the positions whose `request_id` was already stored."""
        if not tasks:
            return set()
        try:
            await self.tasks.insert_many(tasks, ordered=False)
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

    async def find_by_request_id(self, request_id: str) -> Task | None:
        return await self.tasks.find_one({"request_id": request_id})

    async def get(self, task_id: str) -> Task | None:
        return await self.tasks.find_one({"_id": task_id})

    # --- moving a task ------------------------------------------------------------------------

    async def update(
        self,
        task: Mapping[str, Any],
        owner: str,
        changes: Mapping[str, Any],
        events: Iterable[Mapping[str, Any]] = (),
    ) -> Task | None:
        """Apply `changes` (and append `events`) if `owner` still holds the task at its version.

        Returns the updated document, or None when the task moved on without us (another
        instance took it over, or a cancel finished it).
        """
        update: dict[str, Any] = {"$set": dict(changes)}
        new_events = list(events)
        if new_events:
            update["$push"] = {"events": {"$each": new_events}}
        return await self.tasks.find_one_and_update(
            {"_id": task["_id"], "lease_owner": owner, "sequence": task["sequence"]},
            update,
            return_document=ReturnDocument.AFTER,
        )

    async def take_for_cancel(
        self, task: Mapping[str, Any], owner: str, lease_until: datetime
    ) -> Task | None:
        """Take a task from whoever holds it, to finish it as cancelled (guarded by version)."""
        return await self.tasks.find_one_and_update(
            {"_id": task["_id"], "sequence": task["sequence"], "status": {"$nin": _TERMINAL}},
            {"$set": {"lease_owner": owner, "lease_until": lease_until}},
            return_document=ReturnDocument.AFTER,
        )

    async def mark_finished(self, task_id: str, count: int) -> None:
        """Record that all `count` events of a finished task reached Kafka: it leaves the scans."""
        await self.tasks.update_one(
            {"_id": task_id, "published": {"$lte": count}},
            {"$set": {"published": count, "active": False}},
        )

    # --- leases -------------------------------------------------------------------------------

    async def renew_leases(self, owner: str, until: datetime) -> int:
        result = await self.tasks.update_many(
            {"lease_owner": owner, "active": True}, {"$set": {"lease_until": until}}
        )
        return result.matched_count

    async def held_task_ids(self, owner: str) -> set[str]:
        cursor = self.tasks.find({"lease_owner": owner, "active": True}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def claim_expired(self, owner: str, until: datetime, limit: int) -> list[Task]:
        """Atomically take up to `limit` active tasks whose lease has run out."""
        moment = now()
        candidates = self.tasks.find(
            {"active": True, "lease_until": {"$lt": moment}}, {"_id": 1, "lease_until": 1}
        ).limit(limit)
        claimed: list[Task] = []
        async for candidate in candidates:
            doc = await self.tasks.find_one_and_update(
                # Same expiry as seen: if another instance claimed it meanwhile, this misses.
                {"_id": candidate["_id"], "lease_until": candidate["lease_until"]},
                {"$set": {"lease_owner": owner, "lease_until": until}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                claimed.append(doc)
        return claimed

    async def release_leases(self, owner: str) -> int:
        """Let other instances take this instance's tasks at once (graceful shutdown)."""
        expired = now() - timedelta(seconds=1)
        result = await self.tasks.update_many(
            {"lease_owner": owner, "active": True},
            {"$set": {"lease_until": expired, "lease_owner": None}},
        )
        return result.modified_count
