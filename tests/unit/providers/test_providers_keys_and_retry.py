"""API key rotation and fingerprints; `Retry-After` parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from providers import ProviderError, ProviderSettings, create_providers, fingerprint
from providers.keys import KeyRing, parse_keys
from providers.retry_after import header, parse_retry_after
from providers.settings import parse_accounts
from schemas.errors import ErrorCode


def test_fingerprint_is_short_stable_hex_and_not_the_key() -> None:
    key_id = fingerprint("sk-abc")
    assert key_id == fingerprint("sk-abc") != fingerprint("sk-abd")
    assert len(key_id) == 12 and int(key_id, 16) >= 0
    assert "abc" not in key_id


def test_parse_keys_from_a_comma_separated_list() -> None:
    assert parse_keys(" sk-1, sk-2,,sk-1 ,") == ["sk-1", "sk-2"]
    assert parse_keys(None) == [] == parse_keys("")


def test_new_tasks_go_round_robin() -> None:
    ring = KeyRing("ALIYUN_API_KEY", ["sk-1", "sk-2", "sk-3"])
    picked = [ring.next() for _ in range(6)]
    assert [key for _, key in picked] == ["sk-1", "sk-2", "sk-3"] * 2
    assert all(key_id == fingerprint(key) for key_id, key in picked)


def test_a_task_keeps_its_key() -> None:
    ring = KeyRing("ALIYUN_API_KEY", ["sk-1", "sk-2"])
    assert ring.get(fingerprint("sk-2")) == "sk-2"


def test_a_removed_key_names_the_variable() -> None:
    ring = KeyRing("ZHIPUAI_API_KEY", ["id.secret"])
    with pytest.raises(ProviderError) as caught:
        ring.get(fingerprint("id.old-secret"))
    assert caught.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert "ZHIPUAI_API_KEY" in caught.value.message
    assert fingerprint("id.old-secret") in caught.value.message


def test_keys_never_show_in_repr() -> None:
    ring = KeyRing("ALIYUN_API_KEY", ["sk-secret-1"])
    assert "sk-secret-1" not in repr(ring)
    assert fingerprint("sk-secret-1") in repr(ring)


def test_an_empty_ring_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="ALIYUN_API_KEY"):
        KeyRing("ALIYUN_API_KEY", " , ")


NOW = datetime(2026, 11, 27, 20, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Fri, 27 Nov 2026 20:00:30 GMT", 30.0),
        ("Fri, 27 Nov 2026 19:59:00 GMT", 0.0),  # in the past
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_header_lookup_ignores_case() -> None:
    assert header({"Retry-After": "5"}, "retry-after") == "5"
    assert header({"retry-after": "5"}, "Retry-After") == "5"
    assert header({}, "Retry-After") is None


def test_all_keys_are_one_account_by_default() -> None:
    ring = KeyRing("ALIYUN_API_KEY", ["sk-1", "sk-2"])
    assert ring.accounts == ("default",)
    assert ring.account_of(fingerprint("sk-1")) == ring.account_of(fingerprint("sk-2"))
    assert ring.key_ids_of("default") == (fingerprint("sk-1"), fingerprint("sk-2"))


def test_keys_grouped_into_accounts_by_key_or_fingerprint() -> None:
    accounts = {"acct-a": ["sk-1", fingerprint("sk-2")], "acct-b": ["sk-3"]}
    ring = KeyRing("ALIYUN_API_KEY", ["sk-1", "sk-2", "sk-3"], accounts)
    assert ring.accounts == ("acct-a", "acct-b")
    assert [ring.account_of(fingerprint(k)) for k in ("sk-1", "sk-2", "sk-3")] == [
        "acct-a",
        "acct-a",
        "acct-b",
    ]
    assert "sk-" not in repr(ring) and "acct-b" in repr(ring)


@pytest.mark.parametrize(
    ("accounts", "problem"),
    [
        ({"a": ["sk-1"]}, "in no account"),
        ({"a": ["sk-1", "sk-2"], "b": ["sk-2"]}, "in two accounts"),
        ({"a": ["sk-1", "sk-2", "sk-9"]}, "not in ALIYUN_API_KEY"),
    ],
)
def test_account_grouping_mistakes_are_named(accounts: dict[str, list[str]], problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        KeyRing("ALIYUN_API_KEY", ["sk-1", "sk-2"], accounts, "ALIYUN_KEY_ACCOUNTS")
    assert "ALIYUN_KEY_ACCOUNTS" in str(caught.value)
    assert "sk-9" not in str(caught.value) and "sk-2'" not in str(caught.value)


def test_a_submit_key_follows_from_request_and_attempt() -> None:
    ring = KeyRing(
        "ALIYUN_API_KEY", ["sk-1", "sk-2", "sk-3"], {"a": ["sk-1"], "b": ["sk-2", "sk-3"]}
    )
    assert ring.pick("order-42", 1) == ring.pick("order-42", 1)
    assert {ring.pick(f"r-{i}", 1)[1] for i in range(60)} == {"sk-1", "sk-2", "sk-3"}
    assert {ring.pick(f"r-{i}", 1, "b")[1] for i in range(60)} == {"sk-2", "sk-3"}
    assert ring.pick("order-42", 3, "a") == (fingerprint("sk-1"), "sk-1")
    with pytest.raises(ValueError):
        ring.pick("order-42", 1, "nobody")


def test_key_accounts_setting() -> None:
    settings = ProviderSettings.from_env(
        {
            "ALIYUN_API_KEY": "sk-1,sk-2,sk-3",
            "ALIYUN_KEY_ACCOUNTS": " acct-a: sk-1 , sk-2 ; acct-b:sk-3; ",
            "ALIYUN_OSS_ACCOUNT": "acct-b",
        }
    )
    assert settings.aliyun.key_accounts == (("acct-a", ("sk-1", "sk-2")), ("acct-b", ("sk-3",)))
    assert settings.aliyun.oss_account == "acct-b"
    assert settings.zhipuai.key_accounts == () and settings.zhipuai.oss_account is None
    assert "sk-1" not in repr(settings)


@pytest.mark.parametrize(
    "value", ["sk-1,sk-2", "a:sk-1;a:sk-2", "bad name:sk-1", "a:", "a: , ;b:sk-2"]
)
def test_a_malformed_key_accounts_setting_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="ALIYUN_KEY_ACCOUNTS") as caught:
        parse_accounts(value, "ALIYUN_KEY_ACCOUNTS")
    assert "sk-1" not in str(caught.value)


def test_an_oss_account_without_keys_is_refused() -> None:
    env = {"ALIYUN_API_KEY": "sk-1", "ALIYUN_OSS_ACCOUNT": "acct-x"}
    with pytest.raises(ValueError, match="ALIYUN_OSS_ACCOUNT"):
        create_providers(env)
