"""Parameter schemas of the eight BigModel models (upstream-apis.md §2.3.1–§2.3.5).

BigModel's bodies are flat already, so the names are the wire names. Prompts are limited to 512
characters and BigModel rejects longer ones, so we reject them first. `user_id` and `request_id`
are not parameters: the service sends its own `request_id`.

Images, checked on `data:` URIs: CogVideoX takes PNG or JPEG up to 5 MB (§2.3.1); Vidu takes
PNG, JPEG or WebP up to 50 MB with an aspect ratio from 1:4 to 4:1 (§2.3.3-§2.3.5), reference
images at least 128x128 px (§2.3.5), and a start and end frame of similar resolution: their
pixel counts within 0.8 to 1.25 of each other (§2.3.4 "ratio 0.8–1.25"; reading "resolution" as
the pixel count is our interpretation). `with_audio` on viduq1-image: the reference allows it
only for 4-second output (§2.3.3), and viduq1-image makes 5-second videos, so only `false`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from providers.images import inspect
from providers.params import (
    MB,
    Allowed,
    ImageRule,
    ParameterProblem,
    VendorParameters,
    check_url,
    optional,
)


def _bigmodel_url(value: str) -> str:
    return check_url(value, ("http", "data"))


COGVIDEOX_IMAGE = ImageRule(("png", "jpeg"), 5 * MB)  # §2.3.1
VIDU_IMAGE = ImageRule(("png", "jpeg", "webp"), 50 * MB, max_ratio=4)  # §2.3.3, §2.3.4
VIDU_REFERENCE = ImageRule(("png", "jpeg", "webp"), 50 * MB, min_side=128, max_ratio=4)  # §2.3.5
SIMILAR_FRAMES = (0.8, 1.25)  # §2.3.4: start and end frame resolutions


_URL = "an http(s):// URL or a data:image/...;base64,... URI: "

Prompt = Annotated[str, StringConstraints(min_length=1, max_length=512)]
CogImageUrl = Annotated[
    str, AfterValidator(_bigmodel_url), Allowed(_URL + COGVIDEOX_IMAGE.describe())
]
ViduImageUrl = Annotated[str, AfterValidator(_bigmodel_url), Allowed(_URL + VIDU_IMAGE.describe())]
ReferenceImageUrl = Annotated[
    str, AfterValidator(_bigmodel_url), Allowed(_URL + VIDU_REFERENCE.describe())
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
    image_rules: ClassVar[Mapping[str, ImageRule]] = {"image_url": COGVIDEOX_IMAGE}

    prompt: Prompt | None = optional(required="one of prompt, image_url")
    image_url: CogImageUrl | None = optional(required="one of prompt, image_url")
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

    image_rules: ClassVar[Mapping[str, ImageRule]] = {"image_url": VIDU_IMAGE}

    prompt: Prompt | None = optional()
    image_url: ViduImageUrl
    duration: Literal[4, 5] | None = optional()
    size: Literal["1920x1080", "1280x720"] | None = optional()
    movement_amplitude: Movement | None = optional("auto")
    with_audio: bool | None = optional()


class ViduQ1ImageParameters(_ViduImage):
    """viduq1-image: 5 s, 1920x1080; no background music (it needs 4-second output)."""

    duration: Literal[5] | None = optional(5)
    size: Literal["1920x1080"] | None = optional("1920x1080")
    with_audio: (
        Annotated[
            Literal[False],
            Allowed("false (background music needs 4-second output; viduq1-image makes 5 s)"),
        ]
        | None
    ) = optional()


class Vidu2ImageParameters(_ViduImage):
    """vidu2-image: 4 s, 1280x720."""

    duration: Literal[4] | None = optional(4)
    size: Literal["1280x720"] | None = optional("1280x720")


class _ViduStartEnd(BigModelParameters):
    """A start frame and optionally an end frame, in this order."""

    notes = (
        "two frames given as data: URIs must be of similar resolution: their pixel counts "
        "within 0.8 to 1.25 of each other",
    )
    image_rules: ClassVar[Mapping[str, ImageRule]] = {"image_url": VIDU_IMAGE}

    prompt: Prompt | None = optional()
    image_url: Annotated[list[ViduImageUrl], Field(min_length=1, max_length=2)]
    duration: Literal[4, 5] | None = optional()
    size: Literal["1920x1080", "1280x720", "480x360"] | None = optional()
    movement_amplitude: Movement | None = optional("auto")
    with_audio: bool | None = optional()

    @model_validator(mode="after")
    def _similar_frames(self) -> Self:
        """Both frames given as data: URIs (already checked as images): similar resolutions."""
        if len(self.image_url) == 2 and all(u.startswith("data:") for u in self.image_url):
            (first, last) = (inspect(_data(url)) for url in self.image_url)
            ratio = (first.width * first.height) / (last.width * last.height)
            low, high = SIMILAR_FRAMES
            if not low <= ratio <= high:
                raise ParameterProblem(
                    "image_url",
                    f"the start frame is {first.width}x{first.height} px and the end frame "
                    f"{last.width}x{last.height} px; {{model}} needs frames of similar resolution, "
                    f"their pixel counts within {low} to {high} of each other",
                )
        return self


def _data(url: str) -> bytes:
    return base64.b64decode(url.partition(",")[2])


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

    image_rules: ClassVar[Mapping[str, ImageRule]] = {"image_url": VIDU_REFERENCE}

    prompt: Prompt | None = optional()
    image_url: Annotated[list[ReferenceImageUrl], Field(min_length=1, max_length=3)]
    duration: Literal[4] | None = optional(4)
    aspect_ratio: AspectRatio | None = optional("16:9")
    size: Literal["1280x720"] | None = optional("1280x720")
    movement_amplitude: Movement | None = optional("auto")
    with_audio: bool | None = optional()
