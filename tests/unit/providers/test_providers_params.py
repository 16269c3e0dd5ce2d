"""Parameter schemas: what each model accepts, the compatibility forms, and the rejections."""

from __future__ import annotations

from typing import Any

import pytest

from providers import MODELS, InvalidParameters, UnknownModel, get_model, validate_parameters
from simulator.imagegen import data_uri, png

IMG = "https://example.com/cat.png"
IMG2 = "https://example.com/dog.png"
DATA_URI = data_uri(png(640, 480), "image/png")

FULL: dict[str, dict[str, Any]] = {
    "wanx2.1-t2v-turbo": {
        "prompt": "一只小猫在月光下奔跑",
        "negative_prompt": "blurry",
        "size": "832*480",
        "duration": 5,
        "prompt_extend": False,
        "seed": 42,
        "watermark": True,
    },
    "wanx2.1-t2v-plus": {"prompt": "a cat", "size": "720*1280", "seed": 0},
    "wanx2.1-i2v-turbo": {
        "prompt": "the cat runs",
        "img_url": IMG,
        "resolution": "480P",
        "duration": 3,
        "prompt_extend": True,
    },
    "wanx2.1-i2v-plus": {"img_url": "oss://dashscope-instant/x/cat.png", "resolution": "720P"},
    "wanx2.1-kf2v-plus": {"prompt": "p", "first_frame_url": IMG, "last_frame_url": DATA_URI},
    "cogvideox-2": {
        "prompt": "a cat",
        "image_url": IMG,
        "quality": "quality",
        "with_audio": True,
        "watermark_enabled": False,
        "size": "1920x1080",
        "fps": 60,
    },
    "cogvideox-flash": {"image_url": DATA_URI},
    "viduq1-text": {
        "prompt": "a cat",
        "style": "anime",
        "duration": 5,
        "aspect_ratio": "9:16",
        "size": "1920x1080",
        "movement_amplitude": "large",
    },
    "viduq1-image": {"image_url": IMG, "prompt": "p", "duration": 5, "with_audio": False},
    "viduq1-start-end": {
        "image_url": [IMG, IMG2],
        "size": "1920x1080",
        "movement_amplitude": "small",
    },
    "vidu2-image": {"image_url": IMG, "duration": 4, "size": "1280x720", "with_audio": True},
    "vidu2-start-end": {"image_url": [IMG], "size": "480x360", "duration": 4},
    "vidu2-reference": {"image_url": [IMG, IMG2, DATA_URI], "aspect_ratio": "1:1", "prompt": "p"},
}


def rejection(model: str, raw: Any) -> str:
    with pytest.raises(InvalidParameters) as caught:
        validate_parameters(model, raw)
    return str(caught.value)


def test_the_registry_has_the_13_contract_models() -> None:
    assert list(MODELS) == list(FULL)
    assert {m.provider for m in MODELS.values()} == {"aliyun", "zhipuai"}
    assert get_model("vidu2-reference").kind == "Vidu 2 reference subjects"


def test_an_unknown_model_lists_the_models_that_exist() -> None:
    with pytest.raises(UnknownModel) as caught:
        get_model("wanx2.1-t2v-max")
    assert "'wanx2.1-t2v-max'" in str(caught.value)
    assert all(name in str(caught.value) for name in MODELS)


@pytest.mark.parametrize("model", list(FULL))
def test_valid_parameters_survive_the_store_round_trip(model: str) -> None:
    params = validate_parameters(model, FULL[model])
    dump = params.model_dump(mode="json", exclude_none=True)
    assert dump == FULL[model]
    assert type(params).model_validate(dump) == params


@pytest.mark.parametrize(
    ("model", "raw", "normalised"),
    [
        ("wanx2.1-t2v-turbo", {"prompt": "p", "duration": "5"}, {"prompt": "p", "duration": 5}),
        ("wanx2.1-t2v-turbo", {"prompt": "p", "seed": -1}, {"prompt": "p"}),
        ("wanx2.1-t2v-turbo", {"prompt": "p", "seed": "-1"}, {"prompt": "p"}),
        ("wanx2.1-t2v-turbo", {"prompt": "p", "seed": "7"}, {"prompt": "p", "seed": 7}),
        ("wanx2.1-t2v-plus", {"prompt": "p", "resolution": None, "seed": None}, {"prompt": "p"}),
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "p", "resolution": "480P"},
            {"prompt": "p", "size": "832*480"},
        ),
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "p", "resolution": "720P"},
            {"prompt": "p", "size": "1280*720"},
        ),
        (
            "wanx2.1-t2v-plus",
            {"prompt": "p", "resolution": "720P"},
            {"prompt": "p", "size": "1280*720"},
        ),
        (
            "wanx2.1-t2v-plus",
            {"prompt": "p", "resolution": "720P", "size": "960*960"},
            {"prompt": "p", "size": "960*960"},
        ),
        ("wanx2.1-i2v-turbo", {"img_url": IMG, "duration": "4"}, {"img_url": IMG, "duration": 4}),
        ("cogvideox-2", {"prompt": "p", "fps": "30"}, {"prompt": "p", "fps": 30}),
        ("vidu2-image", {"image_url": IMG, "duration": "4"}, {"image_url": IMG, "duration": 4}),
    ],
)
def test_compatibility_forms_are_normalised(
    model: str, raw: dict[str, Any], normalised: dict[str, Any]
) -> None:
    params = validate_parameters(model, raw)
    assert params.model_dump(mode="json", exclude_none=True) == normalised
    assert type(params).model_validate(normalised) == params


