"""API keys of one provider: several may be configured, tasks remember theirs by fingerprint.

A key is never logged, stored or put in a message; its `key_id` (the first 12 hex digits of its
SHA-256) is what the task store keeps, so that the status queries and the cancel of a task use
the key that submitted it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable

from providers.base import ProviderError
from schemas.errors import ErrorCode


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def parse_keys(value: str | Iterable[str] | None) -> list[str]:
    """A comma-separated list (or a list) of keys: blanks dropped, duplicates once, order kept."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


class KeyRing:
    """Round-robin over the configured keys for new tasks; lookup by fingerprint for old ones."""

    def __init__(self, env_name: str, keys: Iterable[str]) -> None:
        self.env_name = env_name
        self._by_id = {fingerprint(key): key for key in parse_keys(keys)}
        if not self._by_id:
            raise ValueError(f"{env_name} holds no API key")
        self._turn = itertools.cycle(list(self._by_id.items()))

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    def next(self) -> tuple[str, str]:
        """(key_id, key) for a new task."""
        return next(self._turn)

    def get(self, key_id: str) -> str:
        """The key that submitted a task; it may have been removed from the configuration."""
        key = self._by_id.get(key_id)
        if key is None:
            raise ProviderError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"the task was submitted with an API key (fingerprint {key_id}) that is no longer "
                f"in {self.env_name}; add it back to query or cancel the task",
            )
        return key

    def __repr__(self) -> str:
        return f"KeyRing({self.env_name}, key_ids={list(self._by_id)})"
