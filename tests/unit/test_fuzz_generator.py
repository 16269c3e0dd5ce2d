"""The fuzz tier's generator (tests/fuzz.py), checked in-process against the service's own
validation: its hostile records are all rejected, its valid ones all accepted, and every
dead letter of them fits in a Kafka message. The real run is tests/e2e/test_fuzz.py."""

from __future__ import annotations

import pytest

from consumers.messaging import events
from consumers.messaging.kafka import read_headers
from consumers.messaging.publisher import encode
from consumers.settings import Settings
from consumers.subscribers.auth import Authenticator
from consumers.subscribers.validation import Accepted, Rejected, validate_request
from tests.fuzz import MAX_RECORD_BYTES, Tokens, generate, generate_cancels
from tests.harness import Topics

SECRET = "fuzz-secret-that-is-at-least-32-bytes"


@pytest.mark.parametrize("auth_mode", ["none", "jwt"])
def test_hostile_records_are_rejected_and_valid_ones_accepted(auth_mode: str) -> None:
    topics = Topics()
    settings = Settings(
        _env_file=None,
        auth_mode=auth_mode,
        auth_jwt_secret=SECRET,
        topic_requests=topics.requests,
        topic_cancel=topics.cancel,
        topic_status=topics.status,
        topic_completed=topics.completed,
        topic_dlq=topics.dlq,
    )
    auth = Authenticator(settings)
    tokens = Tokens(SECRET) if auth_mode == "jwt" else None
    records = generate(7, 1500, topics, tokens=tokens, big_ratio=0.02)
    kinds = set()
    for record in records:
        assert record.size <= MAX_RECORD_BYTES
        text, binary = read_headers(record.headers)
        outcome = validate_request(record.value or b"", {**text, **binary}, settings, auth)
        if record.valid:
            assert isinstance(outcome, Accepted), (record.kind, outcome)
            continue
        kinds.add(record.kind)
        assert isinstance(outcome, Rejected), (
            record.kind,
            record.value[:300] if record.value else None,
        )
        letter = events.dead_letter_event(
            outcome.error,
            topic=topics.requests,
            partition=record.partition,
            offset=1,
            key=record.key,
            headers=text,
            binary_headers=binary,
            value=record.value or b"",
        )
        assert len(encode(letter)) + len(events.dead_letter_key(record.key) or b"") < 900_000
    assert "oversized" in kinds and len(kinds) >= 12, kinds


def test_generation_is_reproducible() -> None:
    topics = Topics()
    one = [(r.kind, r.value, r.key, r.headers) for r in generate(3, 200, topics)]
    two = [(r.kind, r.value, r.key, r.headers) for r in generate(3, 200, topics)]
    assert one == two
    assert generate_cancels(3, 10, topics)
