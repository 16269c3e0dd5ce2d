"""What only MongoDB's batched writes can do: one write of a bulk failing on its own."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import BulkWriteError

from consumers.storage.mongo import MongoTaskStore
from tests.factories import make_task

pytestmark = pytest.mark.integration


async def test_a_write_error_reaches_only_its_own_caller(mongo_store: MongoTaskStore) -> None:
    tasks = [make_task() for _ in range(6)]
    await mongo_store.insert_many(tasks)
    clash = tasks[0].request_id  # the unique index refuses a second task with it

    async def move(i: int) -> object:
        changes = {"sequence": 2, "upstream_status": f"u{i}"}
        if i == 3:
            changes["request_id"] = clash
        try:
            return await mongo_store.move(tasks[i], "me", changes)
        except BulkWriteError as exc:
            return exc

    results = await asyncio.gather(*(move(i) for i in range(6)))
    assert isinstance(results[3], BulkWriteError)
    for i, task in enumerate(tasks):
        stored = await mongo_store.get(task.id)
        assert stored is not None
        if i == 3:
            assert stored.sequence == 1 and stored.upstream_status is None
        else:
            moved = results[i]
            assert not isinstance(moved, BaseException) and moved is not None
            assert stored.sequence == 2 and stored.upstream_status == f"u{i}"
