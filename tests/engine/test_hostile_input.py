"""Hostile input through the whole application in-process (issue 8, items 1 to 3).

Records are handed to the subscribers as aiokafka `ConsumerRecord`s, built here byte by byte, so
that header values FastStream's own test producer cannot send (None, bytes that are not UTF-8)
reach the service as they would from a real broker. Every record must end in exactly one
outcome (a task, a duplicate, or one dead letter) and never affect the records beside it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiokafka import ConsumerRecord
from faststream import TestApp
from faststream.kafka import TestKafkaBroker
from pymongo.errors import AutoReconnect

from consumers.messaging.publisher import encode
from consumers.subscribers import intake as intake_module
from consumers.subscribers import requests as requests_module
from consumers.subscribers.unreadable import UnreadableRecord
from tests.engine.harness import request
from tests.engine.test_app import Service

SECRET = "in-process-secret-of-at-least-32-bytes"
MIB = 1024 * 1024
LIFECYCLE = ["accepted", "submitted", "running", "downloading", "completed"]


def record(
    value: bytes | None,
    offset: int,
    *,
    headers: Sequence[tuple[str, bytes | None]] = (),
    key: bytes | None = None,
    topic: str = "video.requests",
    partition: int = 0,
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=int(time.time() * 1000),
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=list(headers),
    )


def body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def subscriber(service: Service, topic: str) -> Any:
    for sub in service.broker.subscribers:
        if any(getattr(t, "name", t) == topic for t in getattr(sub, "topics", ())):
            return sub
    raise AssertionError(f"no subscriber for {topic}")


async def deliver(service: Service, *records: ConsumerRecord[bytes, bytes]) -> None:
    """One batch on the request topic, as the consumer hands it over."""
    await subscriber(service, "video.requests").process_message(tuple(records))


def dead_letters(service: Service) -> list[dict[str, Any]]:
    return service.published["video.requests.dlq"]


def by_offset(service: Service) -> dict[int, dict[str, Any]]:
    letters = dead_letters(service)
    offsets = [d["original"]["offset"] for d in letters]
    assert len(offsets) == len(set(offsets)), f"more than one dead letter per record: {offsets}"
    return {d["original"]["offset"]: d for d in letters}


def fail_once(store: Any, method: str) -> None:
    """The store's `method` raises a MongoDB error on its next call, as in an outage."""
    real = getattr(store, method)

    async def failing(*args: Any, **kwargs: Any) -> Any:
        setattr(store, method, real)
        raise AutoReconnect(f"injected: {method}")

    setattr(store, method, failing)


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels - 1):
        value = {"a": value}
    return {"a": value} if levels else value


@pytest.fixture
def service(tmp_path: Path) -> Service:
    return Service(tmp_path)


@pytest.fixture(autouse=True)
def short_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requests_module, "RETRY_PAUSE_S", 0.01)


# --- item 1: no poison pill ----------------------------------------------------------------


async def test_records_that_raise_are_dead_letters_and_their_batch_is_stored(
    service: Service,
) -> None:
    first, last = request(), request()
    huge_number = b'{"request_id": "n-1", "model": "cogvideox-flash", "timeout_s": ' + (
        b"9" * 5000 + b', "parameters": {"prompt": "x"}}'
    )
    nested = request(request_id="deep-1", metadata=deep(300))
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(
            service,
            record(body(first), 1),
            record(huge_number, 2),
            record(b"[" * 100_000, 3),
            record(json.dumps(nested).encode(), 4),
            record(b'{"request_id": "nan-1", "model": "cogvideox-flash", "timeout_s": NaN}', 5),
            record(body(last), 6),
        )
        await service.until_status(first["request_id"], "completed")
        await service.until_status(last["request_id"], "completed")
    letters = by_offset(service)
    assert sorted(letters) == [2, 3, 4, 5]
    assert {o: d["error"]["code"] for o, d in letters.items()} == dict.fromkeys(
        (2, 3, 4, 5), "invalid_request"
    )
    assert "4300" in letters[2]["error"]["message"] or "digits" in letters[2]["error"]["message"]
    assert "deeply" in letters[3]["error"]["message"]
    assert letters[4]["error"]["message"].startswith("metadata: ")
    assert "32" in letters[4]["error"]["message"]


