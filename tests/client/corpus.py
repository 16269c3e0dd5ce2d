"""Parameter sets for comparing the client's verdicts with the service's, made from the schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from video_client.models import MODELS, ModelInfo

URL = "https://example.com/frame.png"
PROBES: list[Any] = [
    None, True, False, 0, 1, 3, 4, 5, 30, 60, -1, 2147483648, 5.0, 1.5, "", "x", "5", "-1",
    " 5", "05", "auto", "720P", "480P", "1080P", "1280*720", "832*480", "1280x720",
    "1920x1080", "16:9", "speed", "general", "flying", "bad template!", "flying\n",
    "a" * 513, "a" * 801, URL, "http://host/a b", "oss://bucket/key", "ftp://host/a",
    "data:image/png;base64,iVBORw0KGgo=", "data:text/plain;base64,aGk=", f"{URL}\n",
    [], [URL], [URL, URL], [URL, URL, URL], [URL] * 4, ["x"], [1], {}, {"a": 1},
]  # fmt: skip


def minimal(model: ModelInfo) -> dict[str, Any]:
    """The smallest valid parameters of `model`."""
    params: dict[str, Any] = {}
    for p in model.parameters:
        if p.required == "yes":
            params[p.name] = (
                [URL] if p.type.startswith("list") else URL if "URL" in p.allowed else "a cat"
            )
    if model.name == "wanx2.1-kf2v-plus":
        params["last_frame_url"] = URL
    if model.name.startswith("cogvideox"):
        params["prompt"] = "a cat"
    return params


def cases() -> Iterator[tuple[str, dict[str, Any]]]:
    for model in MODELS.values():
        base = minimal(model)
        yield model.name, base
        yield model.name, {**base, "unknown_one": 1}
        yield model.name, {**base, "zz": 1, "aa": 2, "prompt": 5}
        yield model.name, {}
        for p in model.parameters:
            for value in PROBES:
                yield model.name, {**base, p.name: value}
            without = {k: v for k, v in base.items() if k != p.name}
            yield model.name, without
        yield model.name, {**base, "resolution": "720P", "size": "832*480"}
        yield model.name, {**base, "resolution": "480P", "size": "832*480"}
        yield model.name, {**base, "resolution": "480P", "size": 5}
        yield model.name, {**base, "resolution": None, "size": "1280*720"}
        yield model.name, {**base, "seed": "-1"}
        yield model.name, {**base, "template": "flying"}
        yield model.name, {**base, "template": "flying", "last_frame_url": None}
        yield model.name, {"image_url": URL} if "image_url" in base else base
        yield model.name, {**base, "prompt": None, "image_url": None}
