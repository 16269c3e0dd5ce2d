"""Validation of DashScope create requests (§1.3, §1.4), pure: body and headers in, verdict out.

Unknown keys are tolerated, because the official SDK itself sends `input.extend_prompt` and
`input.function`. Three deliberate strictness choices go beyond what the docs state (inferred):
`size` is refused on i2v/kf2v and `resolution` on t2v (each kind documents only one of them, and
the original service mixed them up); on kf2v, `parameters.obj_or_bg` and a VACE value of
`input.function` are refused (the original service's bug); the SDK's own
`input.function = "video-synthesis"` stays accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from simulator.catalog import (
    DASHSCOPE_DEFAULT_RESOLUTION,
    DASHSCOPE_DEFAULT_SIZE,
    DASHSCOPE_MODELS,
    RESOLUTION_DIMENSIONS,
    SEED_MAX,
    DashScopeModel,
)
from simulator.errors import Rejected

IMAGE_FIELDS = {"t2v": (), "i2v": ("img_url",), "kf2v": ("first_frame_url", "last_frame_url")}
REQUIRED_IMAGE = {"i2v": "img_url", "kf2v": "first_frame_url"}
SDK_FUNCTION = "video-synthesis"  # what the official SDK puts in input.function for every model
DATA_URI = re.compile(r"^data:image/[\w.+-]+;base64,[A-Za-z0-9+/=\s]+$")


@dataclass(frozen=True)
class Accepted:
    model: DashScopeModel
    prompt: str | None
    prompt_extend: bool
    duration: int
    video_ratio: str  # usage.video_ratio: the size for t2v, "standard" for i2v/kf2v
    width: int
    height: int
    param_error: str | None = None  # set in "failed_task" mode: the task will end FAILED


def invalid(message: str) -> Rejected:
    return Rejected(400, "InvalidParameter", message)


def check_create(
    path_kind: str, body: Any, headers: Mapping[str, str], *, errors_as_failure: bool
) -> Accepted:
    """Raise Rejected as the real service would, or describe the accepted task."""
    model = _model(path_kind, body)
    inputs = body.get("input")
    if inputs is None or inputs == {}:
        raise Rejected(
            400, "BadRequest.EmptyInput", "Required input parameter missing from request."
        )
    params = body.get("parameters", {})
    if not isinstance(inputs, dict) or not isinstance(params, dict):
        raise invalid("input and parameters must be JSON objects.")
    prompt = _check_inputs(model, inputs, headers)
    try:
        return _check_parameters(model, params, prompt)
    except Rejected as exc:
        if not errors_as_failure:
            raise
        return replace(_check_parameters(model, {}, prompt), param_error=exc.message)


def _model(path_kind: str, body: Any) -> DashScopeModel:
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    name = body.get("model")
    if name is None or name == "":
        raise Rejected(
            400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.'
        )
    model = DASHSCOPE_MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        raise invalid("Model not exist.")
    if model.path != path_kind:
        raise invalid("url error, please check url!")
    return model


def _check_inputs(
    model: DashScopeModel, inputs: dict[str, Any], headers: Mapping[str, str]
) -> str | None:
    for name in ("prompt", "negative_prompt", "template"):
        if name in inputs and not isinstance(inputs[name], str):
            raise invalid(f"input.{name} must be a string.")
    prompt = inputs.get("prompt")
    if model.kind == "t2v" and not prompt:
        raise invalid("input.prompt is required for text-to-video.")
    required = REQUIRED_IMAGE.get(model.kind)
    if required and not inputs.get(required):
        raise invalid(f"input.{required} is required for {model.name}.")
    oss_ok = headers.get("x-dashscope-ossresourceresolve", "").lower() == "enable"
    for name in IMAGE_FIELDS[model.kind]:
        if name in inputs:
            _check_image_url(name, inputs[name], oss_ok)
    if model.kind == "kf2v" and inputs.get("function", SDK_FUNCTION) != SDK_FUNCTION:
        raise invalid("input.function is not a parameter of wanx2.1-kf2v-plus (VACE only).")
    template = inputs.get("template")
    if template is not None and model.templates and template not in model.templates:
        # §1.4.2, §1.4.3: templates are model-specific (simulator/catalog.py lists them).
        raise invalid(
            f"input.template {template!r} is not a video-effect template of {model.name}."
        )
    return prompt


def _check_image_url(name: str, url: Any, oss_ok: bool) -> None:
    if not isinstance(url, str):
        raise invalid(f"input.{name} must be a string.")
    if url.startswith("oss://"):
        if not oss_ok:
            raise Rejected(
                400,
                "InvalidParameter.DataInspection",
                "The media format is not supported or incorrect for the data inspection.",
            )
    elif url.startswith("data:"):
        if not DATA_URI.match(url):
            raise invalid(f"input.{name}: a data URI must be data:{{mime}};base64,{{data}}.")
    elif not url.startswith(("http://", "https://")):
        raise Rejected(400, "InvalidURL", "Invalid URL provided in your request.")


def _check_parameters(
    model: DashScopeModel, params: dict[str, Any], prompt: str | None
) -> Accepted:
    for name in ("prompt_extend", "watermark"):
        if name in params and not isinstance(params[name], bool):
            raise invalid(f"parameters.{name} must be a boolean.")
    if model.kind == "kf2v" and "obj_or_bg" in params:
        raise invalid("parameters.obj_or_bg is not a parameter of wanx2.1-kf2v-plus (VACE only).")
    duration = _int_param(params, "duration", model.durations[-1])
    if duration not in model.durations:
        raise invalid(
            f"parameters.duration {duration} is not supported by {model.name}: {model.durations}."
        )
    if "seed" in params and not 0 <= _int_param(params, "seed", 0) <= SEED_MAX:
        raise invalid(f"parameters.seed must be in [0, {SEED_MAX}].")
    ratio, width, height = _shape(model, params)
    extend = params.get("prompt_extend", True)
    return Accepted(model, prompt, extend, duration, ratio, width, height)


def _int_param(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"parameters.{name} must be an integer.")
    return value


def _shape(model: DashScopeModel, params: dict[str, Any]) -> tuple[str, int, int]:
    """usage.video_ratio and the output's width and height."""
    if model.kind == "t2v":
        if "resolution" in params:
            raise invalid(
                f"parameters.resolution is not supported by {model.name}; use size (W*H)."
            )
        size = params.get("size", DASHSCOPE_DEFAULT_SIZE)
        if size not in model.sizes:
            raise invalid(
                f"parameters.size {size!r} is not supported by {model.name}: {model.sizes}."
            )
        width, height = (int(side) for side in size.split("*"))
        return size, width, height
    if "size" in params:
        raise invalid(f"parameters.size is not supported by {model.name}; use resolution.")
    resolution = params.get("resolution", DASHSCOPE_DEFAULT_RESOLUTION)
    if resolution not in model.resolutions:
        raise invalid(
            f"parameters.resolution {resolution!r} is not supported by {model.name}: "
            f"{model.resolutions}."
        )
    width, height = RESOLUTION_DIMENSIONS[resolution]
    return "standard", width, height


