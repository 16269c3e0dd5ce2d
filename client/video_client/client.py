"""The async client: send a request, follow its events, get its video, cancel it.

```python
async with VideoClient("localhost:9092", token=my_jwt) as client:
    task = await client.submit("wanx2.1-t2v-turbo", {"prompt": "a kitten on the grass"})
    async for event in task.events():
        print(event.sequence, event.status, event.upstream_status)
    completed = await task.result(timeout=900)
    print(completed.result.videos[0].local_path)
```

How events reach a handle. The client reads the partitions of the topics its tasks' events come
on, without a consumer group (nothing is committed, no other consumer is disturbed): the
shared `video.status` and `video.completed`, or the producer's own `reply_topic`, plus the
dead-letter topic. It starts reading at their ends before the first request goes out, so no
event of a task it sends is missed, and hands each event to the handles of its `request_id`
(the Kafka key). A handle keeps each event once (by `event_id`) and in `sequence` order.
`attach(request_id)` also reads the task's past events: from one partition of each topic (the
key's), from `since` (default: 25 hours ago) to where live reading took over.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from video_client.config import KafkaConfig, Topics
from video_client.errors import (
    InvalidRequest,
    RequestRejected,
    TaskCancelled,
    TaskFailed,
    TopicNotFound,
    VideoClientError,
)
from video_client.models import get_model
from video_client.schemas import (
    CancelEvent,
    CompletedEvent,
    DeadLetterEvent,
    ErrorCode,
    ErrorInfo,
    RequestEvent,
    StatusEvent,
    TaskStatus,
)

log = logging.getLogger("video_client")

Token = str | Callable[[], str | Awaitable[str]]

MESSAGE_ID_HEADER = "x-video-client-message-id"
DEFAULT_LOOKBACK = timedelta(hours=25)  # a task lives at most 24 h (the contract's timeout_s)
REJECTION_GRACE_S = 3.0  # after a dead letter, how long a failed status may still come
COMPLETED_GRACE_S = 5.0  # after a `completed` status, how long before the event is looked up


class VideoClient:
    """A producer's connection to the video service. Use it as an async context manager, or
    call `start()` and `close()`.

    `kafka`: a bootstrap address or a `KafkaConfig` (security included). `token`: a JWT, or a
    function (sync or async) returning one, sent as `authorization: Bearer ...` with every
    request and cancel. `reply_topic`: follow tasks on this topic (it must match the service's
    `REPLY_TOPIC_PATTERN`) instead of the shared status and completed topics. `dead_letters`:
    also read the dead-letter topic, to learn at once that a request was refused (without it, a
    request refused as `unauthorized` gives no answer at all).
    """

    def __init__(
        self,
        kafka: KafkaConfig | str | None = None,
        *,
        topics: Topics | None = None,
        token: Token | None = None,
        reply_topic: str | None = None,
        dead_letters: bool = True,
        topic_wait_s: float = 30.0,
    ) -> None:
        if isinstance(kafka, str):
            kafka = KafkaConfig(bootstrap_servers=kafka)
        self.kafka: KafkaConfig = kafka or KafkaConfig()
        self.topics = topics or Topics()
        self.reply_topic = reply_topic
        self.dead_letters = dead_letters
        self._token = token
        self._topic_wait_s = topic_wait_s
        self._producer: AIOKafkaProducer | None = None
        self._router: _Router | None = None
        self._history: set[asyncio.Task[None]] = set()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> VideoClient:
        """Configured like the service (`KAFKA_*`, `TOPIC_*`), plus `VIDEO_CLIENT_TOKEN` and
        `VIDEO_CLIENT_REPLY_TOPIC`; keyword arguments win."""
        import os

        env = os.environ if env is None else env
        kwargs.setdefault("topics", Topics.from_env(env))
        kwargs.setdefault("token", env.get("VIDEO_CLIENT_TOKEN") or None)
        kwargs.setdefault("reply_topic", env.get("VIDEO_CLIENT_REPLY_TOPIC") or None)
        return cls(KafkaConfig.from_env(env), **kwargs)

    # --- life --------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._router is not None:
            return
        producer = AIOKafkaProducer(
            **self.kafka.client_kwargs(), acks="all", enable_idempotence=True
        )
        await producer.start()
        router = _Router(self.kafka, self.event_topics, self._topic_wait_s)
        try:
            await router.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer, self._router = producer, router

    async def close(self) -> None:
        for task in list(self._history):
            task.cancel()
        await asyncio.gather(*self._history, return_exceptions=True)
        if self._router is not None:
            await self._router.stop()
        if self._producer is not None:
            await self._producer.stop()
        self._router = self._producer = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def event_topics(self) -> list[str]:
        """The topics this client reads."""
        topics = (
            [self.reply_topic] if self.reply_topic else [self.topics.status, self.topics.completed]
        )
        return [*topics, self.topics.dlq] if self.dead_letters else topics

    # --- requests ----------------------------------------------------------------------------

    def build_request(
        self,
        model: str,
        parameters: Mapping[str, Any],
        *,
        request_id: str | None = None,
        provider: str | None = None,
        user_id: str | None = None,
        tenant_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timeout_s: int | None = None,
        validate: bool = True,
    ) -> dict[str, Any]:
        """The request's JSON body, checked as the service would check it (raises
        `UnknownModel`, `InvalidParameters` or `InvalidRequest`): for producers that send with
        their own Kafka producer. `parameters` go out exactly as given."""
        body: dict[str, Any] = {
            "request_id": request_id or str(uuid.uuid4()),
            "model": model,
            "parameters": dict(parameters),
        }
        optional = {
            "provider": provider,
            "user_id": user_id,
            "tenant_id": tenant_id,
            "metadata": dict(metadata) if metadata is not None else None,
            "reply_topic": self.reply_topic,
            "timeout_s": timeout_s,
        }
        body.update({name: value for name, value in optional.items() if value is not None})
        if validate:
            spec = get_model(model)
            if provider is not None and provider != spec.provider:
                raise InvalidRequest(
                    f"provider: {model} is served by {spec.provider!r}, not {provider!r}"
                )
            spec.validate(parameters)
            try:
                RequestEvent.model_validate(body)
            except ValidationError as exc:
                raise InvalidRequest(_describe(exc)) from None
        return body

    async def submit(
        self,
        model: str,
        parameters: Mapping[str, Any],
        *,
        request_id: str | None = None,
        provider: str | None = None,
        user_id: str | None = None,
        tenant_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timeout_s: int | None = None,
        validate: bool = True,
    ) -> TaskHandle:
        """Check the request, send it, and return its handle (once Kafka has the request).

        Nothing is sent when the model is unknown or a parameter is invalid: `UnknownModel`,
        `InvalidParameters` (naming the parameter and what is allowed) or `InvalidRequest` is
        raised instead. `request_id` is the idempotency key (default: a new UUID): sending the
        same one again never starts a second generation."""
        body = self.build_request(
            model,
            parameters,
            request_id=request_id,
            provider=provider,
            user_id=user_id,
            tenant_id=tenant_id,
            metadata=metadata,
            timeout_s=timeout_s,
            validate=validate,
        )
        message_id = uuid.uuid4().hex
        handle = TaskHandle(self, body["request_id"], model=model, message_ids={message_id})
        self._running_router().register(handle)
        try:
            await self._send(self.topics.requests, body["request_id"], body, message_id)
        except BaseException:
            handle.close()
            raise
        return handle

    async def attach(
        self, request_id: str, *, since: datetime | timedelta | None = DEFAULT_LOOKBACK
    ) -> TaskHandle:
        """A handle on a task sent before (by anyone): its past events since `since` (a time,
        or how long ago; None: all the topics keep), then its new ones."""
        router = self._running_router()
        handle = TaskHandle(self, request_id, history=True)
        ends = router.register(handle)
        reader = asyncio.create_task(self._read_history(handle, since, ends))
        self._history.add(reader)
        reader.add_done_callback(self._history.discard)
        return handle

    async def cancel(self, request_id: str, reason: str | None = None) -> None:
        """Send a cancel for `request_id` (returns once Kafka has it). The task ends
        `cancelled` unless it has ended already, or the token may not cancel it (the service
        then only logs it)."""
        body = CancelEvent(request_id=request_id, reason=reason).model_dump(exclude_none=True)
        await self._send(self.topics.cancel, request_id, body, uuid.uuid4().hex)

    async def stream(
        self, *, since: datetime | timedelta | None = None
    ) -> AsyncIterator[StatusEvent]:
        """Every task's status events, live (from now, or from `since`), as they arrive: for
        dashboards and `video-service tail`. Not de-duplicated; order is per task only."""
        topic = self.reply_topic or self.topics.status
        consumer = AIOKafkaConsumer(
            **self.kafka.client_kwargs(), group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            partitions = await _partitions(self.kafka, [topic], self._topic_wait_s)
            tps = partitions[topic]
            consumer.assign(tps)
            await _seek(consumer, tps, since, None)
            while True:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        event = _parse_status(record.value)
                        if event is not None:
                            yield event
        finally:
            await consumer.stop()

    # --- internals ---------------------------------------------------------------------------

    def _running_router(self) -> _Router:
        if self._router is None:
            raise VideoClientError("the client is not started: use `async with VideoClient(...)`")
        return self._router

    async def _headers(self, message_id: str) -> list[tuple[str, bytes]]:
        headers = [("content-type", b"application/json"), (MESSAGE_ID_HEADER, message_id.encode())]
        token = self._token() if callable(self._token) else self._token
        if isinstance(token, Awaitable):
            token = await token
        if token:
            headers.append(("authorization", f"Bearer {token}".encode()))
        return headers

    async def _send(self, topic: str, key: str, body: Mapping[str, Any], message_id: str) -> None:
        if self._producer is None:
            raise VideoClientError("the client is not started: use `async with VideoClient(...)`")
        value = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = await self._headers(message_id)
        await self._producer.send_and_wait(topic, value, key=key.encode(), headers=headers)

    async def _read_history(
        self,
        handle: TaskHandle,
        since: datetime | timedelta | None,
        ends: Mapping[TopicPartition, int],
        topics: Sequence[str] | None = None,
    ) -> None:
        """Read the task's events before `ends` (where live reading took over) into `handle`."""
        try:
            records = await self._history_records(handle.request_id, since, ends, topics)
        except asyncio.CancelledError:
            handle._history_failed(VideoClientError("the client was closed"))
            raise
        except Exception as exc:
            handle._history_failed(exc)
            return
        handle._history_loaded(records)

    async def _history_records(
        self,
        request_id: str,
        since: datetime | timedelta | None,
        ends: Mapping[TopicPartition, int],
        topics: Sequence[str] | None,
    ) -> list[tuple[str, bytes | None, Sequence[tuple[str, bytes]]]]:
        key = request_id.encode()
        router = self._running_router()
        wanted = [t for t in (topics or self.event_topics) if t != self.topics.dlq]
        tps = [_partition_of(key, router.partitions[t]) for t in wanted]
        tps = [tp for tp in tps if ends.get(tp, 0) > 0]
        found: list[tuple[str, bytes | None, Sequence[tuple[str, bytes]]]] = []
        if not tps:
            return found
        consumer = AIOKafkaConsumer(
            **self.kafka.client_kwargs(), group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            await _seek(consumer, tps, since, ends)
            remaining = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000)
                for tp, batch_records in batch.items():
                    for record in batch_records:
                        if record.offset >= ends[tp]:
                            break
                        if record.key == key:
                            found.append((tp.topic, record.value, record.headers))
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
        finally:
            await consumer.stop()
        return found

    async def _fetch_completed(self, handle: TaskHandle, around: str) -> None:
        """The completed event of a task whose `completed` status came without it (a duplicate
        request only re-publishes the status): read it from the completed topic's past."""
        topic = self.reply_topic or self.topics.completed
        router = self._running_router()
        tp = _partition_of(handle.request_id.encode(), router.partitions[topic])
        since = _parse_time(around) - timedelta(minutes=10)
        records = await self._history_records(
            handle.request_id, since, {tp: router.next_offset[tp]}, [topic]
        )
        for topic_name, value, headers in records:
            handle._receive(topic_name, value, headers)


