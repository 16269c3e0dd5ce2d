"""Input images fetched and checked, as the vendors do before they create a task.

Where an image comes from:

- `data:` URIs are decoded.
- `http(s)://` URLs on the simulator's own host (`/media/{name}`), or on a host of the
  `image_hosts` config (default `example.com`, the host the tests' requests name; any path, by
  its last segment), are read from its file server, `media/`; a name that is not there is a
  404. Any other host is unreachable from the simulator: the download times out.
- `oss://` URLs (DashScope) are the account's and model's uploaded files (`simulator.uploads`).

What is checked (the model's `ImageLimits`, simulator/catalog.py, each citing its section):
format, file size, width and height, aspect ratio, PNG alpha, and for Vidu start-end the
similarity of the two frames. Each vendor module turns a `MediaProblem` into its own error.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

from simulator import images, media
from simulator.catalog import SIMILAR_FRAMES, ImageLimits
from simulator.context import Sim
from simulator.images import Picture

# Kinds of problem, for the vendor modules to map to their codes.
UNREACHABLE = "unreachable"  # the download timed out
NOT_FOUND = "not_found"  # the host answered 404
FORMAT = "format"  # not an accepted image format (or PNG with alpha where refused)
TOO_BIG = "too_big"
PIXELS = "pixels"  # width or height out of bounds
RATIO = "ratio"  # aspect ratio out of bounds
SIMILAR = "similar"  # start and end frame resolutions too different


class MediaProblem(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Fetched:
    url: str
    picture: Picture


def fetch(sim: Sim, request: Request, url: str) -> bytes:
    """The bytes behind an http(s) or data: URL, or MediaProblem (oss:// is the caller's)."""
    if url.startswith("data:"):
        try:
            return base64.b64decode(url.partition(",")[2], validate=False)
        except (binascii.Error, ValueError):
            raise MediaProblem(FORMAT, "the data URI is not base64") from None
    parts = urlsplit(url)
    own = parts.netloc == request.url.netloc
    aliased = (parts.hostname or "") in sim.config.image_hosts
    if not own and not aliased:
        raise MediaProblem(UNREACHABLE, f"downloading {url} timed out")
    path = parts.path
    name = path.rsplit("/", 1)[-1] if aliased or path.startswith("/media/") else ""
    content = media.read_image(name) if name else None
    if content is None:
        raise MediaProblem(NOT_FOUND, f"downloading {url} failed: HTTP 404")
    return content


def check(content: bytes, limits: ImageLimits, what: str) -> Picture:
    """The image when it fits the limits, else MediaProblem naming `what` ("image_url")."""
    picture = images.read(content)
    if not picture.known or picture.format not in limits.formats:
        kinds = "/".join(f.upper() for f in limits.formats)
        raise MediaProblem(FORMAT, f"{what} is not a {kinds} image")
    if picture.format == "png" and picture.alpha and not limits.alpha:
        raise MediaProblem(FORMAT, f"{what} is a PNG image with alpha; PNG without alpha only")
    if len(content) > limits.max_bytes:
        raise MediaProblem(TOO_BIG, f"{what} is larger than {limits.max_bytes // 2**20} MB")
    low, high = sorted((picture.width, picture.height))
    if low < limits.min_side or (limits.max_side is not None and high > limits.max_side):
        bound = (
            f"[{limits.min_side}, {limits.max_side}]"
            if limits.max_side
            else f">= {limits.min_side}"
        )
        raise MediaProblem(
            PIXELS, f"{what} is {picture.width}x{picture.height}; width and height must be {bound}"
        )
    if limits.max_ratio is not None and high > limits.max_ratio * low:
        raise MediaProblem(
            RATIO,
            f"{what} is {picture.width}x{picture.height}; the aspect ratio must be within "
            f"1:{limits.max_ratio:g} and {limits.max_ratio:g}:1",
        )
    return picture


def check_similar(first: Picture, last: Picture) -> None:
    """§2.3.4: the two frames' resolutions within 0.8 to 1.25 of each other (pixel counts)."""
    ratio = (first.width * first.height) / (last.width * last.height)
    low, high = SIMILAR_FRAMES
    if not low <= ratio <= high:
        raise MediaProblem(
            SIMILAR,
            f"image_url: the start frame ({first.width}x{first.height}) and the end frame "
            f"({last.width}x{last.height}) must have similar resolutions (ratio {low}-{high})",
        )
