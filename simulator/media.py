"""The files the simulator serves: real MP4 results (which one fits a task's output), and the
test images of its file server (`GET /media/{name}`), which it also "fetches" when a request
names them by URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from simulator.state import Output

MEDIA_DIR = Path(__file__).parent / "media"
COVER = "cover.png"  # 160x90 PNG, the first frame of landscape_720p_5s.mp4


@dataclass(frozen=True)
class Clip:
    name: str
    width: int
    height: int
    duration: int


CLIPS = (
    Clip("landscape_720p_5s.mp4", 1280, 720, 5),
    Clip("landscape_720p_4s.mp4", 1280, 720, 4),
    Clip("landscape_480p_5s.mp4", 832, 480, 5),
    Clip("portrait_720p_4s.mp4", 720, 1280, 4),
    Clip("portrait_480p_5s.mp4", 480, 832, 5),
    Clip("square_720p_5s.mp4", 960, 960, 5),
    Clip("square_480p_5s.mp4", 624, 624, 5),
)


def _orientation(width: int, height: int) -> int:
    return (width > height) - (width < height)


def choose(output: Output) -> Clip:
    """Same orientation first, then the nearest short side, then the nearest duration."""
    want = _orientation(output.width, output.height)
    short = min(output.width, output.height)
    return min(
        CLIPS,
        key=lambda c: (
            _orientation(c.width, c.height) != want,
            abs(min(c.width, c.height) - short),
            abs(c.duration - output.duration),
        ),
    )


@cache
def read(name: str) -> bytes:
    """File bytes, read once: the files are small and served many times."""
    return (MEDIA_DIR / name).read_bytes()


IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


def image_type(name: str) -> str | None:
    """The media type of a test image name, None for anything else."""
    return IMAGE_TYPES.get(Path(name).suffix.lower()) if _NAME.fullmatch(name) else None


def read_image(name: str) -> bytes | None:
    """A test image of media/ by file name (no paths), None when there is none."""
    if image_type(name) is None or not (MEDIA_DIR / name).is_file():
        return None
    return read(name)
