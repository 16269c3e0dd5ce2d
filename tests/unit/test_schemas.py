import json

import pytest
from pydantic import ValidationError

from schemas import RequestEvent, TaskStatus, utc_timestamp
from schemas.status import TERMINAL


def test_status_moves_forward_and_may_skip() -> None:
    assert TaskStatus.ACCEPTED.can_move_to(TaskStatus.SUBMITTED)
    assert TaskStatus.ACCEPTED.can_move_to(TaskStatus.FAILED)
    assert TaskStatus.SUBMITTED.can_move_to(TaskStatus.DOWNLOADING)
    assert not TaskStatus.RUNNING.can_move_to(TaskStatus.SUBMITTED)
    assert not TaskStatus.RUNNING.can_move_to(TaskStatus.RUNNING)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_statuses_never_move(terminal: TaskStatus) -> None:
    assert terminal.terminal
    assert not any(terminal.can_move_to(s) for s in TaskStatus)


def _request(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {"request_id": "order-42:v1", "model": "m", "parameters": {}}
    body.update(changes)
    return body


@pytest.mark.parametrize("request_id", ["", "x" * 129, "has space", "slash/no", "é"])
def test_request_id_must_be_1_to_128_safe_characters(request_id: str) -> None:
    with pytest.raises(ValidationError, match="request_id"):
        RequestEvent.model_validate(_request(request_id=request_id))


def test_request_ignores_unlisted_fields_such_as_is_async() -> None:
    event = RequestEvent.model_validate(_request(is_async=True))
    assert not hasattr(event, "is_async")


@pytest.mark.parametrize("timeout_s", [59, 86401])
def test_timeout_outside_60_to_86400_is_rejected(timeout_s: int) -> None:
    with pytest.raises(ValidationError, match="timeout_s"):
        RequestEvent.model_validate(_request(timeout_s=timeout_s))


def test_metadata_over_4_kib_is_rejected_with_its_size() -> None:
    big = {"blob": "x" * 4100}
    with pytest.raises(ValidationError, match=r"metadata is \d+ bytes as JSON; at most 4096"):
        RequestEvent.model_validate(_request(metadata=big))
    fits = {"blob": "x" * (4096 - len(json.dumps({"blob": ""}, separators=(",", ":"))))}
    assert RequestEvent.model_validate(_request(metadata=fits)).metadata == fits


def test_timestamp_is_utc_with_milliseconds() -> None:
    stamp = utc_timestamp()
    assert stamp.endswith("Z") and len(stamp) == len("2026-11-27T20:08:58.123Z")
