"""DashScope's wire format (upstream-apis.md Part 1) as pure functions.

Create: `POST /api/v1/services/aigc/{video-generation|image2video}/video-synthesis` with
`{"model", "input", "parameters"}`; query `GET /api/v1/tasks/{id}`; cancel
`POST /api/v1/tasks/{id}/cancel` (PENDING tasks only); list `GET /api/v1/tasks?...` (§1.2, the
SDK's `list()`: `page_no`, `page_size`, `model_name`, `start_time`/`end_time` as
`YYYYMMDDhhmmss`). Errors are `{"code", "message", "request_id"}` at the top level; a FAILED
task carries them in `output`.

The task list's answer is not in upstream-apis.md (the SDK hands the JSON back as it is). Read
here, tolerantly (inferred from DashScope's older async-task page): `data` is a list of tasks
with `task_id`, `status` (or `task_status`), `model_name` and `gmt_create` (epoch milliseconds;
or `submit_time` in the query's `YYYY-MM-DD HH:mm:ss.SSS` Beijing time), plus `total_page`.
Its times are taken as Beijing time (UTC+8), like every DashScope time string (§1.6).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

from providers.base import (
    HttpRequest,
    ModelParameters,
    PollResult,
    ProviderError,
    UpstreamState,
    UpstreamVideo,
)
from providers.classify import (
    BAD_KEY,
    BROKEN,
    FREE_TIER_ONLY,
    MEDIA_TIMEOUT,
    MODERATION,
    NO_ACCESS,
    QUOTA,
    REJECTED,
    THROTTLED,
    TIMED_OUT,
    ErrorTable,
)
from providers.wire_types import (
    ListedTask,
    TaskPage,
    TaskRef,
    bearer,
    check_schema,
    json_object,
    json_text,
)
from schemas.errors import ErrorCode

VENDOR = "DashScope"
API_ROOT = "/api/v1"
_VIDEO_GENERATION = f"{API_ROOT}/services/aigc/video-generation/video-synthesis"
_IMAGE2VIDEO = f"{API_ROOT}/services/aigc/image2video/video-synthesis"  # kf2v only (§1.2)

CREATE_PATHS: Mapping[str, str] = {
    "wanx2.1-t2v-turbo": _VIDEO_GENERATION,
    "wanx2.1-t2v-plus": _VIDEO_GENERATION,
    "wanx2.1-i2v-turbo": _VIDEO_GENERATION,
    "wanx2.1-i2v-plus": _VIDEO_GENERATION,
    "wanx2.1-kf2v-plus": _IMAGE2VIDEO,
}

# Flat parameter names that go in `input`; all others go in `parameters`.
_INPUT_FIELDS = (
    "prompt",
    "negative_prompt",
    "img_url",
    "first_frame_url",
    "last_frame_url",
    "template",
)
_URL_FIELDS = ("img_url", "first_frame_url", "last_frame_url")

_STATES = {
    "PENDING": UpstreamState.QUEUED,
    "RUNNING": UpstreamState.RUNNING,
    "SUSPENDED": UpstreamState.RUNNING,  # older docs and the SDK: keep polling
    "SUCCEEDED": UpstreamState.SUCCEEDED,
    "FAILED": UpstreamState.FAILED,
    "CANCELED": UpstreamState.CANCELLED,
    "UNKNOWN": UpstreamState.FAILED,  # expired (24 h) or never existed: never polled for ever
}

ERRORS = ErrorTable(
    VENDOR,
    "ALIYUN_API_KEY",
    exact={
        "DataInspectionFailed": MODERATION,
        "IPInfringementSuspect": MODERATION,
        "InvalidParameter.DataInspection": REJECTED,  # media format, not content
        "invalid_parameter_error": REJECTED,
        "InvalidURL": REJECTED,
        "UnsupportedOperation": REJECTED,
        "Arrearage": QUOTA,
        # 403, "The free tier of the model has been exhausted…" (issue 9; not in upstream-apis.md):
        # quota, not a bad key.
        "AllocationQuota.FreeTierOnly": FREE_TIER_ONLY,
        "InvalidApiKey": BAD_KEY,
        "RequestTimeOut": TIMED_OUT,
    },
    # "InvalidParameter.DataInspection" also says "Download the media resource timed out during
    # the data inspection process." (issue 9): the image host was slow, not the image wrong.
    by_message=(("InvalidParameter.DataInspection", r"time[sd]? ?out", MEDIA_TIMEOUT),),
    prefixes=(
        ("InvalidParameter", REJECTED),
        ("BadRequest", REJECTED),
        ("Throttling", THROTTLED),
        ("AccessDenied", NO_ACCESS),
        ("InternalError", BROKEN),
    ),
)


BEIJING = timezone(timedelta(hours=8))
LIST_PAGE_SIZE = 100  # (inferred) the largest page asked for; the SDK's default is 10


def build_submit(
    model: str, params: ModelParameters, request_id: str, api_key: str, attempt: int = 1
) -> HttpRequest:
    """DashScope has no field for the client's id, so neither `request_id` nor `attempt` is
    sent: a submit whose outcome is unknown is resolved with the task list (`build_find`)."""
    check_schema("aliyun", model, params)
    fields = params.model_dump(mode="json", exclude_none=True)
    body = {
        "model": model,
        "input": {k: v for k, v in fields.items() if k in _INPUT_FIELDS},
        "parameters": {k: v for k, v in fields.items() if k not in _INPUT_FIELDS},
    }
    headers = {**bearer(api_key), "Content-Type": "application/json", "X-DashScope-Async": "enable"}
    if any(str(fields.get(name, "")).startswith("oss://") for name in _URL_FIELDS):
        headers["X-DashScope-OssResourceResolve"] = "enable"
    return HttpRequest("POST", CREATE_PATHS[model], headers, body)


def submit_id(request_id: str, attempt: int) -> str | None:
    return None  # no client request id on the wire


def build_find(
    model: str, start: datetime, end: datetime, api_key: str, page: int = 1
) -> HttpRequest:
    """`GET /api/v1/tasks` filtered by model and creation time (whole seconds, Beijing time:
    `start` rounded down, `end` up, so the window only grows)."""
    query = {
        "page_no": page,
        "page_size": LIST_PAGE_SIZE,
        "model_name": model,
        "start_time": _list_time(start, up=False),
        "end_time": _list_time(end, up=True),
    }
    return HttpRequest("GET", f"{API_ROOT}/tasks?{urlencode(query)}", bearer(api_key))


def parse_find(status_code: int, headers: Mapping[str, str], body: Any) -> TaskPage:
    if status_code != 200:
        raise classify_error(status_code, headers, body)
    items = body.get("data") if isinstance(body, Mapping) else None
    if items is None:
        items = json_object(body, "output").get("data")
    if not isinstance(items, list):
        raise ERRORS.bad_answer("a task list (data)", body)
    tasks = []
    for item in items:
        task_id = json_text(item, "task_id")
        if not task_id:
            raise ERRORS.bad_answer("a task_id in every listed task", body)
        status = json_text(item, "status") or json_text(item, "task_status")
        model = json_text(item, "model_name") or json_text(item, "model")
        tasks.append(ListedTask(task_id, status, model, _created(item)))
    pages = body.get("total_page") if isinstance(body, Mapping) else None
    return TaskPage(tuple(tasks), pages if isinstance(pages, int) and pages > 0 else 1)


def _list_time(moment: datetime, *, up: bool) -> str:
    local = moment.astimezone(BEIJING)
    if up and local.microsecond:
        local += timedelta(seconds=1)
    return local.strftime("%Y%m%d%H%M%S")


def _created(item: Any) -> datetime | None:
    """When a listed task was created: `gmt_create` (epoch ms) or `submit_time` (Beijing)."""
    millis = item.get("gmt_create") if isinstance(item, Mapping) else None
    if isinstance(millis, int | float) and not isinstance(millis, bool) and math.isfinite(millis):
        try:
            return datetime.fromtimestamp(millis / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = json_text(item, "submit_time")
    if text:
        try:
            return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=BEIJING)
        except ValueError:
            return None
    return None


def build_query(upstream_task_id: str, api_key: str) -> HttpRequest:
    return HttpRequest("GET", _task_path(upstream_task_id), bearer(api_key))


def build_cancel(upstream_task_id: str, api_key: str) -> HttpRequest:
    return HttpRequest("POST", _task_path(upstream_task_id) + "/cancel", bearer(api_key))


def parse_submit(status_code: int, headers: Mapping[str, str], body: Any) -> TaskRef:
    if status_code != 200:
        raise classify_error(status_code, headers, body)
    output = json_object(body, "output")
    task_id = output.get("task_id")
    if not isinstance(task_id, str) or not task_id:
        raise ERRORS.bad_answer("output.task_id", body)
    return TaskRef(task_id, str(output.get("task_status") or "PENDING"))


def parse_poll(status_code: int, headers: Mapping[str, str], body: Any) -> PollResult:
    if status_code != 200:
        raise classify_error(status_code, headers, body)
    output = json_object(body, "output")
    status = output.get("task_status")
    state = _STATES.get(status) if isinstance(status, str) else None
    if state is None or not isinstance(status, str):
        raise ERRORS.bad_answer("a known output.task_status", body)
    if state is UpstreamState.SUCCEEDED:
        return _succeeded(status, output, body)
    return PollResult(state, status, error=_failure(status, output))


def parse_cancel(status_code: int, headers: Mapping[str, str], body: Any) -> bool:
    """Only PENDING tasks can be cancelled; DashScope refuses the others with a 4xx."""
    if status_code == 200:
        return True
    error = classify_error(status_code, headers, body)
    if error.code is ErrorCode.UPSTREAM_REJECTED:
        return False
    raise error


def classify_error(status_code: int, headers: Mapping[str, str], body: Any) -> ProviderError:
    """`{"code", "message", "request_id"}` (§1.8); `request_id` is kept for support tickets."""
    code = json_text(body, "code")
    message, request_id = json_text(body, "message"), json_text(body, "request_id")
    return ERRORS.http_error(status_code, headers, code, message, request_id)


def _succeeded(status: str, output: Mapping[str, Any], body: Any) -> PollResult:
    url = output.get("video_url")
    if not isinstance(url, str) or not url:
        error = ERRORS.task_failure(None, "the task SUCCEEDED without a video_url")
        return PollResult(UpstreamState.FAILED, status, error=error)
    usage = json_object(body, "usage") or None
    return PollResult(
        UpstreamState.SUCCEEDED,
        status,
        videos=(UpstreamVideo(url),),
        actual_prompt=json_text(output, "actual_prompt"),
        orig_prompt=json_text(output, "orig_prompt"),
        usage=usage,
    )


def _failure(status: str, output: Mapping[str, Any]) -> ProviderError | None:
    if status == "FAILED":
        return ERRORS.task_failure(json_text(output, "code"), json_text(output, "message"))
    if status == "UNKNOWN":
        return ProviderError(
            ErrorCode.UPSTREAM_FAILED,
            "DashScope does not know the task (UNKNOWN): it expired after 24 h or never existed",
            upstream_code="UNKNOWN",
        )
    if status == "CANCELED":
        return ProviderError(
            ErrorCode.CANCELLED, "the DashScope task was cancelled", upstream_code="CANCELED"
        )
    return None


def _task_path(upstream_task_id: str) -> str:
    return f"{API_ROOT}/tasks/{quote(upstream_task_id, safe='')}"