async def test_deep_metadata_without_a_token_is_one_dead_letter_and_no_status(
    tmp_path: Path,
) -> None:
    service = Service(tmp_path, auth_mode="jwt", auth_jwt_secret=SECRET)
    nested = request(request_id="deep-2", metadata=deep(300))
    good = request()
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(service, record(body(nested), 1), record(body(good), 2, headers=bearer("u")))
        await service.until_status(good["request_id"], "completed")
    (letter,) = dead_letters(service)
    assert letter["error"]["code"] == "unauthorized"
    assert service.statuses("deep-2") == []


async def test_null_and_binary_header_values_never_drop_a_batch(service: Service) -> None:
    good = request()
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(
            service,
            record(body(good), 1, headers=[("trace", None), ("blob", b"\xff\xfe")]),
            record(
                b"{not json",
                2,
                headers=[("trace", None), ("blob", b"\xff\xfe"), ("ok", b"fine")],
                key=b"\xfe-key",
            ),
        )
        await service.until_status(good["request_id"], "completed")
    (letter,) = dead_letters(service)
    original = letter["original"]
    assert original["offset"] == 2
    assert original["headers"] == {"trace": None, "ok": "fine"}
    assert original["binary_headers"] == {"blob": base64.b64encode(b"\xff\xfe").decode()}


async def test_a_rejected_record_near_one_mebibyte_yields_a_dead_letter_that_fits(
    service: Service,
) -> None:
    escaped = b"\x01" * (MIB - 2048)  # valid UTF-8, six bytes each once escaped in JSON
    binary = b"\xff" * (MIB - 2048)
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(service, record(escaped, 1), record(binary, 2, key=b"k" * 100_000))
    letters = by_offset(service)
    for offset, original_value in ((1, escaped), (2, binary)):
        letter = letters[offset]
        assert len(encode(letter)) < 900 * 1024
        original = letter["original"]
        assert original["value_truncated"] is True
        assert original["value_size"] == len(original_value)
        assert original["value_sha256"] == hashlib.sha256(original_value).hexdigest()
        kept = (
            base64.b64decode(original["value"])
            if original["value_encoding"] == "base64"
            else original["value"].encode()
        )
        assert 0 < len(kept) <= 256 * 1024 and original_value.startswith(kept)


