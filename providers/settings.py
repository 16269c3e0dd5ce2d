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

A base URL ending in the API path the vendors' docs include (`/api/v1`, `/api/paas/v4`) is
accepted too. DashScope's limits are its documented ones (upstream-apis.md §1.9). BigModel
publishes none (§2.7: they depend on the account's tier); its defaults are deliberately low:
going over costs retried 429s (1302), staying under costs only throughput.
"""

from __future__ import annotations

import os
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
    queries_per_s: float  # per provider; 0 = no limit
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # never printed


ALIYUN_DEFAULTS = VendorSettings("https://dashscope.aliyuncs.com", 2.0, 2, 20.0)
ZHIPUAI_DEFAULTS = VendorSettings("https://open.bigmodel.cn", 1.0, 3, 10.0)


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    aliyun: VendorSettings = ALIYUN_DEFAULTS
    zhipuai: VendorSettings = ZHIPUAI_DEFAULTS
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0  # also write and pool waits
    max_connections: int = 100  # per provider; calls are short and rate-limited

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
    )


def _lookup(env: Mapping[str, Any] | object, name: str) -> str | None:
    """The variable as text; a pydantic `SecretStr` is unwrapped, an empty value is unset."""
    for key in (name, name.lower()):
        value = env.get(key) if isinstance(env, Mapping) else getattr(env, key, None)
        if value is not None:
            secret = getattr(value, "get_secret_value", None)
            text = str(secret() if callable(secret) else value).strip()
            return text or None
    return None
