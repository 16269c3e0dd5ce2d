import base64

from consumers.messaging import events
from schemas import ErrorCode, ErrorInfo, TaskStatus
from tests.factories import make_task

TASK = make_task(
    id="task-1",
    request_id="r-1",
    provider="aliyun",
    model="wanx2.1-t2v-turbo",
    sequence=2,
    upstream_task_id="up-1",
    upstream_status="RUNNING",
    metadata_json='{"a.b": 1, "$c": 2}',
)


def test_status_event_has_next_sequence_and_a_stable_id() -> None:
    first = events.status_event(TASK, TaskStatus.RUNNING).body
    again = events.status_event(TASK, TaskStatus.RUNNING).body
    assert first["sequence"] == 3
    assert first["event_id"] == again["event_id"] == events.event_id("task-1", 3)
    assert first["status"] == "running" and first["event_type"] == "status"
    assert first["metadata"] == {"a.b": 1, "$c": 2} and first["error"] is None


def test_completed_event_shares_the_envelope_with_its_own_id() -> None:
    from schemas.events import TaskResult, Timings

    status = events.status_event(TASK, TaskStatus.COMPLETED)
    result = TaskResult(
        upstream_task_id="up-1",
        model="wanx2.1-t2v-turbo",
        created="2026-11-27T20:08:58Z",
        videos=[],
    )
    timings = Timings(queued_s=0, generation_s=1, download_s=1, total_s=2)
    completed = events.completed_event(status, result, timings).body
    assert completed["event_type"] == "completed" and completed["status"] == "completed"
    assert completed["sequence"] == status.body["sequence"]
    assert completed["event_id"] != status.body["event_id"]
    assert completed["result"]["upstream_task_id"] == "up-1"


def test_dead_letter_drops_authorization_and_base64s_binary() -> None:
    error = ErrorInfo(code=ErrorCode.INVALID_REQUEST, message="not JSON")
    event = events.dead_letter_event(
        error,
        topic="video.requests",
        partition=1,
        offset=7,
        key=b"k",
        headers={"Authorization": "Bearer secret", "trace": "t"},
        value=b"\xff\xfe",
    )
    assert event["original"]["headers"] == {"trace": "t"}
    assert event["original"]["value_encoding"] == "base64"
    assert base64.b64decode(event["original"]["value"]) == b"\xff\xfe"
    assert event["error"]["code"] == "invalid_request"


def test_rejected_status_is_stable_across_redeliveries() -> None:
    error = ErrorInfo(code=ErrorCode.UNKNOWN_MODEL, message="no such model")
    raw = {"request_id": "r-9", "model": "nope"}
    one = events.rejected_status_event(raw, "r-9", error, "video.requests", 0, 5)
    two = events.rejected_status_event(raw, "r-9", error, "video.requests", 0, 5)
    assert one["event_id"] == two["event_id"] and one["sequence"] == 1
    assert one["status"] == "failed" and one["model"] == "nope" and one["provider"] is None