def test_the_caller_mapping_is_not_changed() -> None:
    raw = {"prompt": "p", "resolution": "720P", "seed": -1}
    validate_parameters("wanx2.1-t2v-turbo", raw)
    assert raw == {"prompt": "p", "resolution": "720P", "seed": -1}


@pytest.mark.parametrize(
    ("model", "raw", "expected"),
    [
        (
            "wanx2.1-t2v-plus",
            {"prompt": "p", "size": "1920*1080"},
            "parameters.size: '1920*1080' is not allowed for wanx2.1-t2v-plus; "
            "allowed: 1280*720, 720*1280, 960*960, 1088*832, 832*1088",
        ),
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "p", "resolutoin": "720P"},
            "parameters.resolutoin: unknown parameter for wanx2.1-t2v-turbo; allowed parameters: "
            "prompt, negative_prompt, size, duration, prompt_extend, seed, watermark",
        ),
        (
            "wanx2.1-t2v-plus",
            {"prompt": "p", "resolution": "480P"},
            "parameters.resolution: '480P' is not allowed for wanx2.1-t2v-plus; allowed: 720P",
        ),
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "p", "resolution": "720P", "size": "832*480"},
            "parameters.resolution: '720P' contradicts size '832*480'",
        ),
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "p", "size": "1280x720"},
            "parameters.size: '1280x720' is not allowed for wanx2.1-t2v-turbo; allowed: 832*480,",
        ),
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "p", "duration": 4},
            "parameters.duration: 4 is not allowed for wanx2.1-t2v-turbo; allowed: 5",
        ),
        (
            "wanx2.1-i2v-plus",
            {"img_url": IMG, "resolution": "480P"},
            "parameters.resolution: '480P' is not allowed for wanx2.1-i2v-plus; allowed: 720P",
        ),
        (
            "wanx2.1-i2v-turbo",
            {"img_url": IMG, "duration": 6},
            "parameters.duration: 6 is not allowed for wanx2.1-i2v-turbo; allowed: 3, 4, 5",
        ),
        (
            "wanx2.1-i2v-turbo",
            {"img_url": IMG, "size": "1280*720"},
            "parameters.size: unknown parameter for wanx2.1-i2v-turbo; allowed parameters: prompt,",
        ),
        (
            "wanx2.1-kf2v-plus",
            {"first_frame_url": IMG, "last_frame_url": IMG2, "function": "image_reference"},
            "parameters.function: unknown parameter for wanx2.1-kf2v-plus",
        ),
        (
            "wanx2.1-kf2v-plus",
            {"first_frame_url": IMG, "last_frame_url": IMG2, "obj_or_bg": ["obj"]},
            "parameters.obj_or_bg: unknown parameter for wanx2.1-kf2v-plus",
        ),
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "p", "seed": 2147483648},
            "parameters.seed: 2147483648 is not allowed for wanx2.1-t2v-turbo; "
            "allowed: 0 to 2147483647",
        ),
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "p", "seed": -2},
            "parameters.seed: -2 is not allowed for wanx2.1-t2v-turbo; allowed: 0 to 2147483647",
        ),
        (
            "cogvideox-2",
            {"prompt": "p", "size": "1280*720"},
            "parameters.size: '1280*720' is not allowed for cogvideox-2; "
            "allowed: 720x480, 1024x1024,",
        ),
        (
            "cogvideox-flash",
            {"prompt": "p", "duration": 5},
            "parameters.duration: unknown parameter for cogvideox-flash; "
            "allowed parameters: prompt, image_url, quality, with_audio, watermark_enabled, "
            "size, fps",
        ),
        (
            "cogvideox-2",
            {"prompt": "p", "seed": -1},
            "parameters.seed: unknown parameter for cogvideox-2",
        ),
        (
            "cogvideox-2",
            {"prompt": "p", "fps": 24},
            "parameters.fps: 24 is not allowed for cogvideox-2; allowed: 30, 60",
        ),
        (
            "viduq1-text",
            {"prompt": "p", "size": "1080x1920"},
            "parameters.size: '1080x1920' is not allowed for viduq1-text; allowed: 1920x1080",
        ),
        (
            "viduq1-text",
            {"prompt": "p", "style": "cartoon"},
            "parameters.style: 'cartoon' is not allowed for viduq1-text; allowed: general, anime",
        ),
        (
            "vidu2-start-end",
            {"image_url": [IMG], "size": "720x480"},
            "parameters.size: '720x480' is not allowed for vidu2-start-end; "
            "allowed: 1280x720, 480x360",
        ),
        (
            "vidu2-reference",
            {"image_url": [IMG], "duration": "5"},
            "parameters.duration: 5 is not allowed for vidu2-reference; allowed: 4",
        ),
        (
            "vidu2-image",
            {"image_url": IMG, "movement_amplitude": "huge"},
            "parameters.movement_amplitude: 'huge' is not allowed for vidu2-image; "
            "allowed: auto, small, medium, large",
        ),
    ],
)
def test_a_bad_value_names_the_parameter_and_what_is_allowed(
    model: str, raw: Any, expected: str
) -> None:
    assert expected in rejection(model, raw)


