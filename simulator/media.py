"""The real MP4 files the result host serves, and which one fits a task's output."""

from __future__ import annotations

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
