"""The ceiling on this machine: a raw aiokafka relay that moves the same events as the service.

    python -m benchmarks.passthrough --requests TOPIC --count N --status T --completed T

It reads N request records and, for each, produces what the service produces for a completed
task (five status events and one completed event of the same size, keyed by request_id, acks=all
and idempotent like the service), committing offsets after each batch. It prints one JSON line:
seconds from the first record read to the last event confirmed, and CPU seconds of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

STATUSES = ("accepted", "submitted", "running", "downloading", "completed")
PADDING = "x" * 420  # a status event of the service is about 600 bytes


async def relay(bootstrap: str, requests: str, count: int, status: str, completed: str) -> None:
    consumer = AIOKafkaConsumer(
        requests,
        bootstrap_servers=bootstrap,
        group_id=f"passthrough-{os.getpid()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await consumer.start()
    await producer.start()
    seen, started = 0, 0.0
    try:
        while seen < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            pending = []
            for records in batches.values():
                for record in records:
                    started = started or time.monotonic()
                    request = json.loads(record.value)
                    pending += await produce(producer, request["request_id"], status, completed)
                    seen += 1
            await asyncio.gather(*pending)
            if batches:
                await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()
    times = os.times()
    print(json.dumps({"seconds": time.monotonic() - started, "cpu_s": times.user + times.system}))


async def produce(
    producer: AIOKafkaProducer, request_id: str, status: str, completed: str
) -> list[asyncio.Future[object]]:
    key = request_id.encode()
    sends = []
    for sequence, name in enumerate(STATUSES, 1):
        body = {"request_id": request_id, "sequence": sequence, "status": name, "pad": PADDING}
        sends.append(await producer.send(status, json.dumps(body).encode(), key=key))
    body = {"request_id": request_id, "event_type": "completed", "pad": PADDING * 2}
    sends.append(await producer.send(completed, json.dumps(body).encode(), key=key))
    return sends


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.passthrough")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--requests", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--status", required=True)
    parser.add_argument("--completed", required=True)
    args = parser.parse_args()
    asyncio.run(relay(args.bootstrap, args.requests, args.count, args.status, args.completed))


if __name__ == "__main__":
    main()