@pytest.mark.parametrize(
    ("model", "raw", "expected"),
    [
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "p", "prompt_extend": "yes"},
            "parameters.prompt_extend: 'yes'",
        ),
        ("wanx2.1-t2v-turbo", {"prompt": "p", "watermark": 1}, "parameters.watermark: 1"),
        (
            "wanx2.1-t2v-turbo",
            {"prompt": "p", "watermark": "false"},
            "parameters.watermark: 'false'",
        ),
        ("cogvideox-2", {"prompt": "p", "with_audio": 0}, "parameters.with_audio: 0"),
        ("wanx2.1-t2v-turbo", {"prompt": "p", "seed": True}, "parameters.seed: true"),
        ("wanx2.1-t2v-turbo", {"prompt": "p", "seed": "seven"}, "parameters.seed: 'seven'"),
        ("wanx2.1-t2v-turbo", {"prompt": "p", "duration": "5s"}, "parameters.duration: '5s'"),
        ("wanx2.1-t2v-turbo", {"prompt": 42}, "parameters.prompt: 42"),
        (
            "viduq1-image",
            {"image_url": [IMG]},
            'parameters.image_url: ["https://example.com/cat.png"]',
        ),
        (
            "viduq1-start-end",
            {"image_url": IMG},
            "parameters.image_url: 'https://example.com/cat.png'",
        ),
        ("vidu2-start-end", {"image_url": [IMG, 3]}, "parameters.image_url[1]: 3"),
    ],
)
def test_a_wrong_type_is_rejected_not_coerced(model: str, raw: Any, expected: str) -> None:
    message = rejection(model, raw)
    assert message.startswith(expected)
    assert f"is not allowed for {model}; allowed: " in message


def test_booleans_name_true_and_false() -> None:
    message = rejection("wanx2.1-t2v-turbo", {"prompt": "p", "prompt_extend": "yes"})
    assert message.endswith("allowed: true, false")


@pytest.mark.parametrize(
    ("model", "raw", "expected"),
    [
        (
            "wanx2.1-t2v-turbo",
            {"size": "1280*720"},
            "parameters.prompt: required for wanx2.1-t2v-turbo",
        ),
        (
            "wanx2.1-i2v-turbo",
            {"prompt": "p"},
            "parameters.img_url: required for wanx2.1-i2v-turbo",
        ),
        ("wanx2.1-kf2v-plus", {"last_frame_url": IMG}, "parameters.first_frame_url: required for"),
        (
            "wanx2.1-kf2v-plus",
            {"first_frame_url": IMG},
            "parameters.last_frame_url: required for wanx2.1-kf2v-plus unless template is given",
        ),
        ("viduq1-text", {"style": "anime"}, "parameters.prompt: required for viduq1-text"),
        (
            "cogvideox-2",
            {"quality": "speed"},
            "parameters.prompt: cogvideox-2 needs prompt, image_url or both",
        ),
        ("viduq1-image", {"prompt": "p"}, "parameters.image_url: required for viduq1-image"),
        (
            "vidu2-start-end",
            {"image_url": []},
            "parameters.image_url: [] is not allowed for vidu2-start-end; allowed: 1 to 2 items",
        ),
        (
            "viduq1-start-end",
            {"image_url": [IMG, IMG2, IMG]},
            "is not allowed for viduq1-start-end; allowed: 1 to 2 items",
        ),
        (
            "vidu2-reference",
            {"image_url": [IMG, IMG, IMG, IMG]},
            "is not allowed for vidu2-reference; allowed: 1 to 3 items",
        ),
    ],
)
def test_missing_required_inputs_are_named(model: str, raw: Any, expected: str) -> None:
    assert expected in rejection(model, raw)


