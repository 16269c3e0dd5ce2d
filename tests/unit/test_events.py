import base64
import hashlib
import json

import pytest

from consumers.messaging import events
from consumers.messaging.publisher import encode
from schemas import ErrorCode, ErrorInfo, TaskStatus
from tests.factories import make_task

TASK = make_task(
    id="task-1",
    request_id="r-1",
    provider="aliyun",
    model="wanx2.1-t2v-turbo",
    sequence=2,
    upstream_task_id="up-1",
    upstream_status="RUNNING",
    metadata_json='{"a.b": 1, "$c": 2}',
)


def test_status_event_has_next_sequence_and_a_stable_id() -> None:
    first = events.status_event(TASK, TaskStatus.RUNNING).body
    again = events.status_event(TASK, TaskStatus.RUNNING).body
    assert first["sequence"] == 3
    assert first["event_id"] == again["event_id"] == events.event_id("task-1", 3)
    assert first["status"] == "running" and first["event_type"] == "status"
    assert first["metadata"] == {"a.b": 1, "$c": 2} and first["error"] is None


def test_completed_event_shares_the_envelope_with_its_own_id() -> None:
    from schemas.events import TaskResult, Timings

    status = events.status_event(TASK, TaskStatus.COMPLETED)
    result = TaskResult(
        upstream_task_id="up-1",
        model="wanx2.1-t2v-turbo",
        created="2026-11-27T20:08:58Z",
        videos=[],
    )
    timings = Timings(queued_s=0, generation_s=1, download_s=1, total_s=2)
    completed = events.completed_event(status, result, timings).body
    assert completed["event_type"] == "completed" and completed["status"] == "completed"
    assert completed["sequence"] == status.body["sequence"]
    assert completed["event_id"] != status.body["event_id"]
    assert completed["result"]["upstream_task_id"] == "up-1"


def test_dead_letter_drops_authorization_and_base64s_binary() -> None:
    error = ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="not JSON")
    event = events.dead_letter_event(
        error,
        topic="video.requests",
        partition=1,
        offset=7,
        key=b"k",
        headers={"Authorization": "Bearer secret", "trace": "t"},
        value=b"\xff\xfe",
    )
    assert event["original"]["headers"] == {"trace": "t"}
    assert event["original"]["value_encoding"] == "base64"
    assert base64.b64decode(event["original"]["value"]) == b"\xff\xfe"
    assert event["error"]["code"] == "invalid_request"


def test_rejected_status_is_stable_across_redeliveries() -> None:
    error = ErrorInfo(code=ErrorCode.UNKNOWN_MODEL, message="no such model")
    raw = {"request_id": "r-9", "model": "nope"}
    one = events.rejected_status_event(raw, "r-9", error, "video.requests", 0, 5)
    two = events.rejected_status_event(raw, "r-9", error, "video.requests", 0, 5)
    assert one["event_id"] == two["event_id"] and one["sequence"] == 1
    assert one["status"] == "failed" and one["model"] == "nope" and one["provider"] is None


# --- issue 8: dead letters of hostile records -----------------------------------------------

KIB = 1024
MIB = 1024 * KIB


def dead_letter(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "topic": "video.requests",
        "partition": 0,
        "offset": 1,
        "key": b"k",
        "headers": {},
        "value": b"{}",
    }
    fields.update(overrides)
    error = ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="bad")
    return events.dead_letter_event(error, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name",
    [
        "authorization",
        "Proxy-Authorization",
        "Cookie",
        "set-cookie",
        "X-API-Key",
        "x-api_key",
        "apikey",
        "X-Auth-Token",
        "refresh_token",
        "client-secret",
        "DB-Password",
        "x-amz-credential",
        "x-signature",
    ],
)
def test_credential_headers_never_reach_a_dead_letter(name: str) -> None:
    event = dead_letter(
        headers={name: "s3cret", "trace": "t"}, binary_headers={name.upper(): b"\xff"}
    )
    original = event["original"]
    assert isinstance(original, dict)
    assert original["headers"] == {"trace": "t"} and original["binary_headers"] == {}
    assert "s3cret" not in json.dumps(event)


def test_null_headers_stay_null_and_binary_ones_are_base64() -> None:
    event = dead_letter(headers={"a": None, "b": "text"}, binary_headers={"c": b"\xff\xfe"})
    original = event["original"]
    assert isinstance(original, dict)
    assert original["headers"] == {"a": None, "b": "text"}
    assert original["binary_headers"] == {"c": base64.b64encode(b"\xff\xfe").decode()}
    assert original["headers_truncated"] is False


def test_a_small_value_is_kept_whole_and_described() -> None:
    original = dead_letter(value=b'{"a": "\xc3\xa9"}')["original"]
    assert isinstance(original, dict)
    assert original["value"] == '{"a": "é"}' and original["value_encoding"] is None
    assert original["value_truncated"] is False and original["value_size"] == 11
    assert original["value_sha256"] == hashlib.sha256(b'{"a": "\xc3\xa9"}').hexdigest()


VALUES = {
    "json-ish text": b'{"x": "' + b"a" * MIB + b'"}',
    "control characters": b"\x01" * MIB,
    "quotes": b'"' * MIB,
    "cjk": "猫".encode() * (MIB // 3),
    "binary": bytes(range(256)) * (MIB // 256),
}


@pytest.mark.parametrize("kind", VALUES)
def test_a_dead_letter_always_fits_in_a_kafka_message(kind: str) -> None:
    value = VALUES[kind]
    huge_headers = {f"h{n}": "\x02" * 10_000 for n in range(100)}
    key = b"\x00" * (900 * KIB)
    event = dead_letter(value=value, key=key, headers=huge_headers)
    encoded = encode(event)
    dlq_key = events.dead_letter_key(key)
    assert dlq_key is not None and len(dlq_key) == events.KEY_BUDGET
    assert len(encoded) + len(dlq_key) < 900 * KIB, len(encoded)
    original = event["original"]
    assert isinstance(original, dict)
    assert original["value_truncated"] is True and original["headers_truncated"] is True
    assert original["value_size"] == len(value)
    assert original["value_sha256"] == hashlib.sha256(value).hexdigest()
    kept = (
        base64.b64decode(original["value"])
        if original["value_encoding"] == "base64"
        else original["value"].encode()
    )
    assert len(kept) <= 256 * KIB and value.startswith(kept)
    assert len(kept) > 250 * KIB  # cut to the budget, not far below it


def test_a_text_value_is_cut_on_a_character_boundary() -> None:
    value = b"a" + "猫".encode() * (100 * KIB)  # 256 KiB falls inside a character
    original = dead_letter(value=value)["original"]
    assert isinstance(original, dict)
    assert original["value_encoding"] is None and original["value_truncated"] is True
    assert value.startswith(original["value"].encode())
