"""Re-driving dead letters: which to pick, and the request record each one becomes.

A dead letter holds the rejected record as it came (`original`: key, headers, value), so once
the cause is fixed (a model deployed, a bug fixed, a producer's token renewed) the record can be
sent to the request topic again. What it becomes:

- the value as it was: text encoded as UTF-8, or base64 decoded (`value_encoding: base64`), and
  checked against `value_sha256`. A value the dead letter cut (`value_truncated`) is refused:
  the whole request is not there, only its producer has it;
- the original key, and its headers (text and `binary_headers`) except credentials (the service
  never copied them; any name that looks like one is dropped here again) and any earlier
  `x-redriven-from`;
- `x-redriven-from: <dlq topic>/<partition>/<offset>`, the dead letter it came from;
- `authorization: Bearer <the operator's token>` when one is given (required under
  `AUTH_MODE=jwt`: the original token was never kept). The service reads the user and tenant
  from that token, so a request naming a `user_id` or `tenant_id` other than the token's is
  refused here, as the service would refuse it (`forbidden`).

A dead letter whose `request_id` has a task now (sent again by its producer, or re-driven
already) is skipped: the service would only re-publish that task's status.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from consumers.admin.tokens import Bearer
from consumers.messaging.events import is_credential_header
from schemas.events import DeadLetterEvent

REDRIVEN_FROM = "x-redriven-from"


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    event: DeadLetterEvent | None
    problem: str | None = None  # why it could not be read as a dead letter

    @property
    def where(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def code(self) -> str | None:
        return str(self.event.error.code) if self.event else None

    @property
    def original_where(self) -> str | None:
        if self.event is None:
            return None
        o = self.event.original
        return f"{o.topic}[{o.partition}]@{o.offset}"

    @property
    def request_id(self) -> str | None:
        """The request's `request_id` when its value reads as a JSON object with one, else the
        record's key."""
        if self.event is None:
            return None
        try:
            body = json.loads(original_value(self.event))
        except (ValueError, UnicodeDecodeError, Refused):
            body = None
        if isinstance(body, dict) and isinstance(body.get("request_id"), str):
            return str(body["request_id"])
        return self.event.original.key


def read_dead_letter(
    topic: str, partition: int, offset: int, timestamp_ms: int, value: bytes | None
) -> DeadLetter:
    try:
        event = DeadLetterEvent.model_validate_json(value or b"")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "value"
        problem = f"not a dead letter of this service ({where}: {first.get('msg')})"
        return DeadLetter(topic, partition, offset, timestamp_ms, None, problem)
    return DeadLetter(topic, partition, offset, timestamp_ms, event)


def parse_offset(text: str) -> tuple[int | None, int]:
    """`PARTITION:OFFSET` or `OFFSET` (any partition) of the original record on the request
    topic, as the service logs it and as `original.partition`/`original.offset` hold it."""
    partition, sep, offset = text.strip().rpartition(":")
    try:
        return (int(partition) if sep else None), int(offset)
    except ValueError:
        raise ValueError(f"--offset {text!r}: write PARTITION:OFFSET or OFFSET") from None


@dataclass(frozen=True)
class Selection:
    """Which dead letters: all of the given filters (none: every one)."""

    since_ms: int | None = None  # Kafka timestamp of the dead letter
    codes: frozenset[str] = frozenset()
    request_id: str | None = None  # a glob: 'order-*'
    offsets: frozenset[tuple[int | None, int]] = frozenset()

    def matches(self, letter: DeadLetter) -> bool:
        if self.since_ms is not None and letter.timestamp_ms < self.since_ms:
            return False
        if self.codes and letter.code not in self.codes:
            return False
        if self.request_id is not None:
            found = letter.request_id
            if found is None or not fnmatch.fnmatchcase(found, self.request_id):
                return False
        if self.offsets:
            if letter.event is None:
                return False
            o = letter.event.original
            if (o.partition, o.offset) not in self.offsets and (None, o.offset) not in self.offsets:
                return False
        return True


@dataclass(frozen=True)
class Outgoing:
    """A record to send."""

    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


