"""Records the Kafka client itself cannot read, dead-lettered instead of stalling a partition.

aiokafka decodes each header *name* as UTF-8 while it reads a fetched batch. A record whose
header name is not UTF-8 (any client but the Java one can write one) makes every `getmany`
raise (`UnicodeDecodeError` from the compiled reader, `CorruptRecordException` from the pure
Python one), so its partition would never move again, and FastStream's supervisor restarts the
failed consume loop in a hot loop; records that call had already drained from other partitions
would be dropped with their positions advanced.

`guard(subscriber)` wraps the batch subscriber's fetch: on that error it rewinds every assigned
partition to its last commit (nothing of the failed fetch is lost), then reads each partition one
record at a time, so the records before the unreadable one are handed on as usual and the
unreadable one is found by its offset. It goes on in the same batch as an `UnreadableRecord`
(its value and headers unknown), which the intake dead-letters with `invalid_request`, and the
partition continues after it. `guard_single` does the same for the cancel subscriber, which
logs and skips such a record.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CorruptRecordException

log = logging.getLogger("video.requests")

STEP_TIMEOUT_MS = 500  # a partition that has nothing fetched within this is left for later
# What reading a record that cannot be parsed raises (UnicodeDecodeError is a ValueError).
UNREADABLE = (CorruptRecordException, ValueError)


@dataclass
class UnreadableRecord(ConsumerRecord[bytes, bytes]):
    """The place of a record the client could not read, and why."""

    reason: str = ""


def unreadable(record: Any) -> str | None:
    """Why `record` could not be read, or None for an ordinary record."""
    return record.reason if isinstance(record, UnreadableRecord) else None


def guard(subscriber: Any, limit: int) -> None:
    """Make the batch subscriber's fetch survive unreadable records (see the module's doc)."""
    fetch: Callable[[AIOKafkaConsumer], Awaitable[tuple[ConsumerRecord[Any, Any], ...]]]
    fetch = subscriber.get_msg

    async def get_msg(consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord[Any, Any], ...]:
        try:
            return await fetch(consumer)
        except UNREADABLE as exc:
            log.error("a fetched record cannot be read (%r); looking for it", exc)
            return await salvage(consumer, limit)

    subscriber.get_msg = get_msg


def guard_single(subscriber: Any) -> None:
    """`guard` for a subscriber of single records (the cancel subscriber)."""
    fetch: Callable[[AIOKafkaConsumer], Awaitable[ConsumerRecord[Any, Any] | None]]
    fetch = subscriber.get_msg

    async def get_msg(consumer: AIOKafkaConsumer) -> ConsumerRecord[Any, Any] | None:
        try:
            return await fetch(consumer)
        except UNREADABLE as exc:
            log.error("a fetched record cannot be read (%r); looking for it", exc)
            found = await salvage(consumer, 1)
            return found[0] if found else None

    subscriber.get_msg = get_msg


async def salvage(consumer: AIOKafkaConsumer, limit: int) -> tuple[ConsumerRecord[Any, Any], ...]:
    """Up to `limit` records read one at a time, each unreadable one as an `UnreadableRecord`
    (its partition then continues after it)."""
    partitions = sorted(consumer.assignment())
    for tp in partitions:  # the failed fetch may have moved some partitions on: rewind them
        committed = await consumer.committed(tp)
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
    records: list[ConsumerRecord[Any, Any]] = []
    for tp in partitions:
        while len(records) < limit:
            try:
                fetched = await consumer.getmany(tp, timeout_ms=STEP_TIMEOUT_MS, max_records=1)
            except UNREADABLE as exc:
                offset = await consumer.position(tp)
                log.error(
                    "record %s[%d]@%d cannot be read: %r", tp.topic, tp.partition, offset, exc
                )
                records.append(
                    UnreadableRecord(
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=offset,
                        timestamp=0,
                        timestamp_type=0,
                        key=None,
                        value=None,
                        checksum=None,
                        serialized_key_size=-1,
                        serialized_value_size=-1,
                        headers=[],
                        reason=repr(exc),
                    )
                )
                consumer.seek(tp, offset + 1)
                break
            if not fetched.get(tp):
                break
            records.extend(fetched[tp])
    return tuple(records)
