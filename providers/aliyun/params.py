"""Parameter schemas of the five DashScope wanx2.1 models (upstream-apis.md §1.4.1–§1.4.3).

DashScope's `input.*` and `parameters.*` fields share one flat object (contract "Model
parameters"); `wire.py` nests them again. A prompt longer than documented (800 characters,
negative prompt 500) is rejected, although DashScope would cut it silently: the user learns
before paying that the tail of the prompt would be ignored.

Images (§1.4.2, §1.4.3): JPEG, PNG without alpha, BMP or WebP, at most 10 MB, width and height
in [240, 8000] px (the current reference; an older copy said [360, 2000]); checked on `data:`
URIs. kf2v's `last_frame_url` is needed unless `template` is given; with a template the
reference calls it unnecessary, not forbidden, so both together are accepted and sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from providers.params import (
    MB,
    Allowed,
    ImageRule,
    ParameterProblem,
    VendorParameters,
    check_url,
    optional,
)

Size480P = Literal["832*480", "480*832", "624*624"]
Size720P = Literal["1280*720", "720*1280", "960*960", "1088*832", "832*1088"]
SIZES_480P: tuple[str, ...] = get_args(Size480P)
SIZES_720P: tuple[str, ...] = get_args(Size720P)


def _dashscope_url(value: str) -> str:
    return check_url(value, ("http", "oss", "data"))


# §1.4.2 / §1.4.3: "JPEG/JPG/PNG (no alpha)/BMP/WEBP; wanx2.1 file ≤ 10 MB; [240, 8000] px".
IMAGE_RULE = ImageRule(("jpeg", "png", "bmp", "webp"), 10 * MB, 240, 8000, alpha=False)

Prompt = Annotated[str, StringConstraints(min_length=1, max_length=800)]
NegativePrompt = Annotated[str, StringConstraints(min_length=1, max_length=500)]
ImageUrl = Annotated[
    str,
    AfterValidator(_dashscope_url),
    Allowed(
        "an http(s):// URL, an oss:// URL or a data:image/...;base64,... URI: "
        + IMAGE_RULE.describe()
    ),
]
Template = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$"),
    Allowed("a video-effect template name of the model, e.g. flying"),
]
Seed = Annotated[
    int, Field(ge=0, le=2147483647), Allowed("0 to 2147483647 (-1 = random: no seed sent)")
]


def size_class(size: str) -> str:
    """ "480P" / "720P" for a documented size, else the size itself."""
    return "480P" if size in SIZES_480P else "720P" if size in SIZES_720P else size


class DashScopeParameters(VendorParameters):
    @classmethod
    def _compat(cls, data: dict[str, Any]) -> dict[str, Any]:
        data = super()._compat(data)
        seed = data.get("seed")
        if type(seed) is int and seed == -1:  # the original service's "random"
            del data["seed"]
        return data


class _TextToVideo(DashScopeParameters):
    """wanx2.1 text to video: `size` is `W*H`; `resolution` is only a compatibility alias."""

    resolution_sizes: ClassVar[Mapping[str, str]] = {"480P": "832*480", "720P": "1280*720"}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        pairs = ", ".join(f"{res} means {size}" for res, size in cls.resolution_sizes.items())
        cls.notes = (f"`resolution` is accepted instead of `size` ({pairs})",)

    prompt: Prompt
    negative_prompt: NegativePrompt | None = optional()
    size: Literal[Size480P, Size720P] | None = optional("1280*720")
    duration: Literal[5] | None = optional(5)
    prompt_extend: bool | None = optional(True)
    seed: Seed | None = optional()
    watermark: bool | None = optional(False)

    @classmethod
    def _compat(cls, data: dict[str, Any]) -> dict[str, Any]:
        data = super()._compat(data)
        resolution = data.pop("resolution", None)  # null, like any optional one: not given
        if resolution is not None:
            data["size"] = cls._size_for(resolution, data.get("size"))
        return data

    @classmethod
    def _size_for(cls, resolution: Any, size: Any) -> Any:
        allowed = ", ".join(cls.resolution_sizes)
        if not isinstance(resolution, str) or resolution not in cls.resolution_sizes:
            raise ParameterProblem(
                "resolution",
                "{value} is not allowed for {model}; allowed: " + allowed + " (or give size)",
                value=resolution,
            )
        if size is None:
            return cls.resolution_sizes[resolution]
        if isinstance(size, str) and size_class(size) == resolution:
            return size
        raise ParameterProblem(
            "resolution",
            "{value} contradicts size {size}; give only one of them",
            value=resolution,
            size=size,
        )

    def resolution_label(self) -> str | None:
        return size_class(self.size or "1280*720")


class T2VTurboParameters(_TextToVideo):
    """wanx2.1-t2v-turbo: any 480P or 720P size."""


class T2VPlusParameters(_TextToVideo):
    """wanx2.1-t2v-plus: 720P sizes only."""

    resolution_sizes: ClassVar[Mapping[str, str]] = {"720P": "1280*720"}

    size: Size720P | None = optional("1280*720")


class _ImageToVideo(DashScopeParameters):
    """wanx2.1 first frame to video: `resolution` is a class; the image sets the aspect ratio."""

    image_rules: ClassVar[Mapping[str, ImageRule]] = {"img_url": IMAGE_RULE}

    prompt: Prompt | None = optional()
    negative_prompt: NegativePrompt | None = optional()
    img_url: ImageUrl
    template: Template | None = optional()
    resolution: Literal["480P", "720P"] | None = optional("720P")
    duration: Literal[3, 4, 5] | None = optional(5)
    prompt_extend: bool | None = optional(True)
    seed: Seed | None = optional()
    watermark: bool | None = optional(False)

    def resolution_label(self) -> str | None:
        return self._given_or_default("resolution")


class I2VTurboParameters(_ImageToVideo):
    """wanx2.1-i2v-turbo: 480P or 720P, 3 to 5 s."""


class I2VPlusParameters(_ImageToVideo):
    """wanx2.1-i2v-plus: 720P, 5 s."""

    resolution: Literal["720P"] | None = optional("720P")
    duration: Literal[5] | None = optional(5)


class KF2VPlusParameters(DashScopeParameters):
    """wanx2.1-kf2v-plus: first and last frame, or first frame and an effect template."""

    image_rules: ClassVar[Mapping[str, ImageRule]] = {
        "first_frame_url": IMAGE_RULE,
        "last_frame_url": IMAGE_RULE,
    }

    prompt: Prompt | None = optional()
    negative_prompt: NegativePrompt | None = optional()
    first_frame_url: ImageUrl
    last_frame_url: ImageUrl | None = optional(required="yes, unless template is given")
    template: Template | None = optional()
    resolution: Literal["720P"] | None = optional("720P")
    duration: Literal[5] | None = optional(5)
    prompt_extend: bool | None = optional(True)
    seed: Seed | None = optional()
    watermark: bool | None = optional(False)

    @model_validator(mode="after")
    def _last_frame_or_template(self) -> Self:
        if self.template is None and self.last_frame_url is None:
            raise ParameterProblem(
                "last_frame_url", "required for {model} unless template is given"
            )
        return self  # with a template, a last frame is unnecessary (§1.4.3), not an error

    def resolution_label(self) -> str | None:
        return self._given_or_default("resolution")