def test_kf2v_with_a_template_needs_no_last_frame() -> None:
    params = validate_parameters(
        "wanx2.1-kf2v-plus", {"first_frame_url": IMG, "template": "hanfu-1"}
    )
    assert params.model_dump(exclude_none=True) == {"first_frame_url": IMG, "template": "hanfu-1"}


def test_kf2v_takes_a_last_frame_with_a_template_too() -> None:
    """§1.4.3 calls the last frame unnecessary with a template, not forbidden."""
    raw = {"first_frame_url": IMG, "last_frame_url": IMG2, "template": "hanfu-1"}
    assert validate_parameters("wanx2.1-kf2v-plus", raw).model_dump(exclude_none=True) == raw


@pytest.mark.parametrize(
    ("model", "field", "limit"),
    [
        ("wanx2.1-t2v-turbo", "prompt", 800),
        ("wanx2.1-t2v-turbo", "negative_prompt", 500),
        ("wanx2.1-i2v-plus", "prompt", 800),
        ("viduq1-text", "prompt", 512),
        ("cogvideox-flash", "prompt", 512),
    ],
)
def test_prompts_over_the_documented_length_are_rejected(
    model: str, field: str, limit: int
) -> None:
    base = dict(FULL[model])
    validate_parameters(model, {**base, field: "字" * limit})
    message = rejection(model, {**base, field: "字" * (limit + 1)})
    assert message == (
        f"parameters.{field}: a string of {limit + 1} characters is not allowed for {model}; "
        f"allowed: 1 to {limit} characters"
    )


def test_an_empty_prompt_is_rejected() -> None:
    assert "parameters.prompt: '' is not allowed" in rejection("viduq1-text", {"prompt": ""})


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.png",
        "example.com/a.png",
        "https:// spaces.com",
        "data:text/plain;base64,aGk=",
        "",
    ],
)
def test_image_urls_must_be_http_oss_or_data(url: str) -> None:
    message = rejection("wanx2.1-i2v-turbo", {"img_url": url})
    assert (
        "allowed: an http(s):// URL, an oss:// URL or a data:image/...;base64,... URI: " in message
    )


def test_bigmodel_takes_no_oss_urls() -> None:
    message = rejection("vidu2-image", {"image_url": "oss://bucket/a.png"})
    assert "allowed: an http(s):// URL or a data:image/...;base64,... URI: PNG" in message


def test_several_problems_are_all_reported() -> None:
    with pytest.raises(InvalidParameters) as caught:
        validate_parameters("wanx2.1-i2v-turbo", {"img_url": "x", "duration": 9, "colour": "red"})
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "parameters.img_url",
        "parameters.duration",
        "parameters.colour",
    ]


def test_parameters_must_be_an_object() -> None:
    assert rejection("cogvideox-2", ["prompt"]).startswith("parameters: must be a JSON object")


def test_a_long_value_is_not_echoed_in_full() -> None:
    message = rejection("wanx2.1-i2v-turbo", {"img_url": "ftp://" + "a" * 5000})
    assert "a string of 5006 characters" in message
    assert len(message) < 300


@pytest.mark.parametrize(
    ("model", "raw", "label"),
    [
        ("wanx2.1-t2v-turbo", {"prompt": "p"}, "720P"),
        ("wanx2.1-t2v-turbo", {"prompt": "p", "size": "480*832"}, "480P"),
        ("wanx2.1-t2v-plus", {"prompt": "p", "size": "1088*832"}, "720P"),
        ("wanx2.1-i2v-turbo", {"img_url": IMG}, "720P"),
        ("wanx2.1-i2v-turbo", {"img_url": IMG, "resolution": "480P"}, "480P"),
        ("wanx2.1-kf2v-plus", {"first_frame_url": IMG, "template": "solaron"}, "720P"),
        ("cogvideox-2", {"prompt": "p"}, None),
        ("cogvideox-2", {"prompt": "p", "size": "3840x2160"}, "3840x2160"),
        ("viduq1-text", {"prompt": "p"}, "1920x1080"),
        ("vidu2-start-end", {"image_url": [IMG], "size": "480x360"}, "480x360"),
    ],
)
def test_resolution_label(model: str, raw: dict[str, Any], label: str | None) -> None:
    assert validate_parameters(model, raw).resolution_label() == label