class TaskHandle:
    """One task, followed from its events. Made by `VideoClient.submit` or `.attach`."""

    def __init__(
        self,
        client: VideoClient,
        request_id: str,
        *,
        model: str | None = None,
        message_ids: set[str] | None = None,
        history: bool = False,
    ) -> None:
        self.request_id = request_id
        self.model = model
        self.client = client
        self.started = time.monotonic()
        self._message_ids = message_ids or set()
        self._events: list[StatusEvent] = []
        self._ids: set[str] = set()
        self._task_id: str | None = None
        self._life = 0  # a request_id refused once may be used again by a corrected request
        self._completed: CompletedEvent | None = None
        self._rejection: DeadLetterEvent | None = None
        self._rejected_at = 0.0
        self._failure: BaseException | None = None
        self._history_pending = history
        self._buffer: list[tuple[str, bytes | None, Sequence[tuple[str, bytes]]]] = []
        self._changed = asyncio.Event()
        self._fetching_completed = False
        self._closed = False

    # --- what is known -----------------------------------------------------------------------

    @property
    def statuses(self) -> list[StatusEvent]:
        """The status events received so far, in sequence order, each once."""
        return [] if self._history_pending else list(self._events)

    @property
    def latest(self) -> StatusEvent | None:
        events = self.statuses
        return events[-1] if events else None

    @property
    def completed(self) -> CompletedEvent | None:
        return None if self._history_pending else self._completed

    @property
    def done(self) -> bool:
        """The task has ended (terminal status or completed event) or its request was refused."""
        latest = self.latest
        return (
            self.completed is not None
            or (latest is not None and latest.status.terminal)
            or self._rejection_final()
        )

    async def loaded(self) -> None:
        """Wait until an attached handle has read the task's past events."""
        while self._history_pending and self._failure is None:
            await self._wait(None)
        if self._failure is not None:
            raise self._failure

    # --- following it ------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[StatusEvent]:
        """The task's status events, from its first known one, each once and in sequence order,
        until its terminal status. Raises `RequestRejected` when the service refused the request
        with no status event (e.g. `unauthorized`). Wrap it in `asyncio.timeout` to bound it."""
        index, life = 0, self._life
        while True:
            changed = self._changed
            if self._failure is not None:
                raise self._failure
            if not self._history_pending:
                if life != self._life:
                    index, life = 0, self._life
                if index < len(self._events):
                    event = self._events[index]
                    index += 1
                    yield event
                    continue
                if self._events and self._events[-1].status.terminal:
                    return
                if self._rejection_final():
                    raise self._rejected()
            await self._wait(changed)

    # `timeout` as in concurrent.futures' `result(timeout)`: the call users expect.
    async def result(self, timeout: float | None = None) -> CompletedEvent:  # noqa: ASYNC109
        """The completed event (with the videos), once the task completes. Raises `TaskFailed`
        (`.error` is the contract's error: `.code`, `.message`, ...), `TaskCancelled`,
        `RequestRejected`, or `TimeoutError` after `timeout` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed
                if self._failure is not None:
                    raise self._failure
                if not self._history_pending:
                    if self._completed is not None:
                        return self._completed
                    latest = self._events[-1] if self._events else None
                    if latest is not None and latest.status == TaskStatus.FAILED:
                        raise TaskFailed(self.request_id, _error_of(latest), latest)
                    if latest is not None and latest.status == TaskStatus.CANCELLED:
                        raise TaskCancelled(self.request_id, _error_of(latest), latest)
                    if latest is not None and latest.status == TaskStatus.COMPLETED:
                        await self._look_up_completed(latest)
                    elif self._rejection_final():
                        raise self._rejected()
                await self._wait(changed)

    async def cancel(self, reason: str | None = None) -> None:
        """Ask the service to cancel this task (see `VideoClient.cancel`)."""
        await self.client.cancel(self.request_id, reason)

    def close(self) -> None:
        """Stop receiving events for this handle (done by itself once the task has ended)."""
        if not self._closed and self.client._router is not None:
            self.client._router.unregister(self)
        self._closed = True

    # --- fed by the client -------------------------------------------------------------------

    def _receive(
        self, topic: str, value: bytes | None, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        if self._history_pending:
            self._buffer.append((topic, value, headers))
            return
        self._take(topic, value)
        self._notify()

    def _history_loaded(
        self, records: Sequence[tuple[str, bytes | None, Sequence[tuple[str, bytes]]]]
    ) -> None:
        status_first = sorted(records, key=lambda r: r[0] == self.client.topics.completed)
        for topic, value, _ in [*status_first, *self._buffer]:
            self._take(topic, value)
        self._buffer.clear()
        self._history_pending = False
        self._notify()

    def _history_failed(self, exc: BaseException) -> None:
        self._failure = exc
        self._notify()

    def _take(self, topic: str, value: bytes | None) -> None:
        try:
            body = json.loads(value or b"")
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if topic == self.client.topics.dlq and self.client.dead_letters:
            self._take_dead_letter(body)
            return
        if body.get("request_id") != self.request_id:
            return
        try:
            if body.get("event_type") == "completed":
                completed = CompletedEvent.model_validate(body)
                if self._task_id in (None, completed.task_id):
                    self._task_id = completed.task_id
                    self._completed = completed
            elif body.get("event_type") == "status":
                self._take_status(StatusEvent.model_validate(body))
        except ValidationError as exc:
            log.warning("event of %s ignored, not a contract event: %s", self.request_id, exc)

    def _take_status(self, event: StatusEvent) -> None:
        if event.event_id in self._ids:
            return
        if self._task_id is not None and event.task_id != self._task_id:
            # The request_id's earlier life was a refused request (a `failed` status with a
            # task_id of its own): a corrected request reused it. Follow the new one.
            self._events, self._completed = [], None
            self._life += 1
        self._task_id = event.task_id
        if self._events and event.sequence <= self._events[-1].sequence:
            return
        self._ids.add(event.event_id)
        self._events.append(event)

    def _take_dead_letter(self, body: dict[str, Any]) -> None:
        try:
            letter = DeadLetterEvent.model_validate(body)
        except ValidationError:
            return
        original = letter.original
        if original.topic != self.client.topics.requests:
            return
        if original.headers.get(MESSAGE_ID_HEADER) not in self._message_ids:
            return  # not a request this handle sent
        if self._rejection is None:
            self._rejection, self._rejected_at = letter, time.monotonic()

    def _rejection_final(self) -> bool:
        """A dead letter came, and no status followed it within the grace period."""
        if self._rejection is None or self._history_pending:
            return False
        if self._events and self._events[-1].status.terminal:
            return False
        return time.monotonic() - self._rejected_at >= REJECTION_GRACE_S

    def _rejected(self) -> RequestRejected:
        assert self._rejection is not None
        return RequestRejected(self.request_id, self._rejection.error, self._rejection)

    async def _look_up_completed(self, status: StatusEvent) -> None:
        if self._fetching_completed:
            return
        waited = time.monotonic() - self._status_seen_at(status)
        if waited < COMPLETED_GRACE_S:
            return
        self._fetching_completed = True
        await self.client._fetch_completed(self, status.timestamp)
        self._notify()

    def _status_seen_at(self, status: StatusEvent) -> float:
        seen = getattr(self, "_seen", None)
        if seen is None or seen[0] != status.event_id:
            self._seen = (status.event_id, time.monotonic())
        return self._seen[1]

    async def _wait(self, changed: asyncio.Event | None) -> None:
        """Until something changes, or a grace period may have run out."""
        changed = changed or self._changed
        pending_grace = self._rejection is not None or (
            self._events and self._events[-1].status == TaskStatus.COMPLETED
        )
        try:
            await asyncio.wait_for(changed.wait(), 0.5 if pending_grace else None)
        except TimeoutError:
            pass

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        # Stop receiving once nothing more can come: the terminal status, and with `completed`
        # the completed event too (the two travel on different topics, in either order).
        latest = self._events[-1] if self._events and not self._history_pending else None
        if latest is not None and latest.status.terminal:
            if latest.status != TaskStatus.COMPLETED or self._completed is not None:
                self.close()


class _Router:
    """One consumer over every partition of the event topics, from their ends, handing each
    record to the handles of its key. Nothing is committed; it joins no group."""

    def __init__(self, kafka: KafkaConfig, topics: list[str], wait_s: float) -> None:
        self._kafka = kafka
        self._topics = topics
        self._wait_s = wait_s
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._handles: dict[bytes, set[TaskHandle]] = defaultdict(set)
        self.partitions: dict[str, list[TopicPartition]] = {}
        self.next_offset: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self._kafka.client_kwargs(), group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            self.partitions = await _partitions(self._kafka, self._topics, self._wait_s)
            tps = [tp for tps in self.partitions.values() for tp in tps]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:  # the positions are known before any request can go out
                self.next_offset[tp] = await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer), name="video-client-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
        handles = [handle for group in self._handles.values() for handle in group]
        self._handles.clear()
        for handle in handles:
            if not handle.done:  # what a handle already knows stays readable
                handle._history_failed(VideoClientError("the client was closed"))

    def register(self, handle: TaskHandle) -> dict[TopicPartition, int]:
        """Deliver the key's records from here on; returns where "here" is, per partition."""
        self._handles[handle.request_id.encode()].add(handle)
        return dict(self.next_offset)

    def unregister(self, handle: TaskHandle) -> None:
        key = handle.request_id.encode()
        group = self._handles.get(key)
        if group is not None:
            group.discard(handle)
            if not group:
                del self._handles[key]

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka away: aiokafka reconnects; keep reading
                log.warning("reading events failed, retrying: %r", exc)
                await asyncio.sleep(1.0)
                continue
            for tp, records in batch.items():
                for record in records:
                    self.next_offset[tp] = record.offset + 1
                    handles = self._handles.get(record.key) if record.key else None
                    for handle in list(handles or ()):
                        handle._receive(tp.topic, record.value, record.headers)


