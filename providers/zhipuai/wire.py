"""BigModel's wire format (upstream-apis.md Part 2) as pure functions.

Create: `POST /api/paas/v4/videos/generations` with a flat body (`model`, the parameters, a
`request_id`); query `GET /api/paas/v4/async-result/{id}`; no cancel endpoint, and no way to
find a task by its `request_id` (§2.2 lists only these two). Errors are
`{"error": {"code": "1214", "message": "..."}}` with string codes.

`request_id` "must be unique" per request (§2.3; Z-OAS), and a repeated one is refused with 1231
"You already have a request" (Z-ERR). So each submit attempt of a task sends its own id, derived
from ours and the attempt number (`submit_id`): a new attempt never collides with an earlier
one, and sending the same attempt again is recognised by BigModel instead of paid twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from providers.base import (
    HttpRequest,
    ModelParameters,
    PollResult,
    ProviderError,
    UpstreamState,
    UpstreamVideo,
)
from providers.classify import (
    ACCOUNT,
    ACCOUNT_BUSY,
    BAD_KEY,
    BROKEN,
    EXISTS,
    MODERATION,
    NO_ACCESS,
    POLICY,
    QUOTA,
    REJECTED,
    THROTTLED,
    ErrorTable,
)
from providers.wire_types import (
    TaskPage,
    TaskRef,
    bearer,
    check_schema,
    json_object,
    json_text,
)

VENDOR = "BigModel"
API_ROOT = "/api/paas/v4"

_STATES = {
    "PROCESSING": UpstreamState.RUNNING,  # BigModel does not tell queued from running
    "SUCCESS": UpstreamState.SUCCEEDED,
    "FAIL": UpstreamState.FAILED,
}

ERRORS = ErrorTable(
    VENDOR,
    "ZHIPUAI_API_KEY",
    exact={
        "500": BROKEN,
        **dict.fromkeys(("1000", "1001", "1002", "1003", "1004"), BAD_KEY),
        # Account errors (Z-ERR; they arrive with HTTP 429 but are not throttling): inactive,
        # unknown, locked, locked for irregular activity. Retrying cannot help.
        **dict.fromkeys(("1110", "1111", "1112", "1121"), ACCOUNT),
        "1113": QUOTA,  # in arrears; comes with HTTP 429 but is not throttling
        "1120": ACCOUNT_BUSY,  # "Unable to successfully access your account, try again later"
        **dict.fromkeys(("1210", "1211", "1212", "1213", "1214", "1215", "1261"), REJECTED),
        **dict.fromkeys(("1221", "1222"), REJECTED),  # API offline / does not exist
        "1220": NO_ACCESS,
        "1231": EXISTS,  # "You already have a request: ${request_id}": a repeated request_id
        "1300": POLICY,  # "API call blocked by policy"
        "1301": MODERATION,
        **dict.fromkeys(("1302", "1303", "1305"), THROTTLED),
        "1304": QUOTA,  # daily call limit: retrying within the task's deadline is futile
    },
)


# BigModel documents no length or alphabet for request_id (§2.3, Z-OAS: "provided by the client,
# must be unique"). (inferred) Kept to 64 characters of our own request_id alphabet
# ([A-Za-z0-9._:-]), which any reasonable id field takes.
SUBMIT_ID_MAX = 64


def submit_id(request_id: str, attempt: int) -> str:
    """`{request_id}-a{attempt}`; when that is longer than 64 characters, the request id's head,
    16 hex digits of its SHA-256 and the attempt: `{head}-{sha16}-a{attempt}`. Deterministic, and
    distinct for distinct (request_id, attempt) pairs."""
    if attempt < 1:
        raise ValueError(f"a submit attempt is 1 or more, got {attempt}")
    plain = f"{request_id}-a{attempt}"
    if len(plain) <= SUBMIT_ID_MAX:
        return plain
    tail = f"-{hashlib.sha256(request_id.encode()).hexdigest()[:16]}-a{attempt}"
    return request_id[: SUBMIT_ID_MAX - len(tail)] + tail


def build_submit(
    model: str, params: ModelParameters, request_id: str, api_key: str, attempt: int = 1
) -> HttpRequest:
    """`request_id` on the wire is `submit_id(request_id, attempt)`. `user_id` is not sent:
    BigModel wants 6–128 characters and ours may be shorter."""
    check_schema("zhipuai", model, params)
    body = {
        "model": model,
        **params.model_dump(mode="json", exclude_none=True),
        "request_id": submit_id(request_id, attempt),
    }
    headers = {**bearer(api_key), "Content-Type": "application/json"}
    return HttpRequest("POST", f"{API_ROOT}/videos/generations", headers, body)


def build_query(upstream_task_id: str, api_key: str) -> HttpRequest:
    return HttpRequest(
        "GET", f"{API_ROOT}/async-result/{quote(upstream_task_id, safe='')}", bearer(api_key)
    )


def build_cancel(upstream_task_id: str, api_key: str) -> HttpRequest | None:
    return None  # no cancel endpoint (§2.2)


def build_find(
    model: str, start: datetime, end: datetime, api_key: str, page: int = 1
) -> HttpRequest | None:
    return None  # no task list, no lookup by request_id (§2.2)


def parse_find(status_code: int, headers: Mapping[str, str], body: Any) -> TaskPage:
    raise NotImplementedError("BigModel has no task list")  # never called: build_find is None


def parse_submit(status_code: int, headers: Mapping[str, str], body: Any) -> TaskRef:
    if status_code != 200:
        raise classify_error(status_code, headers, body)
    task_id = json_text(body, "id")  # `id`, not `request_id`, names the task
    if not task_id:
        raise ERRORS.bad_answer("an id", body)
    return TaskRef(task_id, json_text(body, "task_status") or "PROCESSING")


def parse_poll(status_code: int, headers: Mapping[str, str], body: Any) -> PollResult:
    if status_code != 200:
        raise classify_error(status_code, headers, body)
    status = json_text(body, "task_status")
    state = _STATES.get(status) if status else None
    if state is None or status is None:
        raise ERRORS.bad_answer("a known task_status", body)
    if state is UpstreamState.FAILED:
        error = json_object(body, "error")  # undocumented; used when present
        failure = ERRORS.task_failure(json_text(error, "code"), json_text(error, "message"))
        return PollResult(state, status, error=failure)
    if state is UpstreamState.SUCCEEDED:
        return _succeeded(status, body)
    return PollResult(state, status)


def parse_cancel(status_code: int, headers: Mapping[str, str], body: Any) -> bool:
    return False  # never called: there is no cancel endpoint


def classify_error(status_code: int, headers: Mapping[str, str], body: Any) -> ProviderError:
    """`{"error": {"code", "message"}}` (§2.6). BigModel documents no request id in error
    bodies; one is kept when the body has it anyway (top level or in `error`)."""
    error = json_object(body, "error")
    code, message = json_text(error, "code"), json_text(error, "message")
    request_id = json_text(body, "request_id") or json_text(error, "request_id")
    return ERRORS.http_error(status_code, headers, code, message, request_id)


def _succeeded(status: str, body: Any) -> PollResult:
    results = body.get("video_result") if isinstance(body, Mapping) else None
    videos = tuple(
        UpstreamVideo(str(item["url"]), json_text(item, "cover_image_url"))
        for item in (results if isinstance(results, list) else [])
        if isinstance(item, Mapping) and item.get("url")
    )
    if not videos:
        error = ERRORS.task_failure(None, "the task reported SUCCESS without a video_result url")
        return PollResult(UpstreamState.FAILED, status, error=error)
    return PollResult(UpstreamState.SUCCEEDED, status, videos=videos)
