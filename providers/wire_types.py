"""The shape every vendor's `wire` module has: pure functions from our terms to HTTP and back.

A vendor's `client.py` hands its `wire` module to `HttpProvider`, which does the I/O; the
functions themselves never touch the network, so they are tested against the JSON examples of
upstream-apis.md directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from providers.base import HttpRequest, ModelParameters, PollResult, ProviderError
from providers.catalog import MODELS


@dataclass(frozen=True, slots=True)
class TaskRef:
    """What a successful create answer tells us."""

    upstream_task_id: str
    upstream_status: str


@dataclass(frozen=True, slots=True)
class ListedTask:
    """One task of the vendor's task list; fields the answer did not have are None."""

    upstream_task_id: str
    upstream_status: str | None
    model: str | None
    created: datetime | None


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of the vendor's task list."""

    tasks: tuple[ListedTask, ...]
    pages: int  # how many pages the whole list has


class Wire(Protocol):
    VENDOR: str  # the vendor's name in messages: "DashScope"
    API_ROOT: str  # path prefix of every endpoint, e.g. "/api/v1"

    def build_submit(
        self,
        model: str,
        params: ModelParameters,
        request_id: str,
        api_key: str,
        attempt: int = 1,
    ) -> HttpRequest: ...

    def submit_id(self, request_id: str, attempt: int) -> str | None:
        """The client request id sent for this attempt; None when the vendor takes none."""

    def build_find(
        self, model: str, start: datetime, end: datetime, api_key: str, page: int
    ) -> HttpRequest | None:
        """One page of the tasks of `model` created between `start` and `end`; None when the
        vendor has no way to list them."""

    def parse_find(self, status_code: int, headers: Mapping[str, str], body: Any) -> TaskPage:
        """The page, or raises ProviderError."""

    def build_query(self, upstream_task_id: str, api_key: str) -> HttpRequest: ...

    def build_cancel(self, upstream_task_id: str, api_key: str) -> HttpRequest | None:
        """None: the vendor has no cancel endpoint."""

    def parse_submit(self, status_code: int, headers: Mapping[str, str], body: Any) -> TaskRef:
        """The created task, or raises ProviderError."""

    def parse_poll(self, status_code: int, headers: Mapping[str, str], body: Any) -> PollResult:
        """The task's state, or raises ProviderError (the query itself failed)."""

    def parse_cancel(self, status_code: int, headers: Mapping[str, str], body: Any) -> bool:
        """True when cancelled, False when the task cannot be; raises on other failures."""

    def classify_error(
        self, status_code: int, headers: Mapping[str, str], body: Any
    ) -> ProviderError: ...


def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def json_object(body: Any, name: str) -> Mapping[str, Any]:
    """`body[name]` when it is an object, else {} (vendors' answers are not trusted to be whole)."""
    value = body.get(name) if isinstance(body, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def json_text(body: Any, name: str) -> str | None:
    """`body[name]` as text (BigModel's codes may be numbers), None when absent."""
    value = body.get(name) if isinstance(body, Mapping) else None
    return None if value is None else str(value)


def check_schema(provider: str, model: str, params: ModelParameters) -> None:
    """A wrong pairing would build a wrong body for a paid endpoint: refuse it loudly."""
    spec = MODELS.get(model)
    if spec is None or spec.provider != provider or type(params) is not spec.parameters:
        raise TypeError(f"{type(params).__name__} are not the parameters of {provider} {model!r}")