async def _partitions(
    kafka: KafkaConfig, topics: Sequence[str], wait_s: float
) -> dict[str, list[TopicPartition]]:
    """The partitions of `topics`, waiting up to `wait_s` for them to exist. Asked for all
    topics at once: a metadata request naming a missing topic may create it on brokers that
    auto-create, with the wrong partition count, before the service creates it."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs())
    await admin.start()
    try:
        deadline = time.monotonic() + wait_s
        while True:
            described = {t["topic"]: t for t in await admin.describe_topics()}
            found = {
                name: sorted(p["partition"] for p in described[name]["partitions"])
                for name in topics
                if name in described and described[name]["partitions"]
            }
            missing = [name for name in topics if name not in found]
            if not missing:
                return {name: [TopicPartition(name, p) for p in found[name]] for name in topics}
            if time.monotonic() >= deadline:
                raise TopicNotFound(
                    f"topic {', '.join(missing)} not found on {kafka.bootstrap_servers}: "
                    "is the service running? (it creates its topics at start-up)"
                )
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


def _partition_of(key: bytes, partitions: Sequence[TopicPartition]) -> TopicPartition:
    """The partition Kafka's default partitioner (the service's) puts `key` in."""
    numbers = [tp.partition for tp in partitions]
    return partitions[DefaultPartitioner()(key, numbers, numbers)]


async def _seek(
    consumer: AIOKafkaConsumer,
    tps: Sequence[TopicPartition],
    since: datetime | timedelta | None,
    ends: Mapping[TopicPartition, int] | None,
) -> None:
    """Start at `since` (None: the beginning when `ends` is given, else the end)."""
    if since is None:
        if ends is None:
            await consumer.seek_to_end(*tps)
        else:
            await consumer.seek_to_beginning(*tps)
        return
    moment = datetime.now(UTC) - since if isinstance(since, timedelta) else since
    offsets = await consumer.offsets_for_times({tp: int(moment.timestamp() * 1000) for tp in tps})
    for tp in tps:
        found = offsets.get(tp)
        if found is not None:
            consumer.seek(tp, found.offset)
        elif ends is not None:
            consumer.seek(tp, ends[tp])
        else:
            await consumer.seek_to_end(tp)


def _parse_status(value: bytes | None) -> StatusEvent | None:
    try:
        body = json.loads(value or b"")
        if isinstance(body, dict) and body.get("event_type") == "status":
            return StatusEvent.model_validate(body)
    except (ValueError, ValidationError):
        pass
    return None


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def _error_of(event: StatusEvent) -> ErrorInfo:
    if event.error is not None:
        return event.error
    code = ErrorCode.CANCELLED if event.status == TaskStatus.CANCELLED else ErrorCode.INTERNAL_ERROR
    return ErrorInfo(code=code, message=f"the task ended {event.status}")


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'request'}: {error['msg']}"
        for error in exc.errors()
    )
