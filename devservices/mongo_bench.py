"""Atomicity, speed and server-clock features of MongoDB-wire servers, side by side.

Used to compare mongo-java-server's in-memory and H2 (on-disk) backends as started by
devservices/services.sh (see devservices/README.md); works against any MongoDB URL.

Usage: python devservices/mongo_bench.py NAME=URL [NAME=URL ...]
  e.g. memory=mongodb://127.0.0.1:27118 h2=mongodb://127.0.0.1:27117

Each server gets a fresh database (dropped at the end). Prints what it measured; asserts nothing.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Doc = dict[str, Any]
PAYLOAD = "x" * 400  # ~0.5 kB documents, like the service's tasks


def task_doc(i: int) -> Doc:
    return {
        "_id": i,
        "request_id": f"req-{i}",
        "status": "accepted",
        "due": datetime.now(UTC),
        "n": 0,
        "payload": PAYLOAD,
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def atomicity(db: AsyncDatabase[Doc]) -> dict[str, str]:
    coll = db["atomic"]
    await coll.insert_one({"_id": "counter", "n": 0})
    await asyncio.gather(
        *(coll.update_one({"_id": "counter"}, {"$inc": {"n": 1}}) for _ in range(100))
    )
    counter = await coll.find_one({"_id": "counter"})
    assert counter is not None

    await coll.insert_one({"_id": "job", "state": "free", "owner": None})

    async def claim(worker: int) -> bool:
        won = await coll.find_one_and_update(
            {"_id": "job", "state": "free"},
            {"$set": {"state": "claimed", "owner": worker}},
            return_document=ReturnDocument.AFTER,
        )
        return won is not None

    winners = sum(await asyncio.gather(*(claim(w) for w in range(30))))
    return {
        "100 concurrent $inc -> n": str(counter["n"]),
        "30 concurrent claims -> winners": str(winners),
    }


async def timed(fn: Callable[[], Awaitable[object]], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


def latencies(lat: list[float]) -> str:
    lat = sorted(lat)
    return f"median {ms(statistics.median(lat))}, p95 {ms(lat[int(len(lat) * 0.95)])}"


async def guarded_writes(tasks: AsyncCollection[Doc]) -> dict[str, str]:
    """The store's guarded writes and reads: `_id` plus other fields, on 10,000 stored documents.

    mongo-java-server uses an index only for a filter whose keys are exactly the index's, so
    without the launcher's `_id` lookup each of these scans the collection.
    """
    res: dict[str, str] = {}
    ids = [(i * 7919) % 10_000 for i in range(500)]
    for label, status in (("matching", "accepted"), ("not matching", "done")):
        lat, matched = [], 0
        for i in ids:
            t0 = time.perf_counter()
            r = await tasks.update_one({"_id": i, "status": status}, {"$inc": {"n": 1}})
            lat.append(time.perf_counter() - t0)
            matched += r.matched_count
        key = f"update_one {{_id, status}} guard {label} ({matched}/{len(ids)} matched)"
        res[key] = latencies(lat)
    t0 = time.perf_counter()
    bulk = await tasks.bulk_write(
        [UpdateOne({"_id": i, "status": "accepted"}, {"$inc": {"n": 1}}) for i in ids],
        ordered=False,
    )
    res[f"bulk_write of {len(ids)} such update_one ({bulk.matched_count} matched)"] = (
        f"{time.perf_counter() - t0:.3f} s"
    )
    lat, found = [], 0
    for start in range(0, len(ids), 50):
        chunk = ids[start : start + 50]
        t0 = time.perf_counter()
        docs = await tasks.find(
            {"_id": {"$in": chunk}, "status": "accepted"}, {"status": 1, "n": 1}
        ).to_list()
        lat.append(time.perf_counter() - t0)
        found += len(docs)
    res[f"find {{_id: {{$in: 50 ids}}, status}} + projection ({found} found)"] = latencies(lat)
    return res


async def speed(db: AsyncDatabase[Doc]) -> dict[str, str]:
    res: dict[str, str] = {}
    tasks = db["tasks"]
    await tasks.create_index("request_id", unique=True)
    t0 = time.perf_counter()
    for start in range(0, 10_000, 1_000):
        await tasks.insert_many([task_doc(i) for i in range(start, start + 1_000)])
    res["insert_many 10 x 1,000 (fills 10,000)"] = f"{time.perf_counter() - t0:.2f} s"
    res |= await guarded_writes(tasks)

    async def fou(i: int) -> Doc | None:
        return await tasks.find_one_and_update(
            {"_id": i},
            {"$set": {"status": "running", "due": datetime.now(UTC)}, "$inc": {"n": 1}},
            return_document=ReturnDocument.AFTER,
        )

    ids = [(i * 7919) % 10_000 for i in range(1_000)]
    lat = []
    for i in ids:
        t0 = time.perf_counter()
        await fou(i)
        lat.append(time.perf_counter() - t0)
    lat.sort()
    res["find_one_and_update by _id, 10,000 docs: median"] = ms(statistics.median(lat))
    res["  p95 / max"] = f"{ms(lat[int(len(lat) * 0.95)])} / {ms(lat[-1])}"
    t0 = time.perf_counter()
    sem = asyncio.Semaphore(50)

    async def limited(i: int) -> None:
        async with sem:
            await fou(i)

    await asyncio.gather(*(limited(i) for i in ids * 2))
    res["  throughput, 50 in flight"] = f"{2 * len(ids) / (time.perf_counter() - t0):,.0f} ops/s"

    batch = db["batch"]
    counter = iter(range(10**9))

    async def insert_500() -> None:
        base = next(counter) * 500
        await batch.insert_many(
            [task_doc(base + i) | {"request_id": uuid.uuid4().hex} for i in range(500)]
        )

    times = await timed(insert_500, 5)
    res["insert_many of 500 docs: median of 5"] = ms(statistics.median(times))

    many = db["many"]
    await many.insert_many([task_doc(i) for i in range(1_000)])
    times = await timed(
        lambda: many.update_many({}, {"$inc": {"n": 1}, "$set": {"status": "done"}}), 5
    )
    res["update_many over 1,000 docs: median of 5"] = ms(statistics.median(times))
    return res


async def attempt(what: Callable[[], Awaitable[str]]) -> str:
    try:
        return await what()
    except Exception as exc:  # report, don't stop
        return f"ERROR {type(exc).__name__}: {str(exc)[:160]}"


async def clock_features(client: AsyncMongoClient[Doc], db: AsyncDatabase[Doc]) -> dict[str, str]:
    coll: AsyncCollection[Doc] = db["clock"]
    now = datetime.now(UTC)
    await coll.insert_many(
        [
            {"_id": "expired", "lease_until": now - timedelta(minutes=5)},
            {"_id": "live", "lease_until": now + timedelta(minutes=5)},
        ]
    )
    res: dict[str, str] = {}

    async def current_date() -> str:
        r = await coll.update_one(
            {"_id": "live"}, {"$currentDate": {"t": True, "ts": {"$type": "timestamp"}}}
        )
        d = await coll.find_one({"_id": "live"})
        assert d is not None
        return f"modified={r.modified_count}; t={d.get('t')!r}; ts={d.get('ts')!r}"

    async def pipeline_now() -> str:
        r = await coll.update_one({"_id": "expired"}, [{"$set": {"t": "$$NOW"}}])
        d = await coll.find_one({"_id": "expired"})
        assert d is not None
        return f"modified={r.modified_count}; t={d.get('t')!r}"

    async def expr_now() -> str:
        found = await coll.find({"$expr": {"$lt": ["$lease_until", "$$NOW"]}}).to_list()
        return f"matched {[d['_id'] for d in found]} (expected ['expired'])"

    async def claim_by_server_clock() -> str:
        # The lease pattern: take an expired lease, set the new one from the server's clock.
        d = await coll.find_one_and_update(
            {"$expr": {"$lt": ["$lease_until", "$$NOW"]}},
            [{"$set": {"lease_until": {"$add": ["$$NOW", 30_000]}}}],
            return_document=ReturnDocument.AFTER,
        )
        return f"returned {d!r}"

    async def claim_with_current_date() -> str:
        # The same with a classic update: the lease start comes from the server's clock
        # ($currentDate), its expiry is computed in the filter. (A document without leased_at
        # would match too: null < any date.)
        leases = db["leases"]
        await leases.insert_many(
            [
                {"_id": "old", "leased_at": now - timedelta(minutes=5)},
                {"_id": "fresh", "leased_at": now},
            ]
        )
        d = await leases.find_one_and_update(
            {"$expr": {"$lt": [{"$add": ["$leased_at", 30_000]}, "$$NOW"]}},
            {"$currentDate": {"leased_at": True}},
            return_document=ReturnDocument.AFTER,
        )
        again = await leases.find_one_and_update(
            {"$expr": {"$lt": [{"$add": ["$leased_at", 30_000]}, "$$NOW"]}},
            {"$currentDate": {"leased_at": True}},
        )
        return f"claimed {d!r}; second claim {again!r} (expected None)"

    async def command_time(name: str) -> str:
        reply = await client.admin.command(name, codec_options=client.codec_options)
        return f"localTime={reply.get('localTime')!r}" if "localTime" in reply else "no localTime"

    res["update $currentDate"] = await attempt(current_date)
    res["update_one pipeline [{$set: {t: '$$NOW'}}]"] = await attempt(pipeline_now)
    res["find {$expr: {$lt: ['$lease_until', '$$NOW']}}"] = await attempt(expr_now)
    res["find_one_and_update $expr filter + pipeline $$NOW+30s"] = await attempt(
        claim_by_server_clock
    )
    res["find_one_and_update $expr {$add: [leased_at, 30s]} < $$NOW, $currentDate"] = await attempt(
        claim_with_current_date
    )
    for name in ("hello", "isMaster", "serverStatus"):
        res[f"command {name}"] = await attempt(functools.partial(command_time, name))
    res["client clock at start of checks"] = repr(now)
    return res


async def run(name: str, url: str) -> dict[str, dict[str, str]]:
    client: AsyncMongoClient[Doc] = AsyncMongoClient(url, tz_aware=True)
    db_name = f"bench_{uuid.uuid4().hex[:8]}"
    db = client[db_name]
    try:
        return {
            "atomicity": await atomicity(db),
            "speed": await speed(db),
            "clock": await clock_features(client, db),
        }
    finally:
        await client.drop_database(db_name)
        await client.close()


async def main(targets: list[tuple[str, str]]) -> None:
    results = {name: await run(name, url) for name, url in targets}
    for section in ("atomicity", "speed", "clock"):
        print(f"\n## {section}")
        for name, _ in targets:
            print(f"[{name}]")
            for key, value in results[name][section].items():
                print(f"  {key:55} {value}")


if __name__ == "__main__":
    pairs = [arg.split("=", 1) for arg in sys.argv[1:]]
    if not pairs or any(len(p) != 2 for p in pairs):
        sys.exit(__doc__)
    asyncio.run(main([(p[0], p[1]) for p in pairs]))
