"""BigModel wire mapping, against the documented bodies and the JSON examples of
upstream-apis.md Part 2 (no network)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from providers import ProviderError, UpstreamState, validate_parameters
from providers.zhipuai import wire
from schemas.errors import ErrorCode
from simulator.imagegen import data_uri, png

KEY = "0123456789abcdef.secretpart"
IMG = "https://example.com/cat.png"
IMG2 = "https://example.com/dog.png"
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
PNG_URI = data_uri(png(64, 48), "image/png")


@pytest.mark.parametrize(
    ("model", "raw", "body"),
    [
        (
            "cogvideox-2",
            {
                "prompt": "a cat",
                "quality": "quality",
                "with_audio": True,
                "size": "1920x1080",
                "fps": 60,
            },
            {
                "prompt": "a cat",
                "quality": "quality",
                "with_audio": True,
                "size": "1920x1080",
                "fps": 60,
            },
        ),
        (
            "cogvideox-flash",
            {"image_url": PNG_URI, "watermark_enabled": False},
            {"image_url": PNG_URI, "watermark_enabled": False},
        ),
        (
            "viduq1-text",
            {
                "prompt": "p",
                "style": "general",
                "duration": "5",
                "aspect_ratio": "16:9",
                "movement_amplitude": "auto",
            },
            {
                "prompt": "p",
                "style": "general",
                "duration": 5,
                "aspect_ratio": "16:9",
                "movement_amplitude": "auto",
            },
        ),
        (
            "viduq1-image",
            {"image_url": IMG, "prompt": "p", "size": "1920x1080"},
            {"prompt": "p", "image_url": IMG, "size": "1920x1080"},
        ),
        (
            "viduq1-start-end",
            {"image_url": [IMG, IMG2], "duration": 5},
            {"image_url": [IMG, IMG2], "duration": 5},
        ),
        (
            "vidu2-image",
            {"image_url": IMG, "duration": 4, "with_audio": True},
            {"image_url": IMG, "duration": 4, "with_audio": True},
        ),
        (
            "vidu2-start-end",
            {"image_url": [IMG, IMG2], "size": "480x360"},
            {"image_url": [IMG, IMG2], "size": "480x360"},
        ),
        (
            "vidu2-reference",
            {"image_url": [IMG], "prompt": "p", "aspect_ratio": "9:16", "size": "1280x720"},
            {"prompt": "p", "image_url": [IMG], "aspect_ratio": "9:16", "size": "1280x720"},
        ),
    ],
)
def test_submit_is_the_documented_flat_request(
    model: str, raw: dict[str, Any], body: dict[str, Any]
) -> None:
    request = wire.build_submit(model, validate_parameters(model, raw), "order-42", KEY)
    assert (request.method, request.path) == ("POST", "/api/paas/v4/videos/generations")
    assert request.headers == HEADERS
    # The attempt's own request_id (§2.3: unique per request), attempt 1 by default.
    assert request.json == {"model": model, **body, "request_id": "order-42-a1"}


def test_query_request_and_no_cancel() -> None:
    query = wire.build_query("8868902201637896192", KEY)
    assert (query.method, query.path, query.json) == (
        "GET",
        "/api/paas/v4/async-result/8868902201637896192",
        None,
    )
    assert query.headers == {"Authorization": f"Bearer {KEY}"}
    assert wire.build_cancel("8868902201637896192", KEY) is None


# §2.4
def test_parse_create_response_uses_id_not_request_id() -> None:
    body = {
        "model": "cogvideox-flash",
        "id": "8868902201637896192",
        "request_id": "8868902201637896193",
        "task_status": "PROCESSING",
    }
    task = wire.parse_submit(200, {}, body)
    assert (task.upstream_task_id, task.upstream_status) == ("8868902201637896192", "PROCESSING")


def test_a_200_without_id_has_an_unknown_outcome() -> None:
    with pytest.raises(ProviderError) as caught:
        wire.parse_submit(200, {}, {"request_id": "x"})
    assert (caught.value.transient, caught.value.submit_not_taken) == (True, False)


# §2.5
def test_parse_processing() -> None:
    result = wire.parse_poll(
        200, {}, {"model": "cogvideox-flash", "request_id": "…", "task_status": "PROCESSING"}
    )
    assert (result.state, result.upstream_status, result.videos) == (
        UpstreamState.RUNNING,
        "PROCESSING",
        (),
    )


def test_parse_success() -> None:
    body = {
        "model": "cogvideox",
        "request_id": "8875817957674828620",
        "task_status": "SUCCESS",
        "video_result": [
            {
                "url": "https://sfile.chatglm.cn/testpath/video/0e89d8bf-…_0.mp4",
                "cover_image_url": "https://sfile.chatglm.cn/testpath/video_cover/0e89d8bf-…_cover_0.png",
            }
        ],
    }
    result = wire.parse_poll(200, {}, body)
    assert (result.state, result.upstream_status, result.error) == (
        UpstreamState.SUCCEEDED,
        "SUCCESS",
        None,
    )
    assert [(v.url, v.cover_image_url) for v in result.videos] == [
        (
            "https://sfile.chatglm.cn/testpath/video/0e89d8bf-…_0.mp4",
            "https://sfile.chatglm.cn/testpath/video_cover/0e89d8bf-…_cover_0.png",
        )
    ]


def test_success_without_video_is_a_failure() -> None:
    result = wire.parse_poll(200, {}, {"task_status": "SUCCESS", "video_result": []})
    assert result.state is UpstreamState.FAILED
    assert result.error is not None
    assert result.error.code is ErrorCode.UPSTREAM_FAILED


def test_parse_fail_without_detail() -> None:
    result = wire.parse_poll(
        200, {}, {"model": "cogvideox-flash", "request_id": "…", "task_status": "FAIL"}
    )
    assert (result.state, result.upstream_status) == (UpstreamState.FAILED, "FAIL")
    assert result.error is not None
    assert (result.error.code, result.error.upstream_code, result.error.transient) == (
        ErrorCode.UPSTREAM_FAILED,
        None,
        False,
    )


def test_parse_fail_with_an_error_object() -> None:
    body = {"task_status": "FAIL", "error": {"code": "1301", "message": "unsafe content"}}
    result = wire.parse_poll(200, {}, body)
    assert result.error is not None
    assert (result.error.code, result.error.upstream_code) == (ErrorCode.CONTENT_MODERATION, "1301")


# §2.6 and Z-ERR (the Z.ai table lists 1110-1121, 1231 and 1300 as well): the envelope and
# every listed business code. A 4xx or a throttling code is a refusal; a 5xx otherwise leaves a
# submit's outcome unknown.
@pytest.mark.parametrize(
    ("status", "code", "expected", "transient", "not_taken"),
    [
        (500, "500", ErrorCode.UPSTREAM_UNAVAILABLE, True, False),
        (401, "1000", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (401, "1001", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (401, "1002", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (401, "1003", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (401, "1004", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (429, "1110", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (429, "1111", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (429, "1112", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (429, "1113", ErrorCode.QUOTA_EXCEEDED, False, True),
        (429, "1120", ErrorCode.UPSTREAM_UNAVAILABLE, True, True),
        (429, "1121", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (400, "1210", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "1211", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "1213", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "1214", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "1215", ErrorCode.UPSTREAM_REJECTED, False, True),
        (403, "1220", ErrorCode.UPSTREAM_UNAVAILABLE, False, True),
        (400, "1231", ErrorCode.UPSTREAM_REJECTED, False, False),
        (400, "1261", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "1300", ErrorCode.UPSTREAM_REJECTED, False, True),
        (400, "1301", ErrorCode.CONTENT_MODERATION, False, True),
        (429, "1302", ErrorCode.UPSTREAM_UNAVAILABLE, True, True),
        (429, "1303", ErrorCode.UPSTREAM_UNAVAILABLE, True, True),
        (429, "1304", ErrorCode.QUOTA_EXCEEDED, False, True),
        (429, "1305", ErrorCode.UPSTREAM_UNAVAILABLE, True, True),
        (503, "1305", ErrorCode.UPSTREAM_UNAVAILABLE, True, True),
        (503, "500", ErrorCode.UPSTREAM_UNAVAILABLE, True, False),
        (429, "9999", ErrorCode.UPSTREAM_UNAVAILABLE, True, True),
        (400, "9999", ErrorCode.UPSTREAM_REJECTED, False, True),
    ],
)
def test_documented_errors(
    status: int, code: str, expected: ErrorCode, transient: bool, not_taken: bool
) -> None:
    error = wire.classify_error(
        status, {}, {"error": {"code": code, "message": "Input cannot be empty"}}
    )
    assert (error.code, error.upstream_code, error.transient) == (expected, code, transient)
    assert error.submit_not_taken is not_taken
    assert error.already_exists is (code == "1231")
    assert "BigModel" in error.message and "Input cannot be empty" in error.message


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("1110", "Your account is currently inactive. Please check your account information"),
        ("1111", "Your account does not exist"),
        ("1112", "Your account has been locked, please contact customer service to unlock"),
        ("1121", "Account has irregular activities and has been locked"),
    ],
)
def test_account_errors_on_429_are_not_throttling(code: str, message: str) -> None:
    error = wire.classify_error(
        429, {"Retry-After": "5"}, {"error": {"code": code, "message": message}}
    )
    assert (error.code, error.transient, error.retry_after) == (
        ErrorCode.UPSTREAM_UNAVAILABLE,
        False,
        None,
    )
    assert message in error.message and error.message.endswith("check ZHIPUAI_API_KEY")


def test_a_repeated_request_id_says_the_task_exists() -> None:
    body = {"error": {"code": "1231", "message": "You already have a request: order-42-a1"}}
    with pytest.raises(ProviderError) as caught:
        wire.parse_submit(400, {}, body)
    error = caught.value
    assert error.already_exists
    assert (error.code, error.transient, error.submit_not_taken) == (
        ErrorCode.UPSTREAM_REJECTED,
        False,
        False,
    )
    assert "1231" in error.message and "order-42-a1" in error.message


def test_a_policy_block_is_a_rejection() -> None:
    body = {"error": {"code": "1300", "message": "API call blocked by policy"}}
    error = wire.classify_error(400, {}, body)
    assert (error.code, error.transient) == (ErrorCode.UPSTREAM_REJECTED, False)
    assert "blocked" in error.message


def test_a_request_id_in_an_error_body_is_kept() -> None:
    error = wire.classify_error(
        500, {}, {"error": {"code": "500", "message": "Internal Error"}, "request_id": "8868"}
    )
    assert error.to_error().upstream_request_id == "8868"
    undocumented = wire.classify_error(400, {}, {"error": {"code": "1214", "message": "m"}})
    assert undocumented.upstream_request_id is None


def test_the_documented_401_names_the_variable_not_the_key() -> None:
    body = {
        "error": {
            "code": "1002",
            "message": "Authorization Token is invalid, please ensure that the Authorization "
            "Token is correctly provided.",
        }
    }
    with pytest.raises(ProviderError) as caught:
        wire.parse_submit(401, {}, body)
    assert "ZHIPUAI_API_KEY" in caught.value.message
    assert KEY not in caught.value.message


def test_arrears_on_429_is_not_throttling() -> None:
    body = {"error": {"code": "1113", "message": "您的账户已欠费，请充值后重试"}}
    error = wire.classify_error(429, {"Retry-After": "30"}, body)
    assert (error.code, error.transient, error.retry_after) == (
        ErrorCode.QUOTA_EXCEEDED,
        False,
        None,
    )


def test_numeric_codes_are_read_as_text() -> None:
    error = wire.classify_error(400, {}, {"error": {"code": 1214, "message": "m"}})
    assert (error.code, error.upstream_code) == (ErrorCode.UPSTREAM_REJECTED, "1214")


def test_concurrency_limit_honours_retry_after() -> None:
    error = wire.classify_error(
        429, {"Retry-After": "12"}, {"error": {"code": "1302", "message": "m"}}
    )
    assert (error.transient, error.retry_after) == (True, 12.0)


def test_an_unknown_task_id_on_query() -> None:
    with pytest.raises(ProviderError) as caught:
        wire.parse_poll(400, {}, {"error": {"code": "1214", "message": "task not found"}})
    assert caught.value.code is ErrorCode.UPSTREAM_REJECTED


# §2.3: request_id is the client's and must be unique; Z-ERR 1231 refuses a repeated one.
@pytest.mark.parametrize(
    ("request_id", "attempt", "expected"),
    [
        ("order-42", 1, "order-42-a1"),
        ("order-42", 2, "order-42-a2"),
        ("a" * 61, 1, "a" * 61 + "-a1"),  # 64 characters: kept whole
    ],
)
def test_each_attempt_has_its_own_request_id(request_id: str, attempt: int, expected: str) -> None:
    assert wire.submit_id(request_id, attempt) == expected
    params = validate_parameters("viduq1-text", {"prompt": "p"})
    body = wire.build_submit("viduq1-text", params, request_id, KEY, attempt).json
    assert body is not None and body["request_id"] == expected


def test_a_long_request_id_is_shortened_deterministically() -> None:
    long_id = "tenant-7:" + "x" * 119  # 128 characters, the contract's longest
    first, again, second = (
        wire.submit_id(long_id, 1),
        wire.submit_id(long_id, 1),
        wire.submit_id(long_id, 2),
    )
    digest = hashlib.sha256(long_id.encode()).hexdigest()[:16]
    assert first == again and len(first) == 64 and first.endswith(f"-{digest}-a1")
    assert second.endswith(f"-{digest}-a2") and second != first
    assert first.startswith("tenant-7:xxx")
    other = wire.submit_id(long_id[:-1] + "y", 1)  # same head, other id: other digest
    assert other != first and len(other) == 64
    with pytest.raises(ValueError):
        wire.submit_id("order-42", 0)


def test_bigmodel_has_no_task_list() -> None:
    now = datetime.now(UTC)
    assert wire.build_find("viduq1-text", now, now, KEY, 1) is None
