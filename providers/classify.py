"""Vendor error → contract code, as data: each vendor lists its codes, the rest is shared.

The vendor's own code always wins over the HTTP status (BigModel's 1113 "in arrears" comes with
HTTP 429 and is not throttling); a code we do not know falls back to the status. A few codes
mean different things depending on their message (DashScope's `InvalidParameter.DataInspection`
is a bad media format, or a media download that timed out): `by_message` rules match those
first.

Whether a refused submit created a task: a 4xx answer (other than 408) is a refusal, and so is
a throttling code whatever its status (BigModel's 1305 may come with 503). Any other answer
(5xx, 408, an unexpected status) leaves the outcome unknown: neither vendor documents that a
5xx means "not created".
"""

from __future__ import annotations

import re
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
    refused: bool = False  # the code itself says no task was created (throttling), any status
    already_exists: bool = False  # a task with the same client request id exists (BigModel 1231)


REJECTED = Rule(ErrorCode.UPSTREAM_REJECTED, "rejected the request")
MODERATION = Rule(ErrorCode.CONTENT_MODERATION, "refused the content")
QUOTA = Rule(ErrorCode.QUOTA_EXCEEDED, "refused: the account is in arrears or out of quota")
THROTTLED = Rule(
    ErrorCode.UPSTREAM_UNAVAILABLE, "is throttling requests", transient=True, refused=True
)
TIMED_OUT = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "timed out", transient=True)
BROKEN = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "had a server error", transient=True)
BAD_KEY = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "refused the API key", names_key=True)
NO_ACCESS = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "denied the account access", names_key=True)
ODD = Rule(ErrorCode.UPSTREAM_UNAVAILABLE, "answered with an unexpected status")
ACCOUNT = Rule(
    ErrorCode.UPSTREAM_UNAVAILABLE,
    "refused the account (inactive, unknown or locked)",
    names_key=True,
)
ACCOUNT_BUSY = Rule(
    ErrorCode.UPSTREAM_UNAVAILABLE, "could not reach the account for now", transient=True
)
FREE_TIER_ONLY = Rule(
    ErrorCode.QUOTA_EXCEEDED,
    "refused: the model's free tier is used up and the account is set to use the free tier only",
)
POLICY = Rule(ErrorCode.UPSTREAM_REJECTED, "blocked the call by policy")
EXISTS = Rule(
    ErrorCode.UPSTREAM_REJECTED,
    "already has a task with this request_id: it was created by an earlier send of this submit",
    already_exists=True,
)
MEDIA_TIMEOUT = Rule(
    ErrorCode.UPSTREAM_UNAVAILABLE,
    "timed out downloading the media for its inspection",
    transient=True,
    refused=True,
)

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
    # (code, pattern, rule): the rule when the code's message matches the pattern (searched,
    # case-insensitive); tried before `exact`.
    by_message: Sequence[tuple[str, str, Rule]] = ()

    def rule_for(self, code: str | None, message: str | None = None) -> Rule | None:
        if code is None:
            return None
        for known, pattern, rule in self.by_message:
            if code == known and re.search(pattern, message or "", re.IGNORECASE):
                return rule
        if code in self.exact:
            return self.exact[code]
        return next((rule for prefix, rule in self.prefixes if code.startswith(prefix)), None)

    def http_error(
        self,
        status: int,
        headers: Mapping[str, str],
        code: str | None,
        message: str | None,
        upstream_request_id: str | None = None,
    ) -> ProviderError:
        """A non-200 answer. A submit is "not taken" only when the vendor refused it (4xx other
        than 408, or a throttling code); a 5xx or a 408 leaves the outcome unknown."""
        rule = self.rule_for(code, message) or rule_for_status(status)
        detail = f"HTTP {status}" + (f", {code}" if code else "")
        text = f"{self.vendor} {rule.what} ({detail})" + _tail(message)
        if rule.names_key:
            text += f"; check {self.key_env}"
        if upstream_request_id:
            text += f" [{self.vendor} request id {upstream_request_id}]"
        retry_after = parse_retry_after(header(headers, "Retry-After")) if rule.transient else None
        refused = (400 <= status < 500 and status != 408) or rule.refused
        return ProviderError(
            rule.code,
            text,
            upstream_code=code,
            transient=rule.transient,
            retry_after=retry_after,
            submit_not_taken=refused and not rule.already_exists,
            already_exists=rule.already_exists,
            upstream_request_id=upstream_request_id,
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
