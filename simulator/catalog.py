"""What each simulated model accepts, transcribed from upstream-apis.md §1.4 and §2.3."""

from __future__ import annotations

from dataclasses import dataclass

# DashScope (§1.4) --------------------------------------------------------------------------

SIZES_480P = ("832*480", "480*832", "624*624")
SIZES_720P = ("1280*720", "720*1280", "960*960", "1088*832", "832*1088")

# The create path a model kind must be posted to (§1.2).
VIDEO_GENERATION = "video-generation"
IMAGE2VIDEO = "image2video"


# Video-effect templates per model. §1.4.2: names seen for wanx2.1-i2v [3rd: a ComfyUI plugin's
# README]; §1.4.3: names seen for kf2v-plus [3rd: docs.modellix.ai]. The official list is a page
# per model (wanx-video-effects); a name outside these lists is refused (inferred: 400
# InvalidParameter).
I2V_TEMPLATES = (
    "squish", "rotation", "poke", "inflate", "dissolve", "carousel", "singleheart", "dance1",
    "dance2", "dance3", "mermaid", "graduation", "dragon", "money", "flying", "rose",
    "crystalrose", "hug", "frenchkiss", "coupleheart",
)  # fmt: skip
KF2V_TEMPLATES = ("hanfu-1", "solaron", "magazine", "mech1", "mech2")


@dataclass(frozen=True)
class ImageLimits:
    """What a model accepts of an input image, read from the image itself."""

    formats: tuple[str, ...]
    max_bytes: int
    min_side: int = 1
    max_side: int | None = None
    max_ratio: float | None = None  # long side / short side
    alpha: bool = True  # False: PNG without alpha only


MB = 1024 * 1024
# §1.4.2, §1.4.3: JPEG/JPG/PNG (no alpha)/BMP/WEBP; wanx2.1 file ≤ 10 MB; [240, 8000] px (the
# current page; the older one said [360, 2000]).
DASHSCOPE_IMAGE = ImageLimits(("jpeg", "png", "bmp", "webp"), 10 * MB, 240, 8000, alpha=False)


@dataclass(frozen=True)
class DashScopeModel:
    name: str
    kind: str  # "t2v", "i2v" or "kf2v"
    durations: tuple[int, ...] = (5,)
    sizes: tuple[str, ...] = ()  # t2v only
    resolutions: tuple[str, ...] = ()  # i2v and kf2v only
    templates: tuple[str, ...] = ()  # i2v and kf2v only

    @property
    def path(self) -> str:
        return IMAGE2VIDEO if self.kind == "kf2v" else VIDEO_GENERATION


DASHSCOPE_MODELS = {
    m.name: m
    for m in (
        DashScopeModel("wanx2.1-t2v-turbo", "t2v", sizes=SIZES_480P + SIZES_720P),
        DashScopeModel("wanx2.1-t2v-plus", "t2v", sizes=SIZES_720P),
        DashScopeModel(
            "wanx2.1-i2v-turbo",
            "i2v",
            durations=(3, 4, 5),
            resolutions=("480P", "720P"),
            templates=I2V_TEMPLATES,
        ),
        DashScopeModel("wanx2.1-i2v-plus", "i2v", resolutions=("720P",), templates=I2V_TEMPLATES),
        DashScopeModel(
            "wanx2.1-kf2v-plus", "kf2v", resolutions=("720P",), templates=KF2V_TEMPLATES
        ),
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
# §2.3.1: CogVideoX .png/.jpeg/.jpg, ≤ 5 MB. §2.3.3, §2.3.4: Vidu png/jpeg/jpg/webp, aspect ratio
# within 1:4…4:1, ≤ 50 MB. §2.3.5: reference images ≥ 128×128 px as well.
COGVIDEOX_IMAGE = ImageLimits(("png", "jpeg"), 5 * MB)
VIDU_IMAGE = ImageLimits(("png", "jpeg", "webp"), 50 * MB, max_ratio=4)
VIDU_REFERENCE_IMAGE = ImageLimits(("png", "jpeg", "webp"), 50 * MB, min_side=128, max_ratio=4)
# §2.3.4: "the two resolutions must be similar (ratio 0.8–1.25)", read as pixel counts.
SIMILAR_FRAMES = (0.8, 1.25)
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
    image: ImageLimits | None = None


BIGMODEL_MODELS = {
    m.name: m
    for m in (
        BigModelModel("cogvideox-2", "cogvideox", COGVIDEOX_SIZES, image=COGVIDEOX_IMAGE),
        BigModelModel("cogvideox-flash", "cogvideox", COGVIDEOX_SIZES, image=COGVIDEOX_IMAGE),
        BigModelModel("viduq1-text", "vidu-text", ("1920x1080",), (5,), aspect_ratio=True),
        BigModelModel("viduq1-image", "vidu-image", ("1920x1080",), (5,), image=VIDU_IMAGE),
        BigModelModel(
            "vidu2-image", "vidu-image", ("1280x720",), (4,), default_duration=4, image=VIDU_IMAGE
        ),
        BigModelModel(
            "viduq1-start-end",
            "vidu-start-end",
            ("1920x1080",),
            (5,),
            images=(1, 2),
            image=VIDU_IMAGE,
        ),
        BigModelModel(
            "vidu2-start-end",
            "vidu-start-end",
            ("1280x720", "480x360"),
            (4,),
            images=(1, 2),
            default_duration=4,
            image=VIDU_IMAGE,
        ),
        BigModelModel(
            "vidu2-reference",
            "vidu-reference",
            ("1280x720",),
            (4,),
            images=(1, 3),
            aspect_ratio=True,
            default_duration=4,
            image=VIDU_REFERENCE_IMAGE,
        ),
    )
}
PROMPT_MAX = 512
