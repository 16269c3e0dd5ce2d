"""Which tasks an operator command means: filters, as MongoDB queries on the `tasks` collection.

"Stuck" is a task not finished whose status has not changed for a while: its `updated_at` (set
by every status move), or its `created_at` while it has none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.status import TERMINAL, TaskStatus

TERMINAL_VALUES = sorted(str(s) for s in TERMINAL)
STATUS_VALUES = [s.value for s in TaskStatus]
UNFINISHED_VALUES = [s.value for s in TaskStatus if not s.terminal]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_period(text: str) -> timedelta:
    """`30s`, `10m`, `25h`, `2d`, `1w` (also `1.5h`). ValueError naming the forms."""
    text = text.strip()
    try:
        amount = float(text[:-1])
        unit = _UNITS[text[-1].lower()]
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"{text!r}: a period like 30s, 10m, 25h, 2d or 1w") from None
    if amount < 0 or amount != amount:
        raise ValueError(f"{text!r}: a period must be positive")
    return timedelta(seconds=amount * unit)


def check_statuses(statuses: list[str] | tuple[str, ...], *, unfinished_only: bool) -> None:
    """ValueError for a status that does not exist, or (`unfinished_only`) is terminal."""
    allowed = UNFINISHED_VALUES if unfinished_only else STATUS_VALUES
    wrong = [s for s in statuses if s not in allowed]
    if wrong:
        what = "an unfinished status" if unfinished_only else "a status"
        raise ValueError(f"--status {', '.join(wrong)}: {what}, one of {', '.join(allowed)}")


@dataclass(frozen=True)
class TaskQuery:
    statuses: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    tenant: str | None = None
    user: str | None = None
    unchanged_before: datetime | None = None  # stuck: no status change since (unfinished only)
    created_before: datetime | None = None
    unfinished_only: bool = False

    @property
    def empty(self) -> bool:
        """No filter at all (every task, or every unfinished one)."""
        return not (
            self.statuses
            or self.models
            or self.tenant is not None
            or self.user is not None
            or self.unchanged_before is not None
            or self.created_before is not None
        )

    def to_mongo(self) -> dict[str, Any]:
        clauses: list[dict[str, Any]] = []
        if self.statuses:
            clauses.append({"status": {"$in": list(self.statuses)}})
        if self.unfinished_only or self.unchanged_before is not None:
            clauses.append({"status": {"$nin": TERMINAL_VALUES}})
        if self.models:
            clauses.append({"model": {"$in": list(self.models)}})
        if self.tenant is not None:
            clauses.append({"tenant_id": self.tenant})
        if self.user is not None:
            clauses.append({"user_id": self.user})
        if self.created_before is not None:
            clauses.append({"created_at": {"$lt": self.created_before}})
        if self.unchanged_before is not None:
            before = self.unchanged_before
            clauses.append(
                {
                    "$or": [
                        {"updated_at": {"$lt": before}},
                        {"updated_at": None, "created_at": {"$lt": before}},
                    ]
                }
            )
        if not clauses:
            return {}
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def last_change(doc: dict[str, Any]) -> datetime | None:
    value = doc.get("updated_at") or doc.get("created_at")
    return value if isinstance(value, datetime) else None


def summary(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One task as a line of `task list` (JSON-ready)."""
    changed = last_change(doc)
    return {
        "request_id": doc.get("request_id"),
        "task_id": doc.get("_id"),
        "status": doc.get("status"),
        "provider": doc.get("provider"),
        "model": doc.get("model"),
        "user_id": doc.get("user_id"),
        "tenant_id": doc.get("tenant_id"),
        "created_at": _iso(doc.get("created_at")),
        "updated_at": _iso(doc.get("updated_at")),
        "unchanged_s": round((now - changed).total_seconds(), 1) if changed else None,
        "upstream_status": doc.get("upstream_status"),
        "lease_owner": doc.get("lease_owner"),
        "cancel_requested": doc.get("cancel_requested_at") is not None,
        "error_code": (doc.get("error") or {}).get("code"),
    }


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def to_json(doc: Any) -> str:
    """A stored document as JSON: datetimes in ISO 8601, anything else BSON may hold as text."""
    return json.dumps(doc, default=_json_default, ensure_ascii=False, indent=2)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)
