"""Parameter schemas of the eight BigModel models (upstream-apis.md §2.3.1–§2.3.5).

BigModel's bodies are flat already, so the names are the wire names. Prompts are limited to 512
characters and BigModel rejects longer ones, so we reject them first. `user_id` and `request_id`
are not parameters: the service sends its own `request_id`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from providers.params import Allowed, ParameterProblem, VendorParameters, check_url, optional


def _bigmodel_url(value: str) -> str:
    return check_url(value, ("http", "data"))


Prompt = Annotated[str, StringConstraints(min_length=1, max_length=512)]
ImageUrl = Annotated[
    str,
    AfterValidator(_bigmodel_url),
    Allowed("an http(s):// URL or a data:image/...;base64,... URI"),
]
Movement = Literal["auto", "small", "medium", "large"]
AspectRatio = Literal["16:9", "9:16", "1:1"]
CogSize = Literal[
    "720x480", "1024x1024", "1280x960", "960x1280", "1920x1080", "1080x1920", "2048x1080",
    "3840x2160",
]  # fmt: skip


class BigModelParameters(VendorParameters):
    def resolution_label(self) -> str | None:
        return self._given_or_default("size")


class CogVideoXParameters(BigModelParameters):
    """cogvideox-2 and cogvideox-flash: text, image, or both."""

    notes = ("size default: short side 1080, long side from the image's aspect ratio",)

    prompt: Prompt | None = optional(required="one of prompt, image_url")
    image_url: ImageUrl | None = optional(required="one of prompt, image_url")
    quality: Literal["speed", "quality"] | None = optional("speed")
    with_audio: bool | None = optional(False)
    watermark_enabled: bool | None = optional(True)
    size: CogSize | None = optional()
    fps: Literal[30, 60] | None = optional(30)

    @model_validator(mode="after")
    def _prompt_or_image(self) -> Self:
        if self.prompt is None and self.image_url is None:
            raise ParameterProblem("prompt", "{model} needs prompt, image_url or both")
        return self


class ViduQ1TextParameters(BigModelParameters):
    """viduq1-text."""

    prompt: Prompt
    style: Literal["general", "anime"] | None = optional("general")
    duration: Literal[5] | None = optional(5)
    aspect_ratio: AspectRatio | None = optional("16:9")
    size: Literal["1920x1080"] | None = optional("1920x1080")
    movement_amplitude: Movement | None = optional("auto")


class _ViduImage(BigModelParameters):
    """One image as the first frame."""

    prompt: Prompt | None = optional()
    image_url: ImageUrl
    duration: Literal[4, 5] | None = optional()
    size: Literal["1920x1080", "1280x720"] | None = optional()
    movement_amplitude: Movement | None = optional("auto")
    with_audio: bool | None = optional()


class ViduQ1ImageParameters(_ViduImage):
    """viduq1-image: 5 s, 1920x1080."""

    duration: Literal[5] | None = optional(5)
    size: Literal["1920x1080"] | None = optional("1920x1080")


class Vidu2ImageParameters(_ViduImage):
    """vidu2-image: 4 s, 1280x720."""

    duration: Literal[4] | None = optional(4)
    size: Literal["1280x720"] | None = optional("1280x720")


class _ViduStartEnd(BigModelParameters):
    """A start frame and optionally an end frame, in this order."""

    prompt: Prompt | None = optional()
    image_url: Annotated[list[ImageUrl], Field(min_length=1, max_length=2)]
    duration: Literal[4, 5] | None = optional()
    size: Literal["1920x1080", "1280x720", "480x360"] | None = optional()
    movement_amplitude: Movement | None = optional("auto")
    with_audio: bool | None = optional()


class ViduQ1StartEndParameters(_ViduStartEnd):
    """viduq1-start-end: 5 s, 1920x1080."""

    duration: Literal[5] | None = optional(5)
    size: Literal["1920x1080"] | None = optional("1920x1080")


class Vidu2StartEndParameters(_ViduStartEnd):
    """vidu2-start-end: 4 s, 1280x720 or 480x360."""

    duration: Literal[4] | None = optional(4)
    size: Literal["1280x720", "480x360"] | None = optional("1280x720")


class Vidu2ReferenceParameters(BigModelParameters):
    """vidu2-reference: one to three images of the subjects to keep."""

    prompt: Prompt | None = optional()
    image_url: Annotated[list[ImageUrl], Field(min_length=1, max_length=3)]
    duration: Literal[4] | None = optional(4)
    aspect_ratio: AspectRatio | None = optional("16:9")
    size: Literal["1280x720"] | None = optional("1280x720")
    movement_amplitude: Movement | None = optional("auto")
    with_audio: bool | None = optional()
