"""In-process stand-ins for the operator commands' backend: tasks as documents, matched by a
small evaluator of the MongoDB query operators the commands use; dead letters made by the
service's own encoder; sent records kept."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from consumers.admin.redrive import DeadLetter, Outgoing, read_dead_letter
from consumers.messaging.events import dead_letter_event
from consumers.operations.retention import RetentionSweeper
from consumers.settings import Settings
from schemas.errors import ErrorCode, ErrorInfo
from tests.factories import make_task

Document = dict[str, Any]
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def matches(doc: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    for key, condition in query.items():
        if key == "$and":
            if not all(matches(doc, q) for q in condition):
                return False
            continue
        if key == "$or":
            if not any(matches(doc, q) for q in condition):
                return False
            continue
        value = doc.get(key)
        if isinstance(condition, dict) and any(k.startswith("$") for k in condition):
            for op, arg in condition.items():
                if not _operator(op, value, arg):
                    return False
        elif value != condition:
            return False
    return True


def _operator(op: str, value: Any, arg: Any) -> bool:
    if op == "$in":
        return value in arg
    if op == "$nin":
        return value not in arg
    if op == "$ne":
        return bool(value != arg)
    if value is None:
        return False
    if op == "$lt":
        return bool(value < arg)
    if op == "$lte":
        return bool(value <= arg)
    if op == "$gt":
        return bool(value > arg)
    if op == "$gte":
        return bool(value >= arg)
    raise AssertionError(f"operator {op} not known to the fake")


class FakeRetentionStore:
    """The retention store's contract on documents in a list."""

    def __init__(self, tasks: Sequence[Document] = (), *, now: datetime = NOW) -> None:
        self.tasks = [dict(t) for t in tasks]
        self.moment = now
        self.index_calls: list[tuple[int | None, bool]] = []
        self.batches: list[int] = []

    def _finished(self, doc: Document, cutoff: datetime) -> bool:
        return matches(
            doc,
            {
                "active": False,
                "status": {"$in": ["cancelled", "completed", "failed"]},
                "finished_at": {"$lt": cutoff},
            },
        )

    async def now(self) -> datetime:
        return self.moment

    async def finished_before(
        self, cutoff: datetime, limit: int, after: str | None = None
    ) -> list[Document]:
        found = sorted((d for d in self.tasks if self._finished(d, cutoff)), key=lambda d: d["_id"])
        found = [d for d in found if after is None or d["_id"] > after][:limit]
        self.batches.append(len(found))
        return [{"_id": d["_id"], "request_id": d["request_id"]} for d in found]

    async def delete_finished(self, task_ids: list[str], cutoff: datetime) -> int:
        before = len(self.tasks)
        self.tasks = [
            d for d in self.tasks if not (d["_id"] in task_ids and self._finished(d, cutoff))
        ]
        return before - len(self.tasks)

    async def active_video_names(self) -> set[str] | None:
        return {v["filename"] for d in self.tasks if d.get("active") for v in d.get("videos") or ()}

    async def ensure_index(self, ttl_s: int | None, *, enabled: bool) -> str:
        self.index_calls.append((ttl_s, enabled))
        return "sweep" if enabled else "off"


def task_doc(**fields: Any) -> Document:
    return make_task(now=fields.pop("now", NOW), **fields).to_document()


def dead_letter(
    offset: int,
    value: bytes,
    *,
    code: ErrorCode = ErrorCode.UNAUTHORIZED,
    key: bytes | None = b"k",
    headers: Mapping[str, str | None] | None = None,
    binary_headers: Mapping[str, bytes] | None = None,
    timestamp_ms: int = 1_000_000,
    partition: int = 0,
    dlq_topic: str = "video.requests.dlq",
) -> DeadLetter:
    """A dead letter as the service writes it (consumers.messaging.events), read back."""
    import json

    body = dead_letter_event(
        ErrorInfo(code=code, message="because", retryable=False),
        topic="video.requests",
        partition=partition,
        offset=offset,
        key=key,
        headers=headers or {},
        value=value,
        binary_headers=binary_headers,
    )
    raw = json.dumps(body).encode()
    return read_dead_letter(dlq_topic, partition, 100 + offset, timestamp_ms, raw)


def _sort_key(name: str) -> Any:
    def key(doc: Document) -> tuple[bool, Any]:
        return (doc.get(name) is not None, doc.get(name) or NOW)

    return key


class FakeBackend:
    def __init__(
        self,
        settings: Settings,
        tasks: Sequence[Document] = (),
        letters: Sequence[DeadLetter] = (),
        *,
        now: datetime = NOW,
        fail: BaseException | None = None,
    ) -> None:
        self.settings = settings
        self.tasks = [dict(t) for t in tasks]
        self.letters = list(letters)
        self.sent: list[Outgoing] = []
        self.moment = now
        self.fail = fail
        self.closed = 0
        self.on_send: Any = None  # called with the records (e.g. to finish cancelled tasks)
        self.retention_store: Any = None  # a RetentionStore for `retention run`

    def _maybe_fail(self) -> None:
        if self.fail is not None:
            raise self.fail

    async def now(self) -> datetime:
        self._maybe_fail()
        return self.moment

    async def find_task(self, ident: str) -> Document | None:
        self._maybe_fail()
        for doc in self.tasks:
            if ident in (doc["_id"], doc["request_id"]):
                return doc
        return None

    async def find_tasks(
        self, query: Mapping[str, Any], *, sort: Sequence[tuple[str, int]], limit: int | None
    ) -> list[Document]:
        self._maybe_fail()
        found = [d for d in self.tasks if matches(d, query)]
        for name, direction in reversed(list(sort)):
            found.sort(key=_sort_key(name), reverse=direction < 0)
        return found[:limit] if limit else found

    async def count_tasks(self, query: Mapping[str, Any]) -> int:
        return len([d for d in self.tasks if matches(d, query)])

    async def statuses(self, request_ids: Collection[str]) -> dict[str, str]:
        return {d["request_id"]: d["status"] for d in self.tasks if d["request_id"] in request_ids}

    async def dead_letters(self, since_ms: int | None) -> list[DeadLetter]:
        self._maybe_fail()
        return [d for d in self.letters if since_ms is None or d.timestamp_ms >= since_ms]

    async def send(self, records: Sequence[Outgoing]) -> None:
        self.sent.extend(records)
        if self.on_send is not None:
            self.on_send(records)

    def retention(self, settings: Settings) -> RetentionSweeper:
        assert self.retention_store is not None
        return RetentionSweeper(self.retention_store, settings)

    async def close(self) -> None:
        self.closed += 1
