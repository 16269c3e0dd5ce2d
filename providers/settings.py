"""Provider configuration: keys, base URLs, limits and HTTP timeouts.

The pipeline owns the service's Settings; `create_providers` takes a `ProviderSettings`, or
reads one with `from_env` from `os.environ` or from a settings object's attributes.

Environment variables, per vendor prefix `ALIYUN` / `ZHIPUAI`:

| variable | aliyun default | zhipuai default |
|---|---|---|
| `{P}_API_KEY` (comma-separated list allowed) | unset | unset |
| `{P}_BASE_URL` (API root) | `https://dashscope.aliyuncs.com` | `https://open.bigmodel.cn` |
| `{P}_SUBMITS_PER_S` (per model) | 2 | 1 |
| `{P}_RUNNING_PER_MODEL` (0 = no limit) | 2 | 3 |
| `{P}_QUERIES_PER_S` (status queries and cancels) | 20 | 10 |
| `{P}_KEY_ACCOUNTS` (keys grouped into vendor accounts) | unset: one account | unset |
| `ALIYUN_OSS_ACCOUNT` (the account whose keys submit `oss://` inputs) | the only account | - |

`{P}_KEY_ACCOUNTS` is `name:key,key;name:key`, e.g. `acct-a:sk-1,sk-2;acct-b:sk-3`; a key may be
written as its 12-hex fingerprint instead (as logs show it), so the variable need not repeat
secrets. Every key of `{P}_API_KEY` must be in exactly one account. Submit and query rate limits
are kept per account (the vendors count them per account), and an `oss://` input, a file
uploaded by one Aliyun account for one model, is submitted with a key of `ALIYUN_OSS_ACCOUNT`;
with several accounts and no such setting it is refused before any call, since a request cannot
say which account uploaded it.

A base URL ending in the API path the vendors' docs include (`/api/v1`, `/api/paas/v4`) is
accepted too. DashScope's limits are its documented ones (upstream-apis.md §1.9). BigModel
publishes none (§2.7: they depend on the account's tier); its defaults are deliberately low:
going over costs retried 429s (1302), staying under costs only throughput.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dotenv import dotenv_values

from providers.keys import parse_keys


@dataclass(frozen=True, slots=True)
class VendorSettings:
    base_url: str
    submits_per_s: float  # per model; 0 = no limit
    running_per_model: int  # 0 = no limit
    queries_per_s: float  # per account; 0 = no limit
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # never printed
    # (account, keys or key fingerprints) pairs; empty: all keys are one account. Never printed.
    key_accounts: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), repr=False)
    oss_account: str | None = None  # the account that uploads DashScope oss:// files


ALIYUN_DEFAULTS = VendorSettings("https://dashscope.aliyuncs.com", 2.0, 2, 20.0)
ZHIPUAI_DEFAULTS = VendorSettings("https://open.bigmodel.cn", 1.0, 3, 10.0)


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    aliyun: VendorSettings = ALIYUN_DEFAULTS
    zhipuai: VendorSettings = ZHIPUAI_DEFAULTS
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0  # also write and pool waits
    # Per provider. Calls are short and rate-limited: a small pool serves them (with httpx's own
    # transport, since replaced, a pool of 100 took a fifth of the CPU).
    max_connections: int = 16

    def vendor(self, name: str) -> VendorSettings:
        return {"aliyun": self.aliyun, "zhipuai": self.zhipuai}[name]

    @classmethod
    def from_environment(cls, env_file: str = ".env") -> ProviderSettings:
        """The process environment, over a `.env` file when there is one (as the service's own
        settings read it)."""
        return cls.from_env({**dotenv_values(env_file), **os.environ})

    @classmethod
    def from_env(cls, env: Mapping[str, Any] | object) -> ProviderSettings:
        """Read the variables above from a mapping (`os.environ`; names in upper or lower case)
        or from a settings object's lower-case attributes (`settings.aliyun_api_key`)."""
        return cls(
            aliyun=_vendor_from_env(env, "ALIYUN", ALIYUN_DEFAULTS),
            zhipuai=_vendor_from_env(env, "ZHIPUAI", ZHIPUAI_DEFAULTS),
        )


def _vendor_from_env(
    env: Mapping[str, Any] | object, prefix: str, defaults: VendorSettings
) -> VendorSettings:
    def number(suffix: str, default: float) -> float:
        name = f"{prefix}_{suffix}"
        text = _lookup(env, name)
        if text is None:
            return default
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {text!r}") from None
        if value < 0:
            raise ValueError(f"{name} must be 0 (no limit) or more, got {text!r}")
        return value

    return replace(
        defaults,
        api_keys=tuple(parse_keys(_lookup(env, f"{prefix}_API_KEY"))),
        base_url=_lookup(env, f"{prefix}_BASE_URL") or defaults.base_url,
        submits_per_s=number("SUBMITS_PER_S", defaults.submits_per_s),
        running_per_model=int(number("RUNNING_PER_MODEL", defaults.running_per_model)),
        queries_per_s=number("QUERIES_PER_S", defaults.queries_per_s),
        key_accounts=parse_accounts(
            _lookup(env, f"{prefix}_KEY_ACCOUNTS"), f"{prefix}_KEY_ACCOUNTS"
        ),
        oss_account=_lookup(env, f"{prefix}_OSS_ACCOUNT"),
    )


_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def parse_accounts(text: str | None, name: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`acct-a:sk-1,sk-2;acct-b:sk-3` → (("acct-a", ("sk-1", "sk-2")), ("acct-b", ("sk-3",))).
    Errors name the variable, never a key."""
    if text is None:
        return ()
    accounts: dict[str, tuple[str, ...]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        account, colon, members = part.partition(":")
        account = account.strip()
        if not colon or not _ACCOUNT_NAME.fullmatch(account):
            raise ValueError(
                f"{name} must look like 'acct-a:key1,key2;acct-b:key3' (account names of "
                "letters, digits, '.', '_' and '-')"
            )
        if account in accounts:
            raise ValueError(f"{name} names account {account!r} twice")
        keys = tuple(parse_keys(members))
        if not keys:
            raise ValueError(f"{name}: account {account!r} has no key")
        accounts[account] = keys
    return tuple(accounts.items())


def _lookup(env: Mapping[str, Any] | object, name: str) -> str | None:
    """The variable as text; a pydantic `SecretStr` is unwrapped, an empty value is unset."""
    for key in (name, name.lower()):
        value = env.get(key) if isinstance(env, Mapping) else getattr(env, key, None)
        if value is not None:
            secret = getattr(value, "get_secret_value", None)
            text = str(secret() if callable(secret) else value).strip()
            return text or None
    return None
