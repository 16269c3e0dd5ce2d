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
