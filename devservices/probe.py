"""Readiness probes for the local services, used by devservices/services.sh.

Each probe is a real client round trip, not a port check:

* kafka: an idempotent producer (acks=all) writes one record on the plaintext listener, and a
  SCRAM-SHA-512 login on the SASL listener fetches metadata.
* mongo: ping, then insert, read back and drop a probe collection.

Usage: python devservices/probe.py kafka|mongo [--pid PID] [--timeout SECONDS]
Retries until the round trip succeeds, the timeout passes, or process PID exits.
Exits 0 when ready, 1 otherwise. Settings come from the same environment variables as
services.sh (KAFKA_PORT, KAFKA_SASL_PORT, MONGO_PORT).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

HOST = "127.0.0.1"
PROBE_TOPIC = "__devservices_probe"
SASL_USER = "alice"
SASL_PASSWORD = "alice-secret"


async def probe_kafka() -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    bootstrap = f"{HOST}:{os.environ.get('KAFKA_PORT', '9092')}"
    sasl_bootstrap = f"{HOST}:{os.environ.get('KAFKA_SASL_PORT', '9094')}"

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=5000,
    )
    try:
        await producer.start()
        await producer.send_and_wait(PROBE_TOPIC, b"ping", key=b"probe")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username=SASL_USER,
        sasl_plain_password=SASL_PASSWORD,
        request_timeout_ms=5000,
    )
    try:
        await consumer.start()
        if PROBE_TOPIC not in await consumer.topics():
            raise RuntimeError(f"{PROBE_TOPIC} not visible on the SASL listener")
    finally:
        await consumer.stop()


async def probe_mongo() -> None:
    from pymongo import AsyncMongoClient

    url = f"mongodb://{HOST}:{os.environ.get('MONGO_PORT', '27017')}/"
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000
    )
    try:
        await client.admin.command("ping")
        coll = client["devservices_probe"]["probe"]
        marker = uuid.uuid4().hex
        await coll.insert_one({"_id": marker})
        if await coll.find_one({"_id": marker}) is None:
            raise RuntimeError("inserted probe document not found")
        await client.drop_database("devservices_probe")
    finally:
        await client.close()


PROBES: dict[str, Callable[[], Awaitable[None]]] = {"kafka": probe_kafka, "mongo": probe_mongo}


def alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def wait_ready(name: str, pid: int | None, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    last_error = "not tried"
    while time.monotonic() < deadline:
        if not alive(pid):
            print(f"probe {name}: process {pid} exited", file=sys.stderr)
            return False
        try:
            await asyncio.wait_for(PROBES[name](), timeout=max(1.0, deadline - time.monotonic()))
        except Exception as exc:  # any failure means "not ready yet"
            last_error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.5)
        else:
            return True
    print(f"probe {name}: not ready after {limit_s:.0f}s: {last_error}", file=sys.stderr)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=sorted(PROBES))
    parser.add_argument("--pid", type=int, default=None, help="give up when this process exits")
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args()
    # aiokafka logs every refused connection while the broker starts; the result is what counts.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    ok = asyncio.run(wait_ready(args.service, args.pid, args.timeout))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
