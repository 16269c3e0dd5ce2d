"""API keys of one provider, grouped into the vendor accounts that own them.

A key is never logged, stored or put in a message; its `key_id` (the first 12 hex digits of its
SHA-256) is what the task store keeps, so that the status queries and the cancel of a task use
the key that submitted it.

Keys belong to vendor accounts (an Aliyun main account, a BigModel account): tasks, limits and
DashScope's temporary `oss://` files are the account's, shared by all its keys. By default all
keys of a provider are one account; `{P}_KEY_ACCOUNTS` (providers/settings.py) groups them
otherwise.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence

from providers.base import ProviderError
from schemas.errors import ErrorCode

DEFAULT_ACCOUNT = "default"


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def parse_keys(value: str | Iterable[str] | None) -> list[str]:
    """A comma-separated list (or a list) of keys: blanks dropped, duplicates once, order kept."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


class KeyRing:
    """The keys of one provider and their accounts.

    `accounts` maps an account name to its keys, each given as the key itself or as its key_id
    (fingerprint), so that the grouping can be written down without repeating secrets. When
    given, every key must be in exactly one account; when not, all keys are one account.
    """

    def __init__(
        self,
        env_name: str,
        keys: Iterable[str],
        accounts: Mapping[str, Sequence[str]] | None = None,
        accounts_env: str = "KEY_ACCOUNTS",
    ) -> None:
        self.env_name = env_name
        self._by_id = {fingerprint(key): key for key in parse_keys(keys)}
        if not self._by_id:
            raise ValueError(f"{env_name} holds no API key")
        self._turn = itertools.cycle(list(self._by_id.items()))
        self._account_of = self._group(accounts or {}, accounts_env)
        self._members: dict[str, tuple[str, ...]] = {}
        for key_id, account in self._account_of.items():
            self._members[account] = (*self._members.get(account, ()), key_id)

    def _group(self, accounts: Mapping[str, Sequence[str]], accounts_env: str) -> dict[str, str]:
        if not accounts:
            return dict.fromkeys(self._by_id, DEFAULT_ACCOUNT)
        owner: dict[str, str] = {}
        for account, members in accounts.items():
            for member in members:
                key_id = member if member in self._by_id else fingerprint(member)
                if key_id not in self._by_id:
                    raise ValueError(
                        f"{accounts_env}: account {account!r} lists a key (fingerprint "
                        f"{key_id}) that is not in {self.env_name}"
                    )
                if owner.setdefault(key_id, account) != account:
                    raise ValueError(
                        f"{accounts_env}: the key with fingerprint {key_id} is in two accounts, "
                        f"{owner[key_id]!r} and {account!r}"
                    )
        missing = [key_id for key_id in self._by_id if key_id not in owner]
        if missing:
            raise ValueError(
                f"{accounts_env}: the keys of {self.env_name} with fingerprints "
                f"{', '.join(missing)} are in no account"
            )
        return {key_id: owner[key_id] for key_id in self._by_id}

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    @property
    def accounts(self) -> tuple[str, ...]:
        """Account names, in the order of their first key."""
        return tuple(self._members)

    def account_of(self, key_id: str) -> str:
        """The account a configured key belongs to (KeyError for a key not configured)."""
        return self._account_of[key_id]

    def key_ids_of(self, account: str) -> tuple[str, ...]:
        return self._members.get(account, ())

    def next(self) -> tuple[str, str]:
        """(key_id, key), round-robin over all keys."""
        return next(self._turn)

    def pick(self, request_id: str, attempt: int, account: str | None = None) -> tuple[str, str]:
        """(key_id, key) for a submit: chosen from `request_id` and `attempt` (spread evenly
        over the keys, of `account` when given), so whoever resolves that submit later knows
        which key and account it used without having stored them."""
        key_ids = self.key_ids_of(account) if account is not None else self.key_ids
        if not key_ids:
            raise ValueError(f"no key of {self.env_name} is in account {account!r}")
        digest = hashlib.sha256(f"{request_id}\x00{attempt}".encode()).digest()
        key_id = key_ids[int.from_bytes(digest[:8], "big") % len(key_ids)]
        return key_id, self._by_id[key_id]

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
        accounts = {name: list(members) for name, members in self._members.items()}
        return f"KeyRing({self.env_name}, accounts={accounts})"
