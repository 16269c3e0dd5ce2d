"""Request validation: every rejection names its problem and carries the contract's code."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from consumers.settings import Settings
from consumers.subscribers.auth import Authenticator
from consumers.subscribers.validation import Accepted, Rejected, validate_request

SECRET = "test-secret-of-at-least-32-bytes-long"


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)


def check(body: Any, headers: dict[str, str] | None = None, **config: Any) -> Accepted | Rejected:
    conf = settings(**config)
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return validate_request(value, headers or {}, conf, Authenticator(conf))


def rejected(body: Any, **kwargs: Any) -> Rejected:
    outcome = check(body, **kwargs)
    assert isinstance(outcome, Rejected), outcome
    return outcome


GOOD = {"request_id": "r-1", "model": "wanx2.1-t2v-turbo", "parameters": {"prompt": "a cat"}}


def test_a_valid_request_is_accepted_with_normalised_parameters() -> None:
    outcome = check({**GOOD, "parameters": {"prompt": "a cat", "resolution": "480P", "seed": -1}})
    assert isinstance(outcome, Accepted)
    assert outcome.spec.provider == "aliyun"
    assert outcome.parameters.model_dump(exclude_none=True) == {
        "prompt": "a cat",
        "size": "832*480",
    }


@pytest.mark.parametrize(
    ("body", "code", "fragment", "request_id"),
    [
        (b"\xff", "invalid_request", "not valid UTF-8 JSON", None),
        (b"[]", "invalid_request", "JSON object, not list", None),
        (
            {"model": "cogvideox-2", "parameters": {}},
            "invalid_request",
            "request_id: is required",
            None,
        ),
        ({**GOOD, "request_id": "a b"}, "invalid_request", "request_id", None),
        ({**GOOD, "model": "sora"}, "unknown_model", "supported models: wanx2.1-t2v-turbo", "r-1"),
        (
            {**GOOD, "provider": "zhipuai"},
            "invalid_request",
            "served by 'aliyun', not 'zhipuai'",
            "r-1",
        ),
        (
            {**GOOD, "parameters": {"prompt": "x", "sizee": "1"}},
            "invalid_parameters",
            "sizee",
            "r-1",
        ),
        ({**GOOD, "timeout_s": 59}, "invalid_request", "timeout_s", "r-1"),
        ({**GOOD, "metadata": {"x": "y" * 5000}}, "invalid_request", "at most 4096", "r-1"),
        ({**GOOD, "parameters": "prompt"}, "invalid_request", "parameters", "r-1"),
        (
            {**GOOD, "reply_topic": "other"},
            "forbidden",
            "reply_topic: 'other' is not allowed",
            "r-1",
        ),
    ],
)
def test_rejections_name_the_problem(
    body: Any, code: str, fragment: str, request_id: str | None
) -> None:
    outcome = rejected(body)
    assert outcome.error.code == code
    assert fragment in outcome.error.message
    assert outcome.request_id == request_id


def test_reply_topic_must_fully_match_the_pattern() -> None:
    pattern = r"shop\.[a-z-]+"
    assert isinstance(
        check({**GOOD, "reply_topic": "shop.video-results"}, reply_topic_pattern=pattern), Accepted
    )
    outcome = rejected({**GOOD, "reply_topic": "shop.results.evil"}, reply_topic_pattern=pattern)
    assert outcome.error.code == "forbidden" and pattern in outcome.error.message


def token(**claims: Any) -> dict[str, str]:
    # Built at collection time: valid long enough for any suite run.
    payload = {"sub": "u-1", "tenant_id": "t-1", "exp": int(time.time()) + 86400, **claims}
    return {"authorization": "Bearer " + jwt.encode(payload, SECRET, algorithm="HS256")}


def test_jwt_identity_fills_user_and_tenant() -> None:
    outcome = check(GOOD, token(), auth_mode="jwt", auth_jwt_secret=SECRET)
    assert isinstance(outcome, Accepted)
    assert (outcome.request.user_id, outcome.request.tenant_id) == ("u-1", "t-1")


@pytest.mark.parametrize(
    ("headers", "body", "code", "fragment"),
    [
        ({}, GOOD, "unauthorized", "authorization header is missing"),
        ({"authorization": "Basic abc"}, GOOD, "unauthorized", "Bearer"),
        (token(exp=int(time.time()) - 10), GOOD, "unauthorized", "expired"),
        (
            {
                "authorization": "Bearer "
                + jwt.encode(
                    {"sub": "u", "exp": 2**31},
                    "another-secret-that-is-long-enough",
                    algorithm="HS256",
                )
            },
            GOOD,
            "unauthorized",
            "not valid",
        ),
        (token(), {**GOOD, "user_id": "someone-else"}, "forbidden", "user_id"),
        (token(), {**GOOD, "tenant_id": "t-2"}, "forbidden", "tenant_id"),
        (token(models=["cogvideox-2"]), GOOD, "forbidden", "does not allow wanx2.1-t2v-turbo"),
    ],
)
def test_jwt_refusals(headers: dict[str, str], body: Any, code: str, fragment: str) -> None:
    outcome = rejected(body, headers=headers, auth_mode="jwt", auth_jwt_secret=SECRET)
    assert outcome.error.code == code and fragment in outcome.error.message
    assert SECRET not in outcome.error.message


def test_jwt_mode_without_a_key_fails_at_start() -> None:
    with pytest.raises(ValueError, match="AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY"):
        Authenticator(settings(auth_mode="jwt"))


# --- issue 8: hostile input -------------------------------------------------------------------


def deep(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"a": value}
    return value


def test_a_request_id_must_fully_match() -> None:
    outcome = rejected({**GOOD, "request_id": "r-1\n"})
    assert outcome.error.code == "invalid_request" and outcome.request_id is None
    assert rejected({**GOOD, "request_id": "r-1\n", "model": "sora"}).request_id is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (b'{"request_id": "r-1", "timeout_s": ' + b"9" * 5000 + b"}", "too long to read"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"request_id": "r-1", "timeout_s": NaN}', "NaN is not a JSON number"),
        (b'{"request_id": "r-1", "timeout_s": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"request_id": "r-1", "timeout_s": 1e999}', "out of range"),
        ('{"a": "é"}'.encode("utf-16"), "not valid UTF-8"),
        (b"", "not valid UTF-8 JSON"),
    ],
)
def test_unreadable_json_is_an_invalid_request(value: bytes, fragment: str) -> None:
    outcome = rejected(value)
    assert outcome.error.code == "invalid_request"
    assert fragment in outcome.error.message, outcome.error.message
    assert len(outcome.error.message) <= 1000


@pytest.mark.parametrize("field", ["metadata", "parameters"])
def test_nesting_is_bounded_at_32_levels(field: str) -> None:
    base = {**GOOD, "metadata": {"x": 1}}
    outcome = rejected({**base, field: deep(33)})
    assert outcome.error.code == "invalid_request"
    assert outcome.error.message == f"{field}: is nested more than 32 levels deep"
    assert outcome.request_id == "r-1"
    if field == "metadata":
        assert isinstance(check({**GOOD, "metadata": deep(32)}), Accepted)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"user_id": "u" * 257}, "user_id: String should have at most 256 characters"),
        ({"tenant_id": "t" * 257}, "tenant_id: String should have at most 256 characters"),
        ({"model": "m" * 129}, "model: String should have at most 128 characters"),
        ({"provider": "p" * 65}, "provider: String should have at most 64 characters"),
        ({"user_id": "\ud800"}, "user_id: "),
        ({"metadata": {"\udfff": 1}}, "metadata: holds text that is not valid Unicode"),
        ({"parameters": {"prompt": "a \ud83d cat"}}, "parameters: holds text"),
        ({"user_id": 7}, "user_id: Input should be a valid string"),
        ({"metadata": {"n": 2**63}}, "metadata: holds an integer beyond 64 bits"),
        ({"metadata": {"a": {"k\u0000": 1}}}, "metadata: holds a key with a NUL character"),
        ({"metadata": {"n": [-(2**63) - 1]}}, "metadata: holds an integer beyond 64 bits"),
        ({"metadata": [1]}, "metadata: Input should be a valid dictionary"),
    ],
)
def test_field_bounds(fields: dict[str, Any], fragment: str) -> None:
    value = json.dumps({**GOOD, **fields}).encode()  # lone surrogates travel as \ud800 escapes
    outcome = rejected(value)
    assert outcome.error.code == "invalid_request"
    assert fragment in outcome.error.message, outcome.error.message
    assert outcome.error.message.encode()  # always valid UTF-8 itself


def test_bounded_lengths_are_accepted() -> None:
    metadata = {"n": [2**63 - 1, -(2**63)], "f": 1.5e308, "nul": "a\u0000b"}
    outcome = check({**GOOD, "user_id": "u" * 256, "tenant_id": "t" * 256, "metadata": metadata})
    assert isinstance(outcome, Accepted)


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("shop results", "is not a Kafka topic name"),
        ("shop/results", "is not a Kafka topic name"),
        ("shöp", "is not a Kafka topic name"),
        (".", "is not a Kafka topic name"),
        ("..", "is not a Kafka topic name"),
        ("__consumer_offsets", "Kafka's internal topics"),
        ("video.cancel", "one of this service's own topics"),
        ("video.status", "one of this service's own topics"),
        ("video.requests.dlq", "one of this service's own topics"),
    ],
)
def test_reply_topics_follow_kafka_rules_and_spare_our_own(topic: str, fragment: str) -> None:
    outcome = rejected({**GOOD, "reply_topic": topic}, reply_topic_pattern=".*")
    assert outcome.error.code == "forbidden"
    assert fragment in outcome.error.message


def test_a_long_reply_topic_is_an_invalid_request() -> None:
    outcome = rejected({**GOOD, "reply_topic": "a" * 250}, reply_topic_pattern=".*")
    assert outcome.error.code == "invalid_request" and "reply_topic" in outcome.error.message
    assert isinstance(check({**GOOD, "reply_topic": "a" * 249}, reply_topic_pattern="a+"), Accepted)


def test_error_messages_are_bounded() -> None:
    outcome = rejected({**GOOD, "parameters": {"prompt": "x", "p" * 100_000: 1}})
    assert outcome.error.code == "invalid_parameters"
    assert len(outcome.error.message) <= 1000


def test_rejections_echo_only_what_passed_validation() -> None:
    base = {**GOOD, "user_id": "u-9", "tenant_id": "t-9", "metadata": {"m": 1}}
    assert rejected({**base, "timeout_s": 1}).echo == {}
    unknown = rejected({**base, "model": "sora"})
    assert unknown.echo == {"user_id": "u-9", "tenant_id": "t-9", "metadata": {"m": 1}}
    late = rejected({**base, "parameters": {"prompt": "x", "nope": 1}})
    assert late.echo["model"] == "wanx2.1-t2v-turbo" and late.echo["provider"] == "aliyun"
    # With a token, the user and tenant are the token's, never the message's.
    forbidden = rejected(
        {**base, "user_id": "victim"}, headers=token(), auth_mode="jwt", auth_jwt_secret=SECRET
    )
    assert forbidden.error.code == "forbidden"
    assert (forbidden.echo["user_id"], forbidden.echo["tenant_id"]) == ("u-1", "t-1")
    assert forbidden.publishes_status


def test_unauthorized_rejections_publish_no_status() -> None:
    outcome = rejected(GOOD, auth_mode="jwt", auth_jwt_secret=SECRET)
    assert outcome.error.code == "unauthorized" and outcome.request_id == "r-1"
    assert outcome.echo == {} and not outcome.publishes_status


def test_jwt_requires_a_subject() -> None:
    headers = {
        "authorization": "Bearer "
        + jwt.encode({"tenant_id": "t-1", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    }
    outcome = rejected(GOOD, headers=headers, auth_mode="jwt", auth_jwt_secret=SECRET)
    assert outcome.error.code == "unauthorized" and "sub" in outcome.error.message