async def test_an_unexpected_error_for_one_record_dead_letters_it_alone(
    service: Service, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = intake_module.validate_request

    def flaky(value: bytes, *args: Any, **kwargs: Any) -> Any:
        if b"explode" in value:
            raise RuntimeError("a bug met a record")
        return real(value, *args, **kwargs)

    monkeypatch.setattr(intake_module, "validate_request", flaky)
    good, bad = request(), request(request_id="explode-1")
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        with caplog.at_level(logging.ERROR):
            await deliver(service, record(body(bad), 1), record(body(good), 2))
        await service.until_status(good["request_id"], "completed")
    (letter,) = dead_letters(service)
    assert letter["error"]["code"] == "internal_error"
    assert letter["original"]["offset"] == 1
    assert any(r.exc_info for r in caplog.records), "the stack trace is logged"
    assert service.statuses("explode-1") == []


async def test_an_infrastructure_outage_retries_the_batch_and_dead_letters_nothing(
    service: Service,
) -> None:
    good = request()
    fail_once(service.store, "insert_many")
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(service, record(body(good), 1), record(b"{bad", 2))
        assert service.statuses(good["request_id"]) == []
        # The nack rewound the partition: the same batch comes again and is stored.
        await deliver(service, record(body(good), 1), record(b"{bad", 2))
        await service.until_status(good["request_id"], "completed")
    assert [d["original"]["offset"] for d in dead_letters(service)] == [2]


async def test_a_reply_to_header_makes_the_service_publish_nothing_there(service: Service) -> None:
    good = request()
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(service, record(body(good), 1, headers=[("reply_to", b"video.status")]))
        await service.until_status(good["request_id"], "completed")
        cancel = {"request_id": good["request_id"]}
        await subscriber(service, "video.cancel").process_message(
            record(body(cancel), 1, topic="video.cancel", headers=[("reply_to", b"video.status")])
        )
    assert all(isinstance(e, dict) and e for e in service.published["video.status"])


# --- the cancel subscriber --------------------------------------------------------------------


async def test_hostile_cancels_are_logged_and_skipped(tmp_path: Path) -> None:
    service = Service(tmp_path, auth_mode="jwt", auth_jwt_secret=SECRET)
    sub = None
    cancels = [
        record(b"[" * 100_000, 1, topic="video.cancel"),
        record(body({"request_id": "c-1"}), 2, topic="video.cancel", headers=[("x", None)]),
        record(
            body({"request_id": "c-1"}),
            3,
            topic="video.cancel",
            headers=[("authorization", b"Bearer \xff\xfe")],
        ),
        record(
            body({"request_id": "c-1"}),
            4,
            topic="video.cancel",
            headers=[("authorization", b"Bearer " + jwt.encode({"x": 1}, "k" * 40).encode())],
        ),
    ]
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        sub = subscriber(service, "video.cancel")
        for cancel in cancels:
            await sub.process_message(cancel)  # nothing raises: each is committed, not re-read


async def test_a_cancel_during_an_outage_is_read_again_after_a_pause(service: Service) -> None:
    sim = service.sim_app.state.sim
    sim.config = sim.config.updated({"timing": {"queued_s": 30, "running_s": 30}})
    good = request()
    async with TestKafkaBroker(service.broker) as broker, TestApp(service.app):
        await broker.publish(body(good), "video.requests")
        await service.until_status(good["request_id"], "submitted")
        fail_once(service.store, "request_cancel")
        sub = subscriber(service, "video.cancel")
        cancel = record(body({"request_id": good["request_id"]}), 1, topic="video.cancel")
        with pytest.raises(Exception, match="injected"):
            await sub.process_message(cancel)  # raised: NACK_ON_ERROR rewinds after the pause
        await sub.process_message(cancel)
        await service.until_status(good["request_id"], "cancelled")


# --- item 2: no forged or misleading status ---------------------------------------------------


def bearer(sub: str, tenant: str | None = "t-1", **claims: Any) -> list[tuple[str, bytes]]:
    payload = {"sub": sub, "exp": int(time.time()) + 600, **claims}
    if tenant is not None:
        payload["tenant_id"] = tenant
    return [("authorization", b"Bearer " + jwt.encode(payload, SECRET).encode())]


async def test_unauthorized_records_publish_no_status(tmp_path: Path) -> None:
    service = Service(tmp_path, auth_mode="jwt", auth_jwt_secret=SECRET)
    forged = request(request_id="victim-1", user_id="victim", metadata={"a": 1})
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(service, record(body(forged), 1))
    (letter,) = dead_letters(service)
    assert letter["error"]["code"] == "unauthorized"
    assert service.published["video.status"] == []


async def test_a_rejection_status_echoes_only_what_passed_validation(tmp_path: Path) -> None:
    service = Service(tmp_path, auth_mode="jwt", auth_jwt_secret=SECRET)
    mismatch = request(request_id="echo-1", user_id="victim", tenant_id="t-9", metadata={"a": 1})
    bad_envelope = request(request_id="echo-2", timeout_s=1, metadata={"forged": True})
    unknown = request("sora", request_id="echo-3", metadata={"ok": True})
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(
            service,
            record(body(mismatch), 1, headers=bearer("u-1")),
            record(body(bad_envelope), 2, headers=bearer("u-1")),
            record(body(unknown), 3, headers=bearer("u-1")),
        )
    status = {e["request_id"]: e for e in service.published["video.status"]}
    assert status["echo-1"]["error"]["code"] == "forbidden"
    assert (status["echo-1"]["user_id"], status["echo-1"]["tenant_id"]) == ("u-1", "t-1")
    assert status["echo-2"]["metadata"] is None and status["echo-2"]["user_id"] is None
    assert status["echo-3"]["model"] is None and status["echo-3"]["metadata"] == {"ok": True}
    assert status["echo-3"]["user_id"] == "u-1"


async def test_no_rejection_status_for_a_request_id_that_has_a_task(service: Service) -> None:
    good = request()
    copy = {**good, "model": "sora"}
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(service, record(body(good), 1))
        await service.until_status(good["request_id"], "completed")
        await deliver(service, record(body(copy), 2), record(body(copy), 3))
        # the same batch: a rejected copy before its valid original
        twin = request()
        await deliver(service, record(body({**twin, "timeout_s": 1}), 4), record(body(twin), 5))
        await service.until_status(twin["request_id"], "completed")
    assert [d["original"]["offset"] for d in dead_letters(service)] == [2, 3, 4]
    assert "failed" not in service.statuses(good["request_id"])
    assert "failed" not in service.statuses(twin["request_id"])


async def test_a_request_id_with_a_trailing_newline_keys_no_event(service: Service) -> None:
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(service, record(body(request(request_id="r-1\n")), 1))
    (letter,) = dead_letters(service)
    assert letter["error"]["code"] == "invalid_request"
    assert service.published["video.status"] == []


# --- item 3: reply topics ---------------------------------------------------------------------


async def test_reply_topic_copies_add_no_metrics_series(tmp_path: Path) -> None:
    service = Service(tmp_path, reply_topic_pattern=r"shop\.[a-z0-9-]+")
    bodies = [request(reply_topic=f"shop.r{n}") for n in range(5)]
    copies: list[dict[str, Any]] = []

    @service.broker.subscriber("shop.r0")
    async def reply(event: dict[str, Any]) -> None:
        copies.append(event)

    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(service, *(record(body(b), n) for n, b in enumerate(bodies)))
        for b in bodies:
            await service.until_status(b["request_id"], "completed")
        for _ in range(100):
            if len(copies) == 6:
                break
            await asyncio.sleep(0.01)
    assert [e["status"] for e in copies] == [*LIFECYCLE, "completed"]
    registry = service.app.context.get("engine").ctx.metrics.registry
    destinations = {
        sample.labels.get("destination")
        for metric in registry.collect()
        for sample in metric.samples
        if "destination" in sample.labels
    }
    assert destinations and not any(d.startswith("shop.") for d in destinations), destinations


# --- rebalances ---------------------------------------------------------------------------------


async def test_a_rebalance_waits_for_the_batch_in_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    in_hand = requests_module.BatchInHand()
    order: list[str] = []

    async def batch() -> None:
        async with in_hand.handling():
            await asyncio.sleep(0.05)
            order.append("stored and committed")

    running = asyncio.create_task(batch())
    await asyncio.sleep(0)
    await in_hand.on_partitions_revoked(set())
    order.append("revoked")
    await running
    assert order == ["stored and committed", "revoked"]

    monkeypatch.setattr(requests_module, "REVOKE_WAIT_S", 0.01)
    async with in_hand.handling():  # a batch stuck in an outage holds a rebalance up no longer
        await in_hand.on_partitions_revoked(set())


async def test_a_record_the_client_cannot_read_is_one_dead_letter(service: Service) -> None:
    """What `unreadable.salvage` hands on for a record aiokafka could not parse (e2e:
    tests/e2e/test_fuzz.py sends one with a header name that is not UTF-8)."""
    good = request()
    lost = UnreadableRecord(
        topic="video.requests",
        partition=0,
        offset=2,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=None,
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=-1,
        headers=[],
        reason="Found invalid record structure: UnicodeDecodeError(...)",
    )
    async with TestKafkaBroker(service.broker), TestApp(service.app):
        await deliver(service, record(body(good), 1), lost, record(b"{bad", 3))
        await service.until_status(good["request_id"], "completed")
    letters = by_offset(service)
    assert sorted(letters) == [2, 3]
    assert letters[2]["error"]["code"] == "invalid_request"
    assert "could not be read" in letters[2]["error"]["message"]
    assert letters[2]["original"]["value"] == "" and letters[2]["original"]["value_size"] == 0
