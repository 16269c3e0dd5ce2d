"""What the client raises.

Problems found before anything is sent are `ValueError`s (`UnknownModel`, `InvalidParameters`,
`InvalidRequest`). A task that ends without a video raises `TaskFailed` from
`TaskHandle.result()`, carrying the contract's error (`error.code`, `error.message`, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from video_client.schemas import DeadLetterEvent, ErrorInfo, StatusEvent


class VideoClientError(Exception):
    """Base of the client's own errors."""


class InvalidRequest(VideoClientError, ValueError):
    """The request would be rejected by the service (contract code `invalid_request`)."""


class UnknownModel(VideoClientError, ValueError):
    """The service has no such model (contract code `unknown_model`)."""


class InvalidParameters(VideoClientError, ValueError):
    """The parameters do not fit the model (contract code `invalid_parameters`).

    `problems` has one line per bad parameter, each naming it and what the model allows, in the
    service's words; the message joins them with "; ".
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class TopicNotFound(VideoClientError):
    """A topic the client reads does not exist (the service creates its topics at start-up)."""


class TaskFailed(VideoClientError):
    """The task ended without a video: `error` is the contract's error object, `event` the
    terminal status event (None when the request was dead-lettered and no status came)."""

    def __init__(self, request_id: str, error: ErrorInfo, event: StatusEvent | None) -> None:
        super().__init__(f"{request_id}: {error.code}: {error.message}")
        self.request_id = request_id
        self.error = error
        self.event = event

    @property
    def code(self) -> str:
        return str(self.error.code)


class TaskCancelled(TaskFailed):
    """The task was cancelled (status `cancelled`)."""


class RequestRejected(TaskFailed):
    """The service dead-lettered the request this handle sent (`dead_letter` is the event on
    the dead-letter topic). With `unauthorized`, or when the `request_id` already had a task,
    no status event comes with it: this is the only answer."""

    def __init__(self, request_id: str, error: ErrorInfo, dead_letter: DeadLetterEvent) -> None:
        super().__init__(request_id, error, None)
        self.dead_letter = dead_letter
