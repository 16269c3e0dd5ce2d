"""Validation of BigModel create bodies (§2.3), pure: the flat JSON body in, verdict out.

Codes: unknown model 1211, a required field not received 1213, a value outside the documented
ones 1214, a prompt over 512 characters 1261. Keys outside a model's schema are tolerated (the
docs do not say they are refused; the SDK forwards `duration` and `sensitive_word_check`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from simulator.catalog import (
    ASPECT_RATIOS,
    BIGMODEL_MODELS,
    MOVEMENT_AMPLITUDES,
    PROMPT_MAX,
    BigModelModel,
)
from simulator.errors import Rejected

IMAGE_URL = re.compile(r"^(https?://\S+|data:image/[\w.+-]+;base64,[A-Za-z0-9+/=\s]+)$")
# Portrait / square outputs for the models whose aspect_ratio picks the orientation.
ASPECT_FLIP = {"9:16": lambda w, h: (h, w), "1:1": lambda w, h: (h, h)}


@dataclass(frozen=True)
class Accepted:
    model: BigModelModel
    prompt: str | None
    request_id: str | None
    width: int
    height: int
    duration: int


def bad(message: str) -> Rejected:
    return Rejected(400, "1214", message)


def missing(name: str) -> Rejected:
    return Rejected(400, "1213", f"The {name} parameter was not received.")


def check_create(body: Any) -> Accepted:
    if not isinstance(body, dict):
        raise Rejected(400, "1210", "The request body must be a JSON object.")
    model = _model(body.get("model"))
    _check_common(body)
    prompt = _prompt(body, required=model.family == "vidu-text")
    _check_images(model, body)
    if model.family == "cogvideox" and not prompt and "image_url" not in body:
        raise missing("prompt or image_url") if prompt is None else bad("Input cannot be empty")
    _check_values(model, body)
    width, height = _dimensions(model, body)
    duration = body.get("duration", model.default_duration) if model.durations else 5
    return Accepted(model, prompt, body.get("request_id"), width, height, duration)


def _model(name: Any) -> BigModelModel:
    if name is None or name == "":
        raise missing("model")
    model = BIGMODEL_MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        raise Rejected(400, "1211", f"Model not found: {name!r}.")
    return model


def _check_common(body: dict[str, Any]) -> None:
    if "request_id" in body and not isinstance(body["request_id"], str):
        raise bad("request_id must be a string.")
    user_id = body.get("user_id")
    if user_id is not None and not (isinstance(user_id, str) and 6 <= len(user_id) <= 128):
        raise bad("user_id must be a string of 6 to 128 characters.")


def _prompt(body: dict[str, Any], *, required: bool) -> str | None:
    prompt = body.get("prompt")
    if prompt is None:
        if required:
            raise missing("prompt")
        return None
    if not isinstance(prompt, str):
        raise bad("prompt must be a string.")
    if required and not prompt.strip():
        raise bad("Input cannot be empty")
    if len(prompt) > PROMPT_MAX:
        raise Rejected(400, "1261", f"Prompt too long: at most {PROMPT_MAX} characters.")
    return prompt


def _check_images(model: BigModelModel, body: dict[str, Any]) -> None:
    if model.family == "vidu-text":
        return  # no image_url in this schema: tolerated like any other unknown key
    if "image_url" not in body:
        if model.family != "cogvideox":
            raise missing("image_url")
        return
    images = body["image_url"]
    if model.images is None:  # one image, as a string
        if not isinstance(images, str):
            raise bad(f"image_url must be a single image (a string) for {model.name}.")
        images = [images]
    else:
        low, high = model.images
        if not isinstance(images, list) or not low <= len(images) <= high:
            raise bad(f"image_url must be an array of {low} to {high} images for {model.name}.")
    for image in images:
        if not isinstance(image, str) or not IMAGE_URL.match(image):
            raise bad("image_url must be an http(s) URL or a data:image/...;base64, URI.")


def _check_values(model: BigModelModel, body: dict[str, Any]) -> None:
    if model.family == "cogvideox":
        _enum(body, "quality", ("speed", "quality"))
        _enum(body, "fps", (30, 60))
        _boolean(body, "watermark_enabled")
    else:
        _enum(body, "movement_amplitude", MOVEMENT_AMPLITUDES)
        _enum(body, "duration", model.durations)
    if model.family == "vidu-text":
        _enum(body, "style", ("general", "anime"))
    else:
        _boolean(body, "with_audio")
    if model.family == "vidu-image" and body.get("with_audio") is True and model.durations != (4,):
        # §2.3.3: with_audio "only supported when the output is 4 s" (CN doc).
        raise bad(f"with_audio is only supported for 4-second output; {model.name} makes 5 s.")
    if model.aspect_ratio:
        _enum(body, "aspect_ratio", ASPECT_RATIOS)
    size = body.get("size")
    if isinstance(size, str) and "*" in size:
        raise bad(f"size {size!r} is invalid: use 'x' between width and height (e.g. 1280x720).")
    _enum(body, "size", model.sizes)


def _enum(body: dict[str, Any], name: str, allowed: tuple[Any, ...]) -> None:
    if name not in body:
        return
    value = body[name]
    # bool is an int in Python but not in JSON: true must not pass for 1, nor "5" for 5.
    if isinstance(value, bool) or type(value) is not type(allowed[0]) or value not in allowed:
        raise bad(f"{name} {value!r} is invalid; allowed: {list(allowed)}.")


def _boolean(body: dict[str, Any], name: str) -> None:
    if name in body and not isinstance(body[name], bool):
        raise bad(f"{name} must be a boolean.")


def _dimensions(model: BigModelModel, body: dict[str, Any]) -> tuple[int, int]:
    size = body.get("size", model.sizes[0] if model.family != "cogvideox" else "1920x1080")
    width, height = (int(side) for side in size.split("x"))
    flip = ASPECT_FLIP.get(body.get("aspect_ratio", "16:9")) if model.aspect_ratio else None
    return flip(width, height) if flip else (width, height)
