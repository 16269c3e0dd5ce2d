"""A valid request for each of the 13 models, as a user of the contract would write it."""

from __future__ import annotations

from typing import Any

IMAGE = "https://example.com/cat.png"
IMAGE_2 = "https://example.com/cat-end.png"

VALID_PARAMETERS: dict[str, dict[str, Any]] = {
    "wanx2.1-t2v-turbo": {"prompt": "a cat on the grass", "size": "832*480"},
    "wanx2.1-t2v-plus": {"prompt": "a cat on the grass", "resolution": "720P", "seed": -1},
    "wanx2.1-i2v-turbo": {"prompt": "the cat runs", "img_url": IMAGE, "duration": "3"},
    "wanx2.1-i2v-plus": {"img_url": IMAGE, "resolution": "720P"},
    "wanx2.1-kf2v-plus": {
        "prompt": "from day to night",
        "first_frame_url": IMAGE,
        "last_frame_url": IMAGE_2,
    },
    "cogvideox-2": {"prompt": "a cat on the grass", "quality": "quality", "size": "1920x1080"},
    "cogvideox-flash": {"image_url": IMAGE, "prompt": "the cat jumps"},
    "viduq1-text": {"prompt": "a cat on the grass", "style": "anime", "aspect_ratio": "1:1"},
    "viduq1-image": {"image_url": IMAGE, "duration": 5},
    "viduq1-start-end": {"image_url": [IMAGE, IMAGE_2], "prompt": "the cat turns"},
    "vidu2-image": {"image_url": IMAGE, "with_audio": True},
    "vidu2-start-end": {"image_url": [IMAGE, IMAGE_2], "size": "1280x720"},
    "vidu2-reference": {
        "image_url": [IMAGE],
        "prompt": "the cat and the dog",
        "aspect_ratio": "9:16",
    },
}

PROVIDER_OF = {
    model: ("aliyun" if model.startswith("wanx") else "zhipuai") for model in VALID_PARAMETERS
}


def marked(model: str, marker: str) -> dict[str, Any]:
    """The model's valid parameters with `marker` in the prompt (or a prompt added), so the
    simulator can count the generations of exactly this request."""
    parameters = dict(VALID_PARAMETERS[model])
    parameters["prompt"] = f"{parameters.get('prompt', 'a video')} [{marker}]"
    return parameters
