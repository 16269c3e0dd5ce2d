"""Fault rules: which request gets which misbehaviour, set at runtime through `/_sim/faults`.

A rule matches on vendor, route, model and a prompt substring; `times` counts how many matching
requests it still applies to (null: every one). Each vendor module turns a rule into its own
error body; this module only stores, validates and matches rules.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

ROUTES = ("submit", "query", "cancel", "list", "download")
VENDORS = ("dashscope", "bigmodel", "any")
EVERYWHERE = frozenset(ROUTES)

# The request ends at once with an error (or no answer at all, for "reset").
ANSWERS = frozenset({"403", "429", "500", "503", "504", "reset", "arrearage", "moderation"})
# Set at submit; they change what the created task does later.
MARKS = frozenset({"fail_task", "unknown", "expired_url"})
# Change how the result file is served.
DOWNLOADS = frozenset({"truncate", "not_mp4", "slow_download", "expired_url"})

ACTION_ROUTES: dict[str, frozenset[str]] = {
    **{action: EVERYWHERE for action in ("403", "429", "500", "503", "504", "reset", "delay")},
    "arrearage": frozenset({"submit"}),
    "moderation": frozenset({"submit"}),
    "fail_task": frozenset({"submit"}),
    "unknown": frozenset({"submit"}),
    "expired_url": frozenset({"submit", "download"}),
    "truncate": frozenset({"download"}),
    "not_mp4": frozenset({"download"}),
    "slow_download": frozenset({"download"}),
}
NEEDS_SECONDS = frozenset({"delay", "slow_download"})


@dataclass
class FaultRule:
    action: str
    route: str
    vendor: str = "any"
    model: str | None = None
    prompt_contains: str | None = None
    times: int | None = None  # None: always
    retry_after: float | None = None  # 429/503: sends Retry-After
    should_retry: bool | None = None  # BigModel: sends x-should-retry
    seconds: float | None = None  # delay, slow_download
    code: str | None = None  # overrides the vendor code (429, fail_task, ...)
    message: str | None = None
    stage: str = "before"  # submit: "after" creates (and bills) the task, then misbehaves
    content_type: str | None = None  # not_mp4
    id: int = 0
    applied: int = 0

    def matches(self, vendor: str, route: str, model: str | None, prompt: str | None) -> bool:
        return (
            self.route == route
            and self.vendor in ("any", vendor)
            and (self.model is None or self.model == model)
            and (self.prompt_contains is None or self.prompt_contains in (prompt or ""))
        )

    def headers(self) -> dict[str, str]:
        """Retry-After (seconds; fractions allowed for fast tests) and x-should-retry."""
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = f"{self.retry_after:g}"
        if self.should_retry is not None:
            headers["x-should-retry"] = "true" if self.should_retry else "false"
        return headers

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_rule(data: Any, rule_id: int) -> FaultRule:
    """Build a rule from control-API JSON; ValueError names what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("a fault rule is a JSON object")
    allowed = {f.name for f in dataclasses.fields(FaultRule)} - {"id", "applied"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown fault rule keys {unknown}; allowed: {sorted(allowed)}")
    action = str(data.get("action"))
    if action not in ACTION_ROUTES:
        raise ValueError(f"unknown action {action!r}; allowed: {sorted(ACTION_ROUTES)}")
    default_route = "download" if ACTION_ROUTES[action] == {"download"} else "submit"
    rule = FaultRule(**{**data, "route": data.get("route", default_route)}, id=rule_id)
    _check(rule)
    return rule


def _check(rule: FaultRule) -> None:
    if rule.route not in ACTION_ROUTES[rule.action]:
        raise ValueError(
            f"action {rule.action!r} applies to routes {sorted(ACTION_ROUTES[rule.action])}"
        )
    if rule.vendor not in VENDORS:
        raise ValueError(f"vendor must be one of {VENDORS}")
    if rule.times is not None and (not isinstance(rule.times, int) or rule.times < 1):
        raise ValueError("times must be a positive integer or null")
    if rule.action in NEEDS_SECONDS and rule.seconds is None:
        raise ValueError(f"action {rule.action!r} needs seconds")
    for name in ("seconds", "retry_after"):
        value = getattr(rule, name)
        if value is not None and (not isinstance(value, int | float) or value < 0):
            raise ValueError(f"{name} must be a number >= 0 or null")
    for name in ("model", "prompt_contains", "code", "message", "content_type"):
        if not isinstance(getattr(rule, name), str | None):
            raise ValueError(f"{name} must be a string or null")
    if not isinstance(rule.should_retry, bool | None):
        raise ValueError("should_retry must be a boolean or null")
    if rule.stage not in ("before", "after"):
        raise ValueError("stage must be 'before' or 'after'")


class FaultBook:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)
        self.applied = 0

    def add(self, data: Any) -> FaultRule:
        rule = parse_rule(data, next(self._ids))
        self._rules.append(rule)
        return rule

    def take(
        self,
        actions: Collection[str],
        vendor: str,
        route: str,
        model: str | None = None,
        prompt: str | None = None,
        stage: str | None = None,
    ) -> FaultRule | None:
        """The first live rule for this request among `actions`, counting one use of it."""
        for rule in self._rules:
            if rule.action not in actions or (stage is not None and rule.stage != stage):
                continue
            if rule.matches(vendor, route, model, prompt):
                self._use(rule)
                return rule
        return None

    def _use(self, rule: FaultRule) -> None:
        rule.applied += 1
        self.applied += 1
        if rule.times is not None:
            rule.times -= 1
            if rule.times == 0:
                self._rules.remove(rule)

    def rules(self) -> list[FaultRule]:
        return list(self._rules)

    def remove(self, rule_id: int) -> bool:
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        return len(self._rules) < before

    def clear(self) -> None:
        self._rules.clear()
        self.applied = 0
