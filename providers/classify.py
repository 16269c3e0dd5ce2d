"""Vendor error → contract code, as data: each vendor lists its codes, the rest is shared.

The vendor's own code always wins over the HTTP status (BigModel's 1113 "in arrears" comes with
HTTP 429 and is not throttling); a code we do not know falls back to the status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from providers.base import ProviderError
from providers.retry_after import header, parse_retry_after
from schemas.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class Rule:
    code: ErrorCode
    what: str  # completes "<vendor> ...", e.g. "rejected the request"
    transient: bool = False  # the runner may retry the call later
    names_key: bool = False  # our configuration is at fault: name the variable


REJECTED = Rule(ErrorCode.UPSTREAM_REJECTED, "rejected the request")
MODERATION = Rule(ErrorCode.CONTENT_MODERATION, "refused the content")
QUOTA = Rule(ErrorCode.QUOTA_EXCEEDED, "refused: the account is in arrears or out of quota")
THROTTLED = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "is throttling requests", transient=True)
TIMED_OUT = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "timed out", transient=True)
BROKEN = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "had a server error", transient=True)
BAD_KEY = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "refused the API key", names_key=True)
NO_ACCESS = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "denied the account access", names_key=True)
ODD = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "answered with an unexpected status")

# Codes of a FAILED task that keep their meaning; any other code is `upstream_failed`.
_TASK_FAILURE_CODES = (
    ErrorCode.UPSTREAM_REJECTED,
    ErrorCode.CONTENT_MODERATION,
    ErrorCode.QUOTA_EXCEEDED,
)


def rule_for_status(status: int) -> Rule:
    if status == 401:
        return BAD_KEY
    if status == 403:
        return NO_ACCESS
    if status == 408:
        return TIMED_OUT
    if status == 429:
        return THROTTLED
    if status >= 500:
        return BROKEN
    return REJECTED if 400 <= status < 500 else ODD


@dataclass(frozen=True, slots=True)
class ErrorTable:
    vendor: str  # "DashScope"
    key_env: str  # "ALIYUN_API_KEY"
    exact: Mapping[str, Rule]
    prefixes: Sequence[tuple[str, Rule]] = ()  # ("Throttling", THROTTLED) covers "Throttling.*"

    def rule_for(self, code: str | None) -> Rule | None:
        if code is None:
            return None
        if code in self.exact:
            return self.exact[code]
        return next((rule for prefix, rule in self.prefixes if code.startswith(prefix)), None)

    def http_error(
        self, status: int, headers: Mapping[str, str], code: str | None, message: str | None
    ) -> ProviderError:
        """A non-200 answer. The vendor created nothing, except perhaps behind a gateway that
        timed out or lost the backend's answer (502, 504): a timeout whose outcome is unknown."""
        rule = self.rule_for(code) or rule_for_status(status)
        detail = f"HTTP {status}" + (f", {code}" if code else "")
        text = f"{self.vendor} {rule.what} ({detail})" + _tail(message)
        if rule.names_key:
            text += f"; check {self.key_env}"
        retry_after = parse_retry_after(header(headers, "Retry-After")) if rule.transient else None
        return ProviderError(
            rule.code,
            text,
            upstream_code=code,
            transient=rule.transient,
            retry_after=retry_after,
            submit_not_taken=status not in (502, 504),
        )

    def task_failure(self, code: str | None, message: str | None) -> ProviderError:
        """A task the vendor ended as failed."""
        rule = self.rule_for(code)
        outcome = rule.code if rule and rule.code in _TASK_FAILURE_CODES else None
        return ProviderError(
            outcome or ErrorCode.UPSTREAM_FAILED,
            f"{self.vendor} task failed" + (f" ({code})" if code else "") + _tail(message),
            upstream_code=code,
        )

    def bad_answer(self, what: str, body: Any) -> ProviderError:
        """A 200 answer we cannot read: the call may have worked, so it is not 'not taken'."""
        return ProviderError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"{self.vendor} answered without {what}: {str(body)[:200]}",
            transient=True,
        )


def _tail(message: str | None) -> str:
    return f": {str(message)[:300]}" if message else ""
