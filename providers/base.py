"""The seam between the task runner and a video vendor.

A provider turns a validated request into the vendor's HTTP calls and the vendor's answers into
our terms. Vendor strings (statuses, codes, field names) stay inside the vendor's module: what
crosses this seam is `UpstreamState`, contract `ErrorCode`s and the vendor's own code/status only
as opaque text for events (`upstream_code`, `upstream_status`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from providers.limits import RunningSlots
from schemas.errors import ErrorCode, ErrorInfo


class ModelParameters(BaseModel):
    """Base of every per-model parameter schema: strict, flat, documented names only.

    `model_dump(mode="json", exclude_none=True)` of a validated instance is what the task store
    keeps, and validating that dump again must give the same instance (normalisation is
    idempotent), because the runner rebuilds the parameters from the store before submitting.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str | None = None

    def resolution_label(self) -> str | None:
        """The resolution class or size echoed in the completed event (e.g. "720P")."""
        return None


class UpstreamState(StrEnum):
    """Where the vendor's task is, in our terms."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (UpstreamState.SUCCEEDED, UpstreamState.FAILED, UpstreamState.CANCELLED)


class ProviderError(Exception):
    """A vendor call that did not give what we asked for, classified into a contract code.

    `transient` errors (throttling, 5xx, timeouts, connection errors) may be retried after
    `retry_after` seconds (from the vendor's `Retry-After` when it sent one). A submit is only
    retried when `submit_not_taken` is true: the vendor certainly created no task (it refused the
    request: a 4xx other than 408, or a documented throttling code). A submit whose outcome is
    unknown (a timeout after the request was sent, any 5xx, a 408) has `submit_not_taken` false:
    `Provider.find_submitted` may resolve it.

    `already_exists`: the vendor refused a submit because a task with the same client request id
    exists already (BigModel 1231): the generation was created (and is billed) by an earlier send
    of the same attempt; it is neither transient nor "not taken".

    `upstream_request_id` is the vendor's own id of the failing call, from its error body, for
    support tickets; `to_error()` carries it into the contract's error object.
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        upstream_code: str | None = None,
        transient: bool = False,
        retry_after: float | None = None,
        submit_not_taken: bool = False,
        already_exists: bool = False,
        upstream_request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.upstream_code = upstream_code
        self.transient = transient
        self.retry_after = retry_after
        self.submit_not_taken = submit_not_taken
        self.already_exists = already_exists
        self.upstream_request_id = upstream_request_id

    def to_error(self) -> ErrorInfo:
        return ErrorInfo(
            code=self.code,
            message=self.message,
            retryable=self.transient,
            upstream_code=self.upstream_code,
            upstream_request_id=self.upstream_request_id,
        )


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One vendor HTTP call, built by the pure wire mapping (no I/O)."""

    method: str
    path: str  # relative to the provider's base URL, e.g. "/api/v1/tasks/abc"
    headers: Mapping[str, str]
    json: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    """The vendor took the task."""

    upstream_task_id: str
    upstream_status: str  # the vendor's status string, opaque (e.g. "PENDING")
    key_id: str  # fingerprint of the API key that submitted it; polls and cancels use the same


@dataclass(frozen=True, slots=True)
class UpstreamVideo:
    url: str
    cover_image_url: str | None = None


@dataclass(frozen=True, slots=True)
class PollResult:
    """One answer to a status query."""

    state: UpstreamState
    upstream_status: str  # the vendor's status string, opaque
    videos: tuple[UpstreamVideo, ...] = ()
    error: ProviderError | None = None  # set when state is FAILED (or CANCELLED by the vendor)
    actual_prompt: str | None = None
    orig_prompt: str | None = None
    usage: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What the registry knows of one model."""

    name: str
    provider: str
    kind: str  # short human description, e.g. "text to video, fast"
    parameters: type[ModelParameters]
    typical_duration_s: float  # the vendor's usual generation time: first poll goes near it


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """Vendor limits the service keeps to; work above them waits its turn."""

    submits_per_s_per_model: float
    running_per_model: int  # 0 = no limit
    queries_per_s: float
    extra: Mapping[str, Any] = field(default_factory=dict)


class Provider(ABC):
    """One vendor. Implementations: `providers.aliyun`, `providers.zhipuai`.

    Submitting is the one paid call. `submit` takes the task's submit `attempt` (1, 2, ... as the
    task store counts them): a vendor that accepts a client request id gets one derived from the
    request id and the attempt, so sending the same attempt again is recognised by the vendor
    (BigModel answers 1231: `ProviderError.already_exists`) and a new attempt never collides with
    an earlier one. When a submit's outcome is unknown (`ProviderError` with `submit_not_taken`
    false and `already_exists` false), `find_submitted` asks the vendor whether that attempt
    created a task.
    """

    name: ClassVar[str]  # "aliyun", "zhipuai"
    key_env: ClassVar[str]  # "ALIYUN_API_KEY"
    models: ClassVar[Mapping[str, ModelSpec]]
    result_host_suffixes: ClassVar[tuple[str, ...]]  # default DOWNLOAD_ALLOWED_HOSTS
    supports_cancel: ClassVar[bool]
    # True when the vendor refuses a repeated client request id: sending the same `attempt`
    # again then creates no second task (BigModel: 1231). False: it would create another one.
    dedupes_submits: ClassVar[bool] = False

    limits: ProviderLimits
    running_slots: RunningSlots  # running tasks per model against `limits`; the runner keeps it

    @abstractmethod
    async def submit(
        self,
        request_id: str,
        model: str,
        parameters: ModelParameters,
        *,
        attempt: int = 1,
        on_send: Callable[[], None] | None = None,
    ) -> Submitted:
        """Create the vendor task (waits for the submit rate limit). Raises ProviderError.

        `attempt` is the task's submit attempt number (1, 2, ...), stored by the caller before
        the call. The key is chosen from `request_id` and `attempt` (and, for `oss://` inputs, the
        account that owns them), so `find_submitted` knows it again.

        `on_send` is called after the wait, right before the request leaves, with nothing
        awaited in between: an exception it raises stops the submit for certain."""

    @abstractmethod
    async def find_submitted(
        self,
        request_id: str,
        model: str,
        attempt: int,
        since: datetime,
        *,
        exclude: Collection[str] = (),
    ) -> Submitted | None:
        """Resolve a submit whose outcome is unknown: the task that `attempt` created, or None
        when the vendor created none (a new attempt is then safe).

        `since` is when the attempt started (before it was sent); `exclude` are upstream task
        ids known to belong to other tasks (they are never adopted, and never make the answer
        ambiguous). Ask once the vendor could no longer be creating the task (a minute after
        the ambiguous answer, say). Raises ProviderError: transient when the lookup itself
        failed and may be tried again; not transient when the outcome cannot be known (several
        candidates, or a vendor without a way to look: BigModel)."""

    def preflight(self, model: str, parameters: ModelParameters) -> None:
        """Refuse, before any call, a request this configuration cannot submit correctly (e.g.
        an `oss://` input when the owning account cannot be known). Raises ProviderError with
        code `invalid_parameters`. `submit` runs it too."""
        return None

    @property
    def accounts(self) -> tuple[str, ...]:
        """The vendor accounts the configured keys belong to."""
        return ()

    def account_of(self, key_id: str) -> str:
        """The vendor account of a configured key (`Submitted.key_id`); KeyError if unknown."""
        raise KeyError(key_id)

    @abstractmethod
    async def poll(self, upstream_task_id: str, key_id: str) -> PollResult:
        """Query the vendor task (waits for the query rate limit). Raises ProviderError."""

    @abstractmethod
    async def cancel(self, upstream_task_id: str, key_id: str) -> bool:
        """Ask the vendor to cancel; False when it cannot (no endpoint, task not cancellable)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close the provider's HTTP client."""