class Action(StrEnum):
    SEND = "send"
    SKIP = "skip"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Plan:
    letter: DeadLetter
    action: Action
    reason: str | None = None
    outgoing: Outgoing | None = None

    def as_dict(self, *, sent: bool | None = None) -> dict[str, Any]:
        o = self.outgoing
        return {
            "dead_letter": self.letter.where,
            "original": self.letter.original_where,
            "request_id": self.letter.request_id,
            "code": self.letter.code,
            "action": str(self.action),
            "reason": self.reason,
            "to": o.topic if o else None,
            "headers": sorted({name for name, _ in o.headers} - {"authorization"}) if o else [],
            "value_bytes": len(o.value) if o else None,
            **({"sent": sent} if sent is not None else {}),
        }


class Refused(Exception):
    """This dead letter cannot be re-driven; the message says why."""


def original_value(event: DeadLetterEvent) -> bytes:
    """The original record's value, whole and checked, or Refused."""
    o = event.original
    if o.value_truncated:
        raise Refused(
            f"its value was truncated: the dead letter kept {_kept(o.value, o.value_encoding)} "
            f"of {o.value_size} bytes (sha256 {o.value_sha256}); only its producer has the "
            "whole request"
        )
    if o.value_encoding == "base64":
        try:
            value = base64.b64decode(o.value, validate=True)
        except (binascii.Error, ValueError):
            raise Refused("its value is marked base64 but does not decode") from None
    else:
        try:
            value = o.value.encode("utf-8")
        except UnicodeEncodeError:
            raise Refused("its value is not valid text") from None
    if o.value_sha256 and hashlib.sha256(value).hexdigest() != o.value_sha256:
        raise Refused("its value does not match value_sha256: the dead letter is damaged")
    return value


def _kept(value: str, encoding: str | None) -> int:
    if encoding == "base64":
        try:
            return len(base64.b64decode(value))
        except (binascii.Error, ValueError):
            return 0
    return len(value.encode("utf-8", errors="replace"))


def plan(
    letter: DeadLetter,
    *,
    request_topic: str,
    bearer: Bearer | None,
    existing: Mapping[str, str],
) -> Plan:
    """What to do with one selected dead letter. `existing`: the status of each request_id
    that has a task."""
    if letter.event is None:
        return Plan(letter, Action.REFUSE, letter.problem or "not a dead letter")
    try:
        value = original_value(letter.event)
    except Refused as exc:
        return Plan(letter, Action.REFUSE, str(exc))
    request_id = letter.request_id
    if request_id is not None and request_id in existing:
        return Plan(letter, Action.SKIP, f"request_id has a task now ({existing[request_id]})")
    if bearer is not None:
        mismatch = _mismatch(value, bearer)
        if mismatch:
            return Plan(letter, Action.REFUSE, mismatch)
    o = letter.event.original
    headers: list[tuple[str, bytes | None]] = []
    for name, text in o.headers.items():
        if not _restorable(name):
            continue
        headers.append((name, text.encode("utf-8") if text is not None else None))
    for name, encoded in o.binary_headers.items():
        if not _restorable(name):
            continue
        try:
            headers.append((name, base64.b64decode(encoded, validate=True)))
        except (binascii.Error, ValueError):
            return Plan(letter, Action.REFUSE, f"its binary header {name!r} does not decode")
    headers.append((REDRIVEN_FROM, letter.where.encode()))
    if bearer is not None:
        headers.append(("authorization", bearer.header))
    key = o.key.encode("utf-8") if o.key is not None else None
    note = "some of its headers were not kept (headers_truncated)" if o.headers_truncated else None
    return Plan(letter, Action.SEND, note, Outgoing(request_topic, key, value, headers))


def _restorable(name: str) -> bool:
    return not is_credential_header(name) and name.lower() != REDRIVEN_FROM


def _mismatch(value: bytes, bearer: Bearer) -> str | None:
    """Why the service would refuse this request under the operator's token (None: it would
    not, as far as can be told here)."""
    try:
        body = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    user, tenant = body.get("user_id"), body.get("tenant_id")
    if user is not None and bearer.subject is not None and user != bearer.subject:
        return (
            f"the request names user_id {user!r} and the token's subject is "
            f"{bearer.subject!r}: the service would refuse it (forbidden); use a token of "
            "that user"
        )
    if tenant is not None and tenant != bearer.tenant_id:
        return (
            f"the request names tenant_id {tenant!r} and the token's is {bearer.tenant_id!r}: "
            "the service would refuse it (forbidden)"
        )
    return None
