"""Re-driving dead letters, the pure part: which are picked, and the record each becomes. The
dead letters are made by the service's own encoder (consumers.messaging.events)."""

from __future__ import annotations

import base64
import hashlib
import json
import time

import jwt
import pytest

from consumers.admin.redrive import (
    REDRIVEN_FROM,
    Action,
    DeadLetter,
    Plan,
    Selection,
    original_value,
    parse_offset,
    plan,
    read_dead_letter,
)
from consumers.admin.tokens import Bearer, TokenProblem, bearer
from consumers.messaging.events import VALUE_BUDGET
from consumers.settings import Settings
from schemas.errors import ErrorCode
from tests.admin.fakes import dead_letter

SECRET = "admin-test-secret-that-is-32-bytes-long"


def request(request_id: str = "r-1", **extra: object) -> bytes:
    body = {"request_id": request_id, "model": "cogvideox-flash", "parameters": {"prompt": "x"}}
    return json.dumps({**body, **extra}).encode()


def send_plan(
    letter: DeadLetter, token: Bearer | None = None, existing: dict[str, str] | None = None
) -> Plan:
    return plan(letter, request_topic="video.requests", bearer=token, existing=existing or {})


def test_the_original_record_comes_back_whole_with_its_headers_but_no_credentials() -> None:
    value = request("r-1")
    letter = dead_letter(
        7,
        value,
        key=b"r-1",
        headers={"x-trace": "abc", "empty": None, REDRIVEN_FROM: "old/0/1"},
        binary_headers={"blob": b"\xff\x00"},
    )
    assert letter.request_id == "r-1" and letter.code == "unauthorized"
    assert letter.where == "video.requests.dlq/0/107"
    assert letter.original_where == "video.requests[0]@7"
    step = send_plan(letter)
    assert step.action is Action.SEND and step.reason is None
    out = step.outgoing
    assert out is not None
    assert (out.topic, out.key, out.value) == ("video.requests", b"r-1", value)
    assert dict(out.headers) == {
        "x-trace": b"abc",
        "empty": None,
        "blob": b"\xff\x00",
        REDRIVEN_FROM: b"video.requests.dlq/0/107",
    }
    # The dead letter never held credentials; a header named like one is dropped here too.
    forged = letter.event.model_copy(deep=True)  # type: ignore[union-attr]
    forged.original.headers["X-Api-Key"] = "k"
    forged.original.binary_headers["session-token"] = base64.b64encode(b"t").decode()
    again = send_plan(letter.__class__(**{**letter.__dict__, "event": forged}))
    assert again.outgoing is not None
    assert not {"X-Api-Key", "session-token"} & {n for n, _ in again.outgoing.headers}


def test_a_truncated_value_is_refused_naming_why() -> None:
    letter = dead_letter(3, b'{"request_id": "big", "x": "' + b"a" * (VALUE_BUDGET + 10) + b'"}')
    assert letter.event is not None and letter.event.original.value_truncated
    step = send_plan(letter)
    assert step.action is Action.REFUSE and step.outgoing is None
    assert step.reason is not None
    assert "truncated" in step.reason and f"kept {VALUE_BUDGET} of" in step.reason
    assert str(letter.event.original.value_size) in step.reason
    assert letter.request_id == "k"  # the value does not parse: the key stands in


def test_a_base64_value_is_decoded_to_the_original_bytes() -> None:
    value = b"\xff\xfe not utf-8 \x80"
    letter = dead_letter(4, value)
    assert letter.event is not None and letter.event.original.value_encoding == "base64"
    step = send_plan(letter)
    assert step.action is Action.SEND and step.outgoing is not None
    assert step.outgoing.value == value


def test_damaged_dead_letters_are_refused() -> None:
    letter = dead_letter(5, request("r-5"))
    assert letter.event is not None
    bad_hash = letter.event.model_copy(deep=True)
    bad_hash.original.value_sha256 = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(Exception, match="does not match value_sha256"):
        original_value(bad_hash)
    bad_base64 = letter.event.model_copy(deep=True)
    bad_base64.original.value_encoding = "base64"
    bad_base64.original.value = "!!!"
    with pytest.raises(Exception, match="does not decode"):
        original_value(bad_base64)
    bad_header = letter.event.model_copy(deep=True)
    bad_header.original.binary_headers["h"] = "!!!"
    step = send_plan(letter.__class__(**{**letter.__dict__, "event": bad_header}))
    assert step.action is Action.REFUSE and "binary header 'h'" in (step.reason or "")
    unreadable = read_dead_letter("dlq", 1, 2, 3, b"not json")
    assert unreadable.event is None and unreadable.request_id is None
    assert unreadable.code is None and unreadable.original_where is None
    step = send_plan(unreadable)
    assert step.action is Action.REFUSE and "not a dead letter" in (step.reason or "")


def test_a_request_id_with_a_task_now_is_skipped() -> None:
    step = send_plan(dead_letter(6, request("r-6")), existing={"r-6": "running"})
    assert step.action is Action.SKIP and step.reason == "request_id has a task now (running)"


