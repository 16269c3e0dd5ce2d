"""Filters on `_id` plus other fields select exactly the matching documents.

The dev server's launcher (devservices/mongo/MongoServerMain.java, `IdLookup`) answers a filter
such as `{"_id": x, "lease_owner": "me"}` or `{"_id": {"$in": [...]}, "status": ...}` by looking
`_id` up in its index and matching the whole filter against only those documents, where
mongo-java-server alone scans the collection. These tests check the answers, not the speed:
every filter is also run as `{"$and": [filter]}`, which that server still answers by a scan,
and both must agree with the expected documents, for reads, counts and every kind of write.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from bson import Int64, ObjectId
from bson.tz_util import utc
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from tests.services import Document

pytestmark = pytest.mark.integration

OID = ObjectId("650000000000000000000001")
WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=utc)  # the tzinfo the tz_aware client decodes to

DOCS: list[Document] = [
    {"_id": "t1", "status": "accepted", "lease_owner": "me", "sequence": 3, "cancel": None},
    {"_id": "t2", "status": "accepted", "lease_owner": "other", "sequence": 3},  # no "cancel"
    {"_id": "t3", "status": "running", "lease_owner": "me", "sequence": 4, "cancel": WHEN},
    {"_id": 1, "status": "accepted"},
    {"_id": "1", "status": "running"},  # the string, not the number 1
    {"_id": True, "status": "accepted"},  # not the number 1 either
    {"_id": Int64(7), "status": "running"},
    {"_id": 2.5, "status": "accepted"},
    {"_id": OID, "status": "accepted"},
    {"_id": WHEN, "status": "running"},
    {"_id": {"a": 1}, "status": "accepted"},
]

# (filter, the _ids it selects). Ids that are absent, or present but failing another field,
# select nothing; number types compare by value (1 == 1.0, 7 == Int64(7)), other types never
# equal a number.
CASES: list[tuple[Document, list[Any]]] = [
    ({"_id": "t1", "lease_owner": "me", "sequence": 3, "cancel": None}, ["t1"]),
    ({"_id": "t1", "lease_owner": "me", "sequence": 4}, []),
    ({"_id": "t2", "lease_owner": "me"}, []),
    ({"_id": "t2", "status": "accepted", "cancel": None}, ["t2"]),  # missing field == null
    ({"_id": "t3", "cancel": None}, []),
    ({"_id": "t3", "cancel": WHEN, "sequence": {"$gte": 4}}, ["t3"]),
    ({"_id": "absent", "status": "accepted"}, []),
    ({"_id": 1.0, "status": "accepted"}, [1]),
    ({"_id": 1, "status": "running"}, []),
    ({"_id": "1", "status": "running"}, ["1"]),
    ({"_id": True, "status": "accepted"}, [True]),
    ({"_id": 7, "status": "running"}, [Int64(7)]),
    ({"_id": 2.5, "status": "accepted"}, [2.5]),
    ({"_id": OID, "status": "accepted"}, [OID]),
    ({"_id": WHEN, "status": "running"}, [WHEN]),
    ({"_id": {"a": 1}, "status": "accepted"}, [{"a": 1}]),
    ({"_id": {"$in": ["t1", "t2", "t3", "absent", 1, "1"]}, "status": "accepted"}, ["t1", "t2", 1]),
    ({"_id": {"$in": ["t2", "t1", 1]}, "status": "accepted"}, ["t1", "t2", 1]),
    ({"_id": {"$in": ["t1", "t1", "t3"]}, "lease_owner": "me"}, ["t1", "t3"]),
    ({"_id": {"$in": [1.0, 7.0, OID]}, "status": "running"}, [Int64(7)]),
    ({"_id": {"$in": ["absent"]}, "status": "accepted"}, []),
    ({"_id": {"$in": []}, "status": "accepted"}, []),
    # Conditions the lookup leaves to the scan must still work.
    ({"_id": {"$in": ["t1", re.compile("^t")]}, "status": "running"}, ["t3"]),
    ({"_id": {"$ne": "t1"}, "lease_owner": "me"}, ["t3"]),
    ({"_id": None, "status": "accepted"}, []),
    ({"_id": "t1", "$or": [{"sequence": 4}, {"lease_owner": "me"}]}, ["t1"]),
]


def ids(docs: list[Document]) -> list[str]:
    """Comparable, type-exact form of a list of _ids (1, 1.0, True and "1" all differ)."""
    return sorted(repr(d["_id"]) for d in docs)


def expected_ids(expected: list[Any]) -> list[str]:
    return sorted(repr(i) for i in expected)


async def stored(tasks: AsyncCollection[Document], flt: Document) -> list[Document]:
    return await tasks.find(flt).to_list()


@pytest.fixture
async def tasks(mongo_db: AsyncDatabase[Document]) -> AsyncCollection[Document]:
    coll = mongo_db["tasks"]
    await coll.insert_many([dict(d) for d in DOCS])
    return coll


@pytest.mark.parametrize(("flt", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
async def test_reads_select_exactly_the_matching_documents(
    tasks: AsyncCollection[Document], flt: Document, expected: list[Any]
) -> None:
    want = expected_ids(expected)
    assert ids(await stored(tasks, flt)) == want
    assert ids(await stored(tasks, {"$and": [flt]})) == want  # the scan's answer
    projected = await tasks.find(flt, {"status": 1}).to_list()
    assert ids(projected) == want
    assert all(set(d) == {"_id", "status"} for d in projected)
    assert await tasks.count_documents(flt) == len(expected)
    # The first match is the scan's first match (what find_one and the *_one writes take).
    first = await tasks.find_one(flt)
    scanned_first = await tasks.find_one({"$and": [flt]})
    assert (first or {}).get("_id", "none") == (scanned_first or {}).get("_id", "none")


@pytest.mark.parametrize(("flt", "expected"), CASES, ids=[repr(c[0]) for c in CASES])
async def test_writes_change_exactly_the_matching_documents(
    tasks: AsyncCollection[Document], flt: Document, expected: list[Any]
) -> None:
    want = expected_ids(expected)
    scanned_first = await tasks.find_one({"$and": [flt]})

    one = await tasks.update_one(flt, {"$inc": {"hits": 1}})
    assert one.matched_count == min(1, len(expected)) and one.upserted_id is None
    hit = await stored(tasks, {"hits": 1})
    assert ids(hit) == ids([scanned_first] if scanned_first else [])

    many = await tasks.update_many(flt, {"$inc": {"hits": 10}})
    assert many.matched_count == len(expected)
    assert ids(await stored(tasks, {"hits": {"$gte": 10}})) == want

    before = await tasks.find_one_and_update(
        flt, {"$set": {"claimed": True}}, return_document=ReturnDocument.BEFORE
    )
    assert (before or {}).get("_id", "none") == (scanned_first or {}).get("_id", "none")
    assert ids(await stored(tasks, {"claimed": True})) == ids([before] if before else [])

    deleted = await tasks.delete_many(flt)
    assert deleted.deleted_count == len(expected)
    assert ids(await stored(tasks, {})) == sorted(
        set(expected_ids([d["_id"] for d in DOCS])) - set(want)
    )
    assert await tasks.count_documents(flt) == 0


async def test_upsert_with_absent_id_and_guard_inserts_once(
    tasks: AsyncCollection[Document],
) -> None:
    flt = {"_id": "new", "status": "accepted"}
    first = await tasks.update_one(flt, {"$set": {"n": 1}}, upsert=True)
    assert first.upserted_id == "new"
    second = await tasks.update_one(flt, {"$inc": {"n": 1}}, upsert=True)
    assert (second.matched_count, second.upserted_id) == (1, None)
    assert await tasks.find_one({"_id": "new"}) == {"_id": "new", "status": "accepted", "n": 2}
    gone = await tasks.delete_one({"_id": "new", "n": 1})
    assert gone.deleted_count == 0
