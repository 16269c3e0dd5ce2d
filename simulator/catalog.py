"""What each simulated model accepts, transcribed from upstream-apis.md §1.4 and §2.3."""

from __future__ import annotations

from dataclasses import dataclass

# DashScope (§1.4) --------------------------------------------------------------------------

SIZES_480P = ("832*480", "480*832", "624*624")
SIZES_720P = ("1280*720", "720*1280", "960*960", "1088*832", "832*1088")

# The create path a model kind must be posted to (§1.2).
VIDEO_GENERATION = "video-generation"
IMAGE2VIDEO = "image2video"


@dataclass(frozen=True)
class DashScopeModel:
    name: str
    kind: str  # "t2v", "i2v" or "kf2v"
    durations: tuple[int, ...] = (5,)
    sizes: tuple[str, ...] = ()  # t2v only
    resolutions: tuple[str, ...] = ()  # i2v and kf2v only

    @property
    def path(self) -> str:
        return IMAGE2VIDEO if self.kind == "kf2v" else VIDEO_GENERATION


DASHSCOPE_MODELS = {
    m.name: m
    for m in (
        DashScopeModel("wanx2.1-t2v-turbo", "t2v", sizes=SIZES_480P + SIZES_720P),
        DashScopeModel("wanx2.1-t2v-plus", "t2v", sizes=SIZES_720P),
        DashScopeModel(
            "wanx2.1-i2v-turbo", "i2v", durations=(3, 4, 5), resolutions=("480P", "720P")
        ),
        DashScopeModel("wanx2.1-i2v-plus", "i2v", resolutions=("720P",)),
        DashScopeModel("wanx2.1-kf2v-plus", "kf2v", resolutions=("720P",)),
    )
}
DASHSCOPE_DEFAULT_SIZE = "1280*720"
DASHSCOPE_DEFAULT_RESOLUTION = "720P"
RESOLUTION_DIMENSIONS = {"480P": (832, 480), "720P": (1280, 720)}
SEED_MAX = 2_147_483_647

# BigModel (§2.3) ---------------------------------------------------------------------------

COGVIDEOX_SIZES = (
    "720x480",
    "1024x1024",
    "1280x960",
    "960x1280",
    "1920x1080",
    "1080x1920",
    "2048x1080",
    "3840x2160",
)
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
MOVEMENT_AMPLITUDES = ("auto", "small", "medium", "large")


@dataclass(frozen=True)
class BigModelModel:
    name: str
    family: str  # "cogvideox", "vidu-text", "vidu-image", "vidu-start-end", "vidu-reference"
    sizes: tuple[str, ...]
    durations: tuple[int, ...] = ()  # empty: `duration` is not in this model's schema
    images: tuple[int, int] | None = None  # (min, max) images in an `image_url` array
    aspect_ratio: bool = False
    default_duration: int = 5


BIGMODEL_MODELS = {
    m.name: m
    for m in (
        BigModelModel("cogvideox-2", "cogvideox", COGVIDEOX_SIZES),
        BigModelModel("cogvideox-flash", "cogvideox", COGVIDEOX_SIZES),
        BigModelModel("viduq1-text", "vidu-text", ("1920x1080",), (5,), aspect_ratio=True),
        BigModelModel("viduq1-image", "vidu-image", ("1920x1080",), (5,)),
        BigModelModel("vidu2-image", "vidu-image", ("1280x720",), (4,), default_duration=4),
        BigModelModel("viduq1-start-end", "vidu-start-end", ("1920x1080",), (5,), images=(1, 2)),
        BigModelModel(
            "vidu2-start-end",
            "vidu-start-end",
            ("1280x720", "480x360"),
            (4,),
            images=(1, 2),
            default_duration=4,
        ),
        BigModelModel(
            "vidu2-reference",
            "vidu-reference",
            ("1280x720",),
            (4,),
            images=(1, 3),
            aspect_ratio=True,
            default_duration=4,
        ),
    )
}
PROMPT_MAX = 512
