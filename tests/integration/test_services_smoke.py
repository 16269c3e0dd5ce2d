"""Smoke tests of the local services: the real Kafka broker and the MongoDB-wire server."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from tests.services import Document, KafkaSasl

pytestmark = pytest.mark.integration

SCRAM = ["SCRAM-SHA-256", "SCRAM-SHA-512"]


@asynccontextmanager
async def producer(**kwargs: Any) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(request_timeout_ms=10000, **kwargs)
    try:
        await p.start()
        yield p
    finally:
        await p.stop()


@asynccontextmanager
async def consumer(*topics: str, **kwargs: Any) -> AsyncIterator[AIOKafkaConsumer]:
    c = AIOKafkaConsumer(*topics, auto_offset_reset="earliest", request_timeout_ms=10000, **kwargs)
    try:
        await c.start()
        yield c
    finally:
        await c.stop()


async def read(c: AIOKafkaConsumer, n: int, timeout: float = 20.0) -> list[tuple[bytes, bytes]]:
    """The next n records as (key, value), failing if they do not come within timeout."""
    out: list[tuple[bytes, bytes]] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            record = await c.getone()
            assert record.key is not None and record.value is not None
            out.append((record.key, record.value))
    return out


# --- Kafka ----------------------------------------------------------------------------------


async def test_kafka_round_trip(kafka_bootstrap: str, topic: str) -> None:
    async with producer(bootstrap_servers=kafka_bootstrap) as p:
        meta = await p.send_and_wait(topic, b'{"hello": 1}', key=b"k1", headers=[("h", b"v")])
    assert meta.topic == topic and meta.offset == 0

    async with consumer(topic, bootstrap_servers=kafka_bootstrap) as c:
        async with asyncio.timeout(20):
            record = await c.getone()
    assert (record.key, record.value) == (b"k1", b'{"hello": 1}')
    assert list(record.headers) == [("h", b"v")]
    assert record.offset == 0


async def test_kafka_group_commit_resumes(
    kafka_bootstrap: str, topic: str, make_topic: Callable[[str], str]
) -> None:
    group = make_topic("group")
    async with producer(bootstrap_servers=kafka_bootstrap) as p:
        for i in range(5):
            await p.send_and_wait(topic, f"v{i}".encode(), key=f"k{i}".encode())

    tp = TopicPartition(topic, 0)
    settings = {
        "bootstrap_servers": kafka_bootstrap,
        "group_id": group,
        "enable_auto_commit": False,
    }
    async with consumer(topic, **settings) as first:
        assert await read(first, 2) == [(b"k0", b"v0"), (b"k1", b"v1")]
        await first.commit()
        assert await first.committed(tp) == 2
        # Read one more without committing: a restart must deliver it again.
        assert await read(first, 1) == [(b"k2", b"v2")]

    async with consumer(topic, **settings) as second:
        assert await read(second, 3) == [(b"k2", b"v2"), (b"k3", b"v3"), (b"k4", b"v4")]


async def test_kafka_idempotent_producer(kafka_bootstrap: str, topic: str) -> None:
    async with producer(
        bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all"
    ) as p:
        futures = [await p.send(topic, f"v{i}".encode(), key=b"same") for i in range(20)]
        offsets = [(await f).offset for f in futures]
    assert offsets == list(range(20))

    async with consumer(topic, bootstrap_servers=kafka_bootstrap) as c:
        records = await read(c, 20)
        assert [v for _, v in records] == [f"v{i}".encode() for i in range(20)]
        # Nothing beyond the 20 records: no duplicates were written.
        assert await c.end_offsets([TopicPartition(topic, 0)]) == {TopicPartition(topic, 0): 20}


@pytest.mark.parametrize("mechanism", [*SCRAM, "PLAIN"])
async def test_kafka_sasl_accepts_valid_user(
    kafka_sasl: KafkaSasl, topic: str, mechanism: str
) -> None:
    async with producer(**kafka_sasl.client_kwargs(mechanism)) as p:
        meta = await p.send_and_wait(topic, b"authenticated", key=b"k")
    async with consumer(topic, **kafka_sasl.client_kwargs(mechanism)) as c:
        assert await read(c, 1) == [(b"k", b"authenticated")]
    assert meta.offset == 0


@pytest.mark.parametrize("mechanism", SCRAM)
async def test_kafka_sasl_refuses_wrong_password(kafka_sasl: KafkaSasl, mechanism: str) -> None:
    host, port = kafka_sasl.bootstrap_servers.rsplit(":", 1)
    with pytest.raises(SaslAuthenticationFailed, match=f"invalid credentials.*{mechanism}"):
        await create_conn(
            host,
            int(port),
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_plain_username=kafka_sasl.username,
            sasl_plain_password="not-the-password",
        )
    # A client library sees the same refusal as a failed bootstrap.
    kwargs = kafka_sasl.client_kwargs(mechanism, sasl_plain_password="not-the-password")
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        async with producer(**kwargs):
            pass


# --- MongoDB wire ---------------------------------------------------------------------------


async def test_mongo_insert_find_upsert_unique(mongo_db: AsyncDatabase[Document]) -> None:
    tasks = mongo_db["tasks"]
    await tasks.create_index([("request_id", ASCENDING)], unique=True)

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    inserted = await tasks.insert_one(
        {"request_id": "r-1", "status": "accepted", "sequence": 1, "meta": {"tenant": "t-1"}}
    )
    found = await tasks.find_one({"meta.tenant": "t-1"})
    assert found is not None and found["_id"] == inserted.inserted_id
    assert found["status"] == "accepted"

    created = await tasks.find_one_and_update(
        {"request_id": "r-2"},
        {"$setOnInsert": {"status": "accepted", "created": now}, "$inc": {"sequence": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert created is not None
    assert (created["status"], created["sequence"], created["created"]) == ("accepted", 1, now)

    again = await tasks.find_one_and_update(
        {"request_id": "r-2"},
        {"$setOnInsert": {"status": "never"}, "$inc": {"sequence": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert again is not None and (again["status"], again["sequence"]) == ("accepted", 2)
    assert await tasks.count_documents({}) == 2

    with pytest.raises(DuplicateKeyError):
        await tasks.insert_one({"request_id": "r-1", "status": "accepted"})
    assert await tasks.count_documents({"request_id": "r-1"}) == 1


async def test_mongo_unordered_insert_many_reports_duplicates(
    mongo_db: AsyncDatabase[Document],
) -> None:
    """An unordered batch with a duplicate inserts the rest and names the failing index."""
    tasks = mongo_db["tasks"]
    await tasks.insert_one({"_id": "b"})
    with pytest.raises(BulkWriteError) as caught:
        await tasks.insert_many([{"_id": "a"}, {"_id": "b"}, {"_id": "c"}], ordered=False)
    errors = caught.value.details["writeErrors"]
    assert [(e["index"], e["code"]) for e in errors] == [(1, 11000)]
    # Count, do not trust details["nInserted"]: mongo-java-server reports the batch size there.
    assert sorted(await tasks.distinct("_id")) == ["a", "b", "c"]


async def test_mongo_single_document_writes_are_atomic(mongo_db: AsyncDatabase[Document]) -> None:
    """Concurrent writes to one document must not lose updates, as in MongoDB.

    FerretDB v1 (tried first) lost them; mongo-java-server runs each write under a lock per
    collection, so this holds without any proxy.
    """
    tasks = mongo_db["tasks"]
    await tasks.insert_one({"_id": "t", "status": "accepted", "n": 0})

    await asyncio.gather(*(tasks.update_one({"_id": "t"}, {"$inc": {"n": 1}}) for _ in range(100)))
    claims = await asyncio.gather(
        *(
            tasks.find_one_and_update(
                {"_id": "t", "status": "accepted"}, {"$set": {"status": "running", "by": i}}
            )
            for i in range(30)
        )
    )
    doc = await tasks.find_one({"_id": "t"})
    assert doc is not None and doc["n"] == 100
    assert sum(1 for c in claims if c is not None) == 1
    assert doc["status"] == "running"