# The task list (§1.2; parameters from the SDK's `list()`). --------------------------------------

BEIJING = timezone(timedelta(hours=8))
LIST_STATUSES = ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELED")  # the SDK's docstring
LIST_PAGE_MAX = 100  # (inferred) the largest page size


@dataclass(frozen=True)
class ListQuery:
    page_no: int = 1
    page_size: int = 10  # the SDK's default
    status: str | None = None
    model_name: str | None = None
    start: float | None = None  # epoch seconds, inclusive
    end: float | None = None  # epoch seconds, inclusive (whole second)

    def matches(self, task: Any, phase: Any) -> bool:
        return (
            (self.status is None or phase.value == self.status)
            and (self.model_name is None or task.model == self.model_name)
            and (self.start is None or task.created >= self.start)
            and (self.end is None or task.created < self.end + 1)
        )


def list_query(params: Mapping[str, str]) -> ListQuery:
    """The list's query string, or Rejected (400 InvalidParameter, inferred) for bad values."""

    def number(name: str, default: int, high: int) -> int:
        text = params.get(name)
        if text is None:
            return default
        if not text.isdigit() or not 1 <= int(text) <= high:
            raise invalid(f"{name} must be an integer from 1 to {high}.")
        return int(text)

    def moment(name: str) -> float | None:
        text = params.get(name)
        if text is None:
            return None
        try:  # YYYYMMDDhhmmss, e.g. 20230420000000 (the SDK's docstring); Beijing time (inferred)
            return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=BEIJING).timestamp()
        except ValueError:
            raise invalid(f"{name} must be YYYYMMDDhhmmss, e.g. 20230420000000.") from None

    status = params.get("status")
    if status is not None and status not in LIST_STATUSES:
        raise invalid(f"status must be one of {', '.join(LIST_STATUSES)}.")
    return ListQuery(
        page_no=number("page_no", 1, 10**6),
        page_size=number("page_size", 10, LIST_PAGE_MAX),
        status=status,
        model_name=params.get("model_name"),
        start=moment("start_time"),
        end=moment("end_time"),
    )
