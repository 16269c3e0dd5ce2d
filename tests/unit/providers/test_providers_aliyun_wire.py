"""DashScope wire mapping, against the documented bodies and the JSON examples of
upstream-apis.md Part 1 (no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

from providers import ProviderError, UpstreamState, validate_parameters
from providers.aliyun import wire
from providers.wire_types import ListedTask
from schemas.errors import ErrorCode
from simulator.imagegen import data_uri, jpeg

KEY = "sk-test-0123456789"
IMG = "https://example.com/cat.png"
VIDEO_GENERATION = "/api/v1/services/aigc/video-generation/video-synthesis"
IMAGE2VIDEO = "/api/v1/services/aigc/image2video/video-synthesis"
CREATE_HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "Content-Type": "application/json",
    "X-DashScope-Async": "enable",
}


def submit(model: str, raw: dict[str, Any]) -> Any:
    return wire.build_submit(model, validate_parameters(model, raw), "order-42", KEY)


@pytest.mark.parametrize(
    ("model", "raw", "path", "body"),
    [
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "一只小猫在月光下奔跑", "size": "1280*720", "prompt_extend": True},
            VIDEO_GENERATION,
            {
                "model": "wanx2.1-t2v-turbo",
                "input": {"prompt": "一只小猫在月光下奔跑"},
                "parameters": {"size": "1280*720", "prompt_extend": True},
            },
        ),
        (
            "wanx2.1-t2v-plus",
            {
                "prompt": "a cat",
                "negative_prompt": "dogs",
                "resolution": "720P",
                "duration": "5",
                "seed": -1,
                "watermark": False,
            },
            VIDEO_GENERATION,
            {
                "model": "wanx2.1-t2v-plus",
                "input": {"prompt": "a cat", "negative_prompt": "dogs"},
                "parameters": {"size": "1280*720", "duration": 5, "watermark": False},
            },
        ),
        (
            "wanx2.1-i2v-turbo",
            {"prompt": "runs", "img_url": IMG, "resolution": "480P", "duration": 3, "seed": 0},
            VIDEO_GENERATION,
            {
                "model": "wanx2.1-i2v-turbo",
                "input": {"prompt": "runs", "img_url": IMG},
                "parameters": {"resolution": "480P", "duration": 3, "seed": 0},
            },
        ),
        (
            "wanx2.1-i2v-plus",
            {"img_url": IMG, "template": "flying"},
            VIDEO_GENERATION,
            {
                "model": "wanx2.1-i2v-plus",
                "input": {"img_url": IMG, "template": "flying"},
                "parameters": {},
            },
        ),
        (
            "wanx2.1-kf2v-plus",
            {
                "prompt": "p",
                "first_frame_url": IMG,
                "last_frame_url": "https://example.com/end.png",
                "resolution": "720P",
                "prompt_extend": False,
            },
            IMAGE2VIDEO,
            {
                "model": "wanx2.1-kf2v-plus",
                "input": {
                    "prompt": "p",
                    "first_frame_url": IMG,
                    "last_frame_url": "https://example.com/end.png",
                },
                "parameters": {"resolution": "720P", "prompt_extend": False},
            },
        ),
    ],
)
def test_submit_is_the_documented_request(
    model: str, raw: dict[str, Any], path: str, body: Any
) -> None:
    request = submit(model, raw)
    assert (request.method, request.path) == ("POST", path)
    assert request.headers == CREATE_HEADERS
    assert request.json == body


def test_kf2v_never_carries_vace_fields() -> None:
    request = submit("wanx2.1-kf2v-plus", {"first_frame_url": IMG, "template": "hanfu-1"})
    assert request.json == {
        "model": "wanx2.1-kf2v-plus",
        "input": {"first_frame_url": IMG, "template": "hanfu-1"},
        "parameters": {},
    }


def test_text_to_video_sends_size_never_resolution() -> None:
    request = submit("wanx2.1-t2v-turbo", {"prompt": "p", "resolution": "480P"})
    assert request.json is not None
    assert request.json["parameters"] == {"size": "832*480"}


@pytest.mark.parametrize(
    ("model", "raw"),
    [
        ("wanx2.1-i2v-turbo", {"img_url": "oss://dashscope-instant/abc/cat.png"}),
        (
            "wanx2.1-kf2v-plus",
            {"first_frame_url": IMG, "last_frame_url": "oss://dashscope-instant/e.png"},
        ),
    ],
)
def test_oss_urls_ask_dashscope_to_resolve_them(model: str, raw: dict[str, Any]) -> None:
    headers = submit(model, raw).headers
    assert headers == {**CREATE_HEADERS, "X-DashScope-OssResourceResolve": "enable"}


def test_data_uris_are_passed_through() -> None:
    uri = data_uri(jpeg(320, 240), "image/jpeg")
    request = submit("wanx2.1-i2v-turbo", {"img_url": uri})
    assert request.json is not None
    assert request.json["input"] == {"img_url": uri}
    assert "X-DashScope-OssResourceResolve" not in request.headers


def test_parameters_of_another_model_are_refused() -> None:
    params = validate_parameters("wanx2.1-i2v-turbo", {"img_url": IMG})
    with pytest.raises(TypeError):
        wire.build_submit("wanx2.1-kf2v-plus", params, "r", KEY)
    with pytest.raises(TypeError):
        wire.build_submit("cogvideox-2", params, "r", KEY)


def test_query_and_cancel_requests() -> None:
    query = wire.build_query("0385dc79-5ff8", KEY)
    assert (query.method, query.path, query.json) == ("GET", "/api/v1/tasks/0385dc79-5ff8", None)
    assert query.headers == {"Authorization": f"Bearer {KEY}"}
    cancel = wire.build_cancel("0385dc79-5ff8", KEY)
    assert (cancel.method, cancel.path, cancel.json) == (
        "POST",
        "/api/v1/tasks/0385dc79-5ff8/cancel",
        None,
    )
    assert cancel.headers == {"Authorization": f"Bearer {KEY}"}


def test_a_task_id_cannot_escape_its_path() -> None:
    assert wire.build_query("../uploads?x=1", KEY).path == "/api/v1/tasks/..%2Fuploads%3Fx%3D1"


# §1.5
def test_parse_create_response() -> None:
    body = {
        "output": {"task_status": "PENDING", "task_id": "0385dc79-5ff8-4d82-bcb6-xxxxxx"},
        "request_id": "4909100c-7b5a-9f92-bfe5-xxxxxx",
    }
    task = wire.parse_submit(200, {}, body)
    assert (task.upstream_task_id, task.upstream_status) == (
        "0385dc79-5ff8-4d82-bcb6-xxxxxx",
        "PENDING",
    )


def test_a_create_error_is_classified_and_not_taken() -> None:
    body = {"code": "InvalidApiKey", "message": "No API-key provided.", "request_id": "7438d53d"}
    with pytest.raises(ProviderError) as caught:
        wire.parse_submit(401, {}, body)
    error = caught.value
    assert (error.code, error.upstream_code, error.transient) == (
        ErrorCode.UPSTREAM_UNAVAILABLE,
        "InvalidApiKey",
        False,
    )
    assert error.submit_not_taken
    assert "ALIYUN_API_KEY" in error.message
    assert KEY not in error.message


def test_a_200_without_task_id_has_an_unknown_outcome() -> None:
    with pytest.raises(ProviderError) as caught:
        wire.parse_submit(200, {}, {"request_id": "x"})
    assert caught.value.transient
    assert not caught.value.submit_not_taken


# §1.6
def test_parse_running() -> None:
    body = {
        "request_id": "r",
        "output": {
            "task_id": "t",
            "task_status": "RUNNING",
            "submit_time": "2025-04-18 10:36:58.394",
            "scheduled_time": "2025-04-18 10:37:13.802",
        },
    }
    result = wire.parse_poll(200, {}, body)
    assert (result.state, result.upstream_status, result.error) == (
        UpstreamState.RUNNING,
        "RUNNING",
        None,
    )


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("PENDING", UpstreamState.QUEUED),
        ("RUNNING", UpstreamState.RUNNING),
        ("SUSPENDED", UpstreamState.RUNNING),
    ],
)
def test_parse_non_terminal_statuses(status: str, state: UpstreamState) -> None:
    result = wire.parse_poll(200, {}, {"output": {"task_id": "t", "task_status": status}})
    assert result.state is state
    assert not result.state.terminal


def test_parse_succeeded() -> None:
    body = {
        "request_id": "ec016349-6b14-9ad6-8009-xxxxxx",
        "output": {
            "task_id": "3f21a745-9f4b-4588-b643-xxxxxx",
            "task_status": "SUCCEEDED",
            "submit_time": "2025-04-18 10:36:58.394",
            "scheduled_time": "2025-04-18 10:37:13.802",
            "end_time": "2025-04-18 10:45:23.004",
            "video_url": "https://dashscope-result-wlcb.oss-cn-wulanchabu.aliyuncs.com/xxx.mp4?Expires=1",
            "orig_prompt": "写实风格，一只黑色小猫…",
            "actual_prompt": "写实风格，一只黑色小猫…（改写后）",
        },
        "usage": {"video_duration": 5, "video_ratio": "1280*720", "video_count": 1},
    }
    result = wire.parse_poll(200, {}, body)
    assert result.state is UpstreamState.SUCCEEDED
    assert result.upstream_status == "SUCCEEDED"
    assert [v.url for v in result.videos] == [
        "https://dashscope-result-wlcb.oss-cn-wulanchabu.aliyuncs.com/xxx.mp4?Expires=1"
    ]
    assert result.videos[0].cover_image_url is None
    assert result.orig_prompt == "写实风格，一只黑色小猫…"
    assert result.actual_prompt == "写实风格，一只黑色小猫…（改写后）"
    assert result.usage == {"video_duration": 5, "video_ratio": "1280*720", "video_count": 1}
    assert result.error is None


def test_succeeded_without_video_url_is_a_failure() -> None:
    result = wire.parse_poll(200, {}, {"output": {"task_id": "t", "task_status": "SUCCEEDED"}})
    assert result.state is UpstreamState.FAILED
    assert result.error is not None
    assert result.error.code is ErrorCode.UPSTREAM_FAILED


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("InvalidParameter", ErrorCode.UPSTREAM_REJECTED),
        ("DataInspectionFailed", ErrorCode.CONTENT_MODERATION),
        ("IPInfringementSuspect", ErrorCode.CONTENT_MODERATION),
        ("Arrearage", ErrorCode.QUOTA_EXCEEDED),
        ("InternalError.Algo", ErrorCode.UPSTREAM_FAILED),
        ("Throttling", ErrorCode.UPSTREAM_FAILED),
        ("SomethingNew", ErrorCode.UPSTREAM_FAILED),
    ],
)
def test_parse_failed(code: str, expected: ErrorCode) -> None:
    body = {
        "request_id": "e5d70b02-ebd3-98ce-9fe8-759d7d7b107d",
        "output": {
            "task_id": "86ecf553-…",
            "task_status": "FAILED",
            "code": code,
            "message": "The size is not match xxxxxx",
        },
    }
    result = wire.parse_poll(200, {}, body)
    assert (result.state, result.upstream_status) == (UpstreamState.FAILED, "FAILED")
    assert result.error is not None
    assert (result.error.code, result.error.upstream_code, result.error.transient) == (
        expected,
        code,
        False,
    )
    assert "The size is not match xxxxxx" in result.error.message


def test_parse_unknown_ends_the_task() -> None:
    body = {
        "request_id": "a4de7c32-…",
        "output": {"task_id": "502a00b1-…", "task_status": "UNKNOWN"},
    }
    result = wire.parse_poll(200, {}, body)
    assert result.state is UpstreamState.FAILED
    assert result.state.terminal
    assert result.error is not None
    assert (result.error.code, result.error.upstream_code) == (ErrorCode.UPSTREAM_FAILED, "UNKNOWN")


def test_parse_canceled() -> None:
    result = wire.parse_poll(
        200, {}, {"request_id": "r", "output": {"task_id": "t", "task_status": "CANCELED"}}
    )
    assert (result.state, result.upstream_status) == (UpstreamState.CANCELLED, "CANCELED")
    assert result.error is not None
    assert result.error.code is ErrorCode.CANCELLED


def test_an_unrecognised_status_is_a_transient_error() -> None:
    with pytest.raises(ProviderError) as caught:
        wire.parse_poll(200, {}, {"output": {"task_id": "t", "task_status": "COMPLETE"}})
    assert (caught.value.code, caught.value.transient) == (ErrorCode.UPSTREAM_UNAVAILABLE, True)


# §1.8: every documented error. A 4xx is a refusal (nothing created); a 5xx or a 408 leaves a
# submit's outcome unknown: DashScope documents no 5xx code that means "not created".
@pytest.mark.parametrize(
    ("status", "code", "expected", "transient", "not_taken"),
    [
        (400, "InvalidParameter", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "DataInspectionFailed", ErrorCode.CONTENT_MODERATION, False, True),
        (400, "InvalidParameter.DataInspection", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "BadRequest.EmptyInput", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "BadRequest.EmptyParameters", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "BadRequest.EmptyModel", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "InvalidURL", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "Arrearage", ErrorCode.QUOTA_EXCEEDED, False, True),
        (400, "UnsupportedOperation", ErrorCode.UPSTREAM_REJECTED, False, True),
        (401, "InvalidApiKey", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (403, "AccessDenied", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (403, "AccessDenied.Unpurchased", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (403, "AllocationQuota.FreeTierOnly", ErrorCode.QUOTA_EXCEEDED, False, True),
        (408, "RequestTimeOut", ErrorCode.UPSTREAM_UNAVAILABLE, True, False),
        (413, "BadRequest.TooLarge", ErrorCode.UPSTREAM_REJECTED, False, True),
        (429, "Throttling", ErrorCode.UPSTREAM_UNAVAILABLE, True, True),
        (429, "Throttling.RateQuota", ErrorCode.UPSTREAM_UNAVAILABLE, True, True),
        (429, "Throttling.AllocationQuota", ErrorCode.UPSTREAM_UNAVAILABLE, True, True),
        (500, "InternalError", ErrorCode.UPSTREAM_UNAVAILABLE, True, False),
        (500, "InternalError.Algo", ErrorCode.UPSTREAM_UNAVAILABLE, True, False),
        (400, "invalid_parameter_error", ErrorCode.UPSTREAM_REJECTED, False, True),
        (404, "SomethingNew", ErrorCode.UPSTREAM_REJECTED, False, True),
        (503, "SomethingNew", ErrorCode.UPSTREAM_UNAVAILABLE, True, False),
    ],
)
def test_documented_errors(
    status: int, code: str, expected: ErrorCode, transient: bool, not_taken: bool
) -> None:
    body = {"code": code, "message": "Some message.", "request_id": "7438d53d"}
    error = wire.classify_error(status, {}, body)
    assert (error.code, error.upstream_code, error.transient) == (expected, code, transient)
    assert error.submit_not_taken is not_taken
    assert not error.already_exists
    assert "Some message." in error.message
    assert "DashScope" in error.message


# §1.5's error example: its request_id is DashScope's own, kept for support tickets.
def test_the_error_body_request_id_reaches_the_contract_error() -> None:
    body = {
        "code": "InvalidApiKey",
        "message": "No API-key provided.",
        "request_id": "7438d53d-6eb8-4596-8835-xxxxxx",
    }
    error = wire.classify_error(401, {}, body)
    assert error.upstream_request_id == "7438d53d-6eb8-4596-8835-xxxxxx"
    info = error.to_error()
    assert info.upstream_request_id == "7438d53d-6eb8-4596-8835-xxxxxx"
    assert info.model_dump()["upstream_request_id"] == "7438d53d-6eb8-4596-8835-xxxxxx"
    assert wire.classify_error(500, {}, None).to_error().upstream_request_id is None


def test_free_tier_only_is_quota_not_a_bad_key() -> None:
    body = {
        "code": "AllocationQuota.FreeTierOnly",
        "message": "The free tier of the model has been exhausted. If you wish to continue access "
        'the model on a paid basis, please disable the "use free tier only" mode in the '
        "management console.",
        "request_id": "9ad5f6e5-c95f-905a-8c49-cea387148724",
    }
    error = wire.classify_error(403, {}, body)
    assert (error.code, error.transient, error.submit_not_taken) == (
        ErrorCode.QUOTA_EXCEEDED,
        False,
        True,
    )
    assert "ALIYUN_API_KEY" not in error.message


def test_a_media_download_timeout_during_inspection_is_transient() -> None:
    timed_out = {
        "code": "InvalidParameter.DataInspection",
        "message": "Download the media resource timed out during the data inspection process.",
        "request_id": "r-1",
    }
    error = wire.classify_error(400, {"Retry-After": "3"}, timed_out)
    assert (error.code, error.transient, error.submit_not_taken, error.retry_after) == (
        ErrorCode.UPSTREAM_UNAVAILABLE,
        True,
        True,
        3.0,
    )
    bad_format = {
        "code": "InvalidParameter.DataInspection",
        "message": "The media format is not supported or incorrect for the data inspection.",
    }
    error = wire.classify_error(400, {}, bad_format)
    assert (error.code, error.transient) == (ErrorCode.UPSTREAM_REJECTED, False)


def test_access_problems_name_the_variable() -> None:
    error = wire.classify_error(
        403, {}, {"code": "AccessDenied.Unpurchased", "message": "Access to model denied."}
    )
    assert error.message.endswith("check ALIYUN_API_KEY")


def test_throttling_honours_retry_after() -> None:
    error = wire.classify_error(
        429, {"retry-after": "7"}, {"code": "Throttling.RateQuota", "message": "m"}
    )
    assert (error.transient, error.retry_after) == (True, 7.0)


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"code": "GatewayTimeout", "message": "m"},
        {"code": "InternalError", "message": "m", "request_id": "r"},
    ],
)
def test_a_server_error_may_have_created_the_task(body: object) -> None:
    for status in (500, 502, 503, 504):
        error = wire.classify_error(status, {}, body)
        assert (error.code, error.transient, error.submit_not_taken) == (
            ErrorCode.UPSTREAM_UNAVAILABLE,
            True,
            False,
        )


@pytest.mark.parametrize("status", [400, 404])
def test_cancel_of_a_task_that_is_not_pending_returns_false(status: int) -> None:
    body = {
        "code": "UnsupportedOperation",
        "message": "The operation is unsupported on the referee object.",
    }
    assert wire.parse_cancel(status, {}, body) is False


def test_cancel_success_and_failures() -> None:
    assert wire.parse_cancel(200, {}, {"request_id": "r"}) is True
    with pytest.raises(ProviderError) as caught:
        wire.parse_cancel(429, {}, {"code": "Throttling", "message": "m"})
    assert caught.value.transient
    with pytest.raises(ProviderError):
        wire.parse_cancel(401, {}, {"code": "InvalidApiKey", "message": "m"})


# §1.2: the task list, as the SDK's list() asks for it
def test_the_task_list_request() -> None:
    start = datetime(2025, 4, 18, 2, 36, 58, 394000, tzinfo=UTC)  # 10:36:58.394 in Beijing
    end = datetime(2025, 4, 18, 2, 37, 30, 1000, tzinfo=UTC)
    request = wire.build_find("wanx2.1-t2v-turbo", start, end, KEY, 2)
    assert request.method == "GET" and request.json is None
    assert request.headers == {"Authorization": f"Bearer {KEY}"}
    path, _, query = request.path.partition("?")
    assert path == "/api/v1/tasks"
    assert parse_qs(query) == {
        "page_no": ["2"],
        "page_size": ["100"],
        "model_name": ["wanx2.1-t2v-turbo"],
        "start_time": ["20250418103658"],  # rounded down
        "end_time": ["20250418103731"],  # rounded up: the window only grows
    }
    assert wire.submit_id("order-42", 1) is None  # DashScope takes no client request id


def test_parse_the_task_list() -> None:
    body = {
        "request_id": "2bc5f4c8-xxxx",
        "data": [
            {
                "api_key_id": "1234",
                "gmt_create": 1744943818394,  # 2025-04-18 10:36:58.394 in Beijing
                "model_name": "wanx2.1-t2v-turbo",
                "region": "cn-beijing",
                "request_id": "4909100c-7b5a-9f92-bfe5-xxxxxx",
                "status": "PENDING",
                "task_id": "0385dc79-5ff8-4d82-bcb6-xxxxxx",
            },
            {
                "task_id": "86ecf553",
                "task_status": "RUNNING",
                "model": "wanx2.1-t2v-plus",
                "submit_time": "2025-04-18 10:36:58.394",
            },
            {"task_id": "no-time", "status": "FAILED"},
        ],
        "page_no": 1,
        "page_size": 100,
        "total": 3,
        "total_page": 1,
    }
    page = wire.parse_find(200, {}, body)
    when = datetime(2025, 4, 18, 2, 36, 58, 394000, tzinfo=UTC)
    assert page.pages == 1
    assert page.tasks == (
        ListedTask("0385dc79-5ff8-4d82-bcb6-xxxxxx", "PENDING", "wanx2.1-t2v-turbo", when),
        ListedTask("86ecf553", "RUNNING", "wanx2.1-t2v-plus", when),
        ListedTask("no-time", "FAILED", None, None),
    )


def test_a_task_list_failure_is_classified() -> None:
    with pytest.raises(ProviderError) as caught:
        wire.parse_find(
            429, {}, {"code": "Throttling.RateQuota", "message": "m", "request_id": "q"}
        )
    assert caught.value.transient and caught.value.upstream_request_id == "q"
    with pytest.raises(ProviderError) as caught:
        wire.parse_find(200, {}, {"request_id": "q"})
    assert caught.value.transient


def test_submit_ignores_the_attempt() -> None:
    params = validate_parameters("wanx2.1-t2v-turbo", {"prompt": "p"})
    first = wire.build_submit("wanx2.1-t2v-turbo", params, "order-42", KEY)
    third = wire.build_submit("wanx2.1-t2v-turbo", params, "order-42", KEY, attempt=3)
    assert first == third