def test_headers_truncated_is_noted() -> None:
    letter = dead_letter(8, request("r-8"), headers={f"h{i}": "v" * 1000 for i in range(80)})
    assert letter.event is not None and letter.event.original.headers_truncated
    step = send_plan(letter)
    assert step.action is Action.SEND and "headers_truncated" in (step.reason or "")
    as_dict = step.as_dict(sent=True)
    assert as_dict["sent"] is True and as_dict["action"] == "send"
    assert REDRIVEN_FROM in as_dict["headers"]


def test_the_operator_token_is_added_and_the_request_must_fit_it() -> None:
    token = Bearer("tok", "u-1", "t-1", False, True)
    fits = send_plan(dead_letter(9, request("r-9", user_id="u-1", tenant_id="t-1")), token)
    assert fits.outgoing is not None
    assert ("authorization", b"Bearer tok") in fits.outgoing.headers
    assert "authorization" not in fits.as_dict()["headers"]
    other_user = send_plan(dead_letter(10, request("r-10", user_id="u-2")), token)
    assert other_user.action is Action.REFUSE
    assert "user_id 'u-2'" in (other_user.reason or "") and "forbidden" in (other_user.reason or "")
    other_tenant = send_plan(dead_letter(11, request("r-11", tenant_id="t-9")), token)
    assert other_tenant.action is Action.REFUSE and "tenant_id 't-9'" in (other_tenant.reason or "")
    assert send_plan(dead_letter(12, b"[1]"), token).action is Action.SEND
    assert send_plan(dead_letter(13, b"\xff"), token).action is Action.SEND


def test_selection_by_time_code_request_id_and_offset() -> None:
    a = dead_letter(1, request("order-1"), code=ErrorCode.UNKNOWN_MODEL, timestamp_ms=10)
    b = dead_letter(2, request("order-2"), partition=2, timestamp_ms=20)
    c = dead_letter(3, request("misc-3"), timestamp_ms=30)
    letters = [a, b, c]
    assert [x for x in letters if Selection().matches(x)] == letters
    assert [x for x in letters if Selection(since_ms=20).matches(x)] == [b, c]
    assert [x for x in letters if Selection(codes=frozenset({"unknown_model"})).matches(x)] == [a]
    assert [x for x in letters if Selection(request_id="order-*").matches(x)] == [a, b]
    by_offset = Selection(offsets=frozenset({(2, 2), (None, 3)}))
    assert [x for x in letters if by_offset.matches(x)] == [b, c]
    assert not Selection(offsets=frozenset({(0, 2)})).matches(b)
    unreadable = read_dead_letter("dlq", 0, 0, 50, b"{}")
    assert not Selection(request_id="*").matches(unreadable)
    assert not Selection(offsets=frozenset({(None, 0)})).matches(unreadable)
    assert parse_offset("3:1042") == (3, 1042) and parse_offset(" 17 ") == (None, 17)
    with pytest.raises(ValueError, match="PARTITION:OFFSET"):
        parse_offset("a:b")


# --- tokens --------------------------------------------------------------------------------


def token(**claims: object) -> str:
    body = {"sub": "ops", "exp": int(time.time()) + 300, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


def test_without_authentication_a_token_is_optional() -> None:
    settings = Settings(auth_mode="none")
    assert bearer(settings, None, admin=True) is None
    given = bearer(settings, "Bearer abc", admin=True)
    assert given is not None and given.header == b"Bearer abc" and not given.verified


def test_under_jwt_the_token_is_required_and_checked_with_the_key_when_there_is_one() -> None:
    settings = Settings(auth_mode="jwt", auth_jwt_secret=SECRET)
    with pytest.raises(TokenProblem, match="--token"):
        bearer(settings, "  ", admin=False)
    admin = bearer(settings, token(scope="video:admin other"), admin=True)
    assert admin is not None and admin.admin and admin.verified and admin.subject == "ops"
    with pytest.raises(TokenProblem, match="scope does not hold video:admin"):
        bearer(settings, token(), admin=True)
    user = bearer(settings, token(sub="u-1", tenant_id="t-1"), admin=False)
    assert user is not None and (user.subject, user.tenant_id) == ("u-1", "t-1")
    with pytest.raises(TokenProblem, match="refused: the token has expired"):
        bearer(settings, token(exp=int(time.time()) - 10), admin=False)
    forged = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "another-secret-" * 3)
    with pytest.raises(TokenProblem, match="not valid"):
        bearer(settings, forged, admin=False)


def test_without_the_key_here_only_the_claims_are_read() -> None:
    settings = Settings(auth_mode="jwt")  # the service's key is not in this environment
    admin = bearer(settings, token(scope=["video:admin"]), admin=True)
    assert admin is not None and admin.admin and not admin.verified
    with pytest.raises(TokenProblem, match="scope does not hold"):
        bearer(settings, token(scope=5), admin=True)
    with pytest.raises(TokenProblem, match="expired"):
        bearer(settings, token(exp=1), admin=False)
    with pytest.raises(TokenProblem, match="no exp"):
        bearer(settings, jwt.encode({"sub": "x"}, SECRET), admin=False)
    with pytest.raises(TokenProblem, match="cannot be read"):
        bearer(settings, "not-a-jwt", admin=False)
