"""Publishing events to Kafka: keyed by `request_id`, with best-effort `reply_topic` copies.

The standard topics are the truth: their sends are awaited until Kafka has them (acks=all), and
a failure raises, so the task's outbox publishes them again later. A copy to a producer's
`reply_topic` must never hold a task up (the topic may not exist, or not be writable): copies go
through one small queue per reply topic, in order, each send bounded in time; a copy that fails
is logged, counted and skipped. A reply topic's queue and worker go away once idle, and copies
may take their own way to Kafka (`reply_send`): the application's sends them without the
per-topic metrics, so that producers naming many reply topics cannot grow the metrics.

Every send has headers of its own besides the value: a task's events, and their copies, carry
its W3C trace context (`traceparent`, `tracestate`; see consumers/operations/tracing.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from consumers.storage.task import OutboxEntry

log = logging.getLogger("video.publisher")

# Sends a value to a topic, with a key and headers, and returns once the send is queued;
# awaiting the result confirms it.
Send = Callable[[bytes, str, bytes | None, Mapping[str, str]], Awaitable[Awaitable[Any]]]
Queued = tuple[bytes, bytes, Mapping[str, str]]  # a reply copy: key, value, headers

STATUS = "status"
COMPLETED = "completed"
REPLY_SEND_TIMEOUT_S = 10.0
REPLY_QUEUE_LIMIT = 10_000
REPLY_IDLE_S = 60.0  # a reply topic's worker ends after this long without a copy to send


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class ReplyCopies:
    """Best-effort copies to reply topics: in order per topic, never blocking the caller."""

    def __init__(
        self, send: Send, on_failure: Callable[[], None], idle_s: float = REPLY_IDLE_S
    ) -> None:
        self._send = send
        self._on_failure = on_failure
        self._idle_s = idle_s
        self._queues: dict[str, asyncio.Queue[Queued]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    @property
    def topics(self) -> int:
        """Reply topics with a worker now."""
        return len(self._queues)

    def copy(
        self, topic: str, key: bytes, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        queue = self._queues.get(topic)
        if queue is None:
            queue = self._queues[topic] = asyncio.Queue(REPLY_QUEUE_LIMIT)
            worker = asyncio.create_task(self._drain(topic, queue))
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)
        try:
            queue.put_nowait((key, value, headers or {}))
        except asyncio.QueueFull:
            self._failed(topic, key, "its queue is full")

    async def _drain(self, topic: str, queue: asyncio.Queue[Queued]) -> None:
        while True:
            try:
                # Not asyncio.wait_for: in Python 3.11 it can swallow the cancel of `stop()`.
                async with asyncio.timeout(self._idle_s):
                    key, value, headers = await queue.get()
            except TimeoutError:
                if queue.empty():  # nothing can be added between this check and the removal
                    del self._queues[topic]
                    return
                continue
            try:
                async with asyncio.timeout(REPLY_SEND_TIMEOUT_S):
                    await (await self._send(value, topic, key, headers))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(topic, key, repr(exc))

    def _failed(self, topic: str, key: bytes, why: str) -> None:
        self._on_failure()
        log.warning(
            "copy of an event of %s to reply topic %s skipped: %s",
            key.decode(errors="replace"),
            topic,
            why,
        )

    async def stop(self) -> None:
        workers = list(self._workers)
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


class EventPublisher:
    def __init__(
        self,
        send: Send,
        topics: Mapping[str, str],
        dead_letter_topic: str,
        on_reply_failure: Callable[[], None] = lambda: None,
        reply_send: Send | None = None,
    ) -> None:
        self._send = send
        self._topics = dict(topics)  # outbox kind -> topic
        self._dlq = dead_letter_topic
        self.replies = ReplyCopies(reply_send or send, on_reply_failure)

    async def publish_entries(
        self,
        request_id: str,
        entries: Sequence[OutboxEntry],
        reply_topic: str | None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Publish outbox entries in order, each with `headers`, and wait until Kafka has them
        all.

        The sends are issued back to back and confirmed together: one key means one partition,
        and the idempotent producer keeps their order.
        """
        key = request_id.encode()
        headers = headers or {}
        pending = []
        for entry in entries:
            value = encode(entry.body)
            pending.append(await self._send(value, self._topics[entry.kind], key, headers))
            if reply_topic:
                self.replies.copy(reply_topic, key, value, headers)
        await asyncio.gather(*pending)

    async def publish_status(
        self, body: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
    ) -> Awaitable[Any]:
        key = body["request_id"].encode()
        return await self._send(encode(body), self._topics[STATUS], key, headers or {})

    async def publish_dead_letter(
        self,
        body: Mapping[str, Any],
        key: bytes | None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Awaitable[Any]:
        return await self._send(encode(body), self._dlq, key, headers or {})
