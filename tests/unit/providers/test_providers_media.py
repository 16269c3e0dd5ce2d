"""Media checks before any paid call: image headers read without an imaging library, and each
model's documented limits applied to `data:` URIs (upstream-apis.md §1.4.2, §1.4.3, §2.3.1,
§2.3.3-§2.3.5)."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

import pytest

from providers import InvalidParameters, validate_parameters
from providers.images import ImageInfo, NotAnImage, inspect
from providers.params import DATA_URI_MAX_CHARS
from simulator.imagegen import bmp, data_uri, jpeg, png, webp

IMG = "https://example.com/cat.png"


def rejection(model: str, raw: dict[str, Any]) -> str:
    with pytest.raises(InvalidParameters) as caught:
        validate_parameters(model, raw)
    return str(caught.value)


def padded_png(width: int, height: int, extra: int) -> bytes:
    """A PNG with `extra` bytes of text before its pixels (a large but valid image)."""
    image = png(width, height)
    text = b"Comment\x00" + b"x" * extra
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + text))
    return image[:33] + chunk + image[33:]


# Headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(640, 480), ImageInfo("png", 640, 480, False)),
        (png(320, 240, alpha=True), ImageInfo("png", 320, 240, True)),
        (jpeg(480, 854), ImageInfo("jpeg", 480, 854, False)),
        (webp(512, 300), ImageInfo("webp", 512, 300, False)),
        (webp(16, 9, (1, 2, 3, 4)), ImageInfo("webp", 16, 9, True)),
        (bmp(320, 240), ImageInfo("bmp", 320, 240, False)),
        (padded_png(8, 8, 1000), ImageInfo("png", 8, 8, False)),
    ],
)
def test_headers_are_read(data: bytes, expected: ImageInfo) -> None:
    assert inspect(data) == expected


def test_a_png_with_a_transparency_chunk_has_alpha() -> None:
    image = png(10, 10)
    trns = struct.pack(">I", 6) + b"tRNS" + b"\x00" * 6
    trns += struct.pack(">I", zlib.crc32(b"tRNS" + b"\x00" * 6))
    assert inspect(image[:33] + trns + image[33:]).alpha


def test_a_jpeg_frame_after_other_segments_and_a_progressive_one() -> None:
    exif = b"\xff\xe1" + struct.pack(">H", 10) + b"Exif\x00\x00ab"
    image = jpeg(300, 200)
    assert inspect(image[:2] + exif + image[2:]) == ImageInfo("jpeg", 300, 200, False)
    progressive = image.replace(b"\xff\xc0", b"\xff\xc2", 1)
    assert inspect(progressive).height == 200


def test_webp_extended_and_lossy_headers() -> None:
    vp8x = b"RIFF" + b"\x00" * 4 + b"WEBPVP8X" + struct.pack("<I", 10)
    vp8x += bytes([0x10, 0, 0, 0]) + (1919).to_bytes(3, "little") + (1079).to_bytes(3, "little")
    assert inspect(vp8x) == ImageInfo("webp", 1920, 1080, True)
    lossy = b"RIFF" + b"\x00" * 4 + b"WEBPVP8 " + struct.pack("<I", 10) + b"\x00\x00\x00"
    lossy += b"\x9d\x01\x2a" + struct.pack("<HH", 1280, 720)
    assert inspect(lossy) == ImageInfo("webp", 1280, 720, False)


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a\x01\x00\x01\x00",
        b"\x89PNG\r\n\x1a\n\x00",
        b"\xff\xd8\xff\xd9",
        b"RIFF\x00\x00\x00\x00WEBPVP8L",
        b"BM\x00",
        b"",
        png(0, 5),
    ],
)
def test_what_is_not_a_readable_image(data: bytes) -> None:
    with pytest.raises(NotAnImage):
        inspect(data)


# Per model -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "field", "uri"),
    [
        ("wanx2.1-i2v-turbo", "img_url", data_uri(jpeg(1280, 720), "image/jpeg")),
        ("wanx2.1-i2v-plus", "img_url", data_uri(bmp(240, 8000), "image/bmp")),
        ("wanx2.1-i2v-plus", "img_url", data_uri(webp(640, 480), "image/webp")),
        ("wanx2.1-kf2v-plus", "first_frame_url", data_uri(png(640, 480), "image/png")),
        ("cogvideox-2", "image_url", data_uri(jpeg(100, 2000), "image/jpg")),
        ("viduq1-image", "image_url", data_uri(webp(400, 1600), "image/webp")),
        ("vidu2-reference", "image_url", [data_uri(png(128, 128), "image/png")]),
    ],
)
def test_images_within_the_documented_limits_pass(model: str, field: str, uri: Any) -> None:
    raw = {field: uri, **({"last_frame_url": IMG} if model == "wanx2.1-kf2v-plus" else {})}
    assert validate_parameters(model, raw).model_dump(exclude_none=True)[field] == uri


@pytest.mark.parametrize(
    ("model", "raw", "expected"),
    [
        (
            "wanx2.1-i2v-turbo",
            {"img_url": data_uri(png(200, 150), "image/png")},
            "parameters.img_url: the image is 200x150 px; wanx2.1-i2v-turbo needs a width and "
            "height from 240 to 8000 px",
        ),
        (
            "wanx2.1-i2v-plus",
            {"img_url": data_uri(png(8001, 240), "image/png")},
            "parameters.img_url: the image is 8001x240 px; wanx2.1-i2v-plus needs a width and "
            "height from 240 to 8000 px",
        ),
        (
            "wanx2.1-kf2v-plus",
            {
                "first_frame_url": IMG,
                "last_frame_url": data_uri(png(320, 240, alpha=True), "image/png"),
            },
            "parameters.last_frame_url: the PNG image has an alpha channel (transparency); "
            "wanx2.1-kf2v-plus accepts PNG without alpha only",
        ),
        (
            "wanx2.1-i2v-turbo",
            {"img_url": "data:image/gif;base64,R0lGODlhAQABAAAAACw="},
            "parameters.img_url: data:image/gif is not an image type wanx2.1-i2v-turbo accepts; "
            "allowed: image/jpeg, image/jpg, image/png, image/bmp, image/x-ms-bmp, image/webp",
        ),
        (
            "cogvideox-flash",
            {"image_url": data_uri(webp(640, 480), "image/webp")},
            "parameters.image_url: data:image/webp is not an image type cogvideox-flash accepts; "
            "allowed: image/png, image/jpeg, image/jpg",
        ),
        (
            "cogvideox-flash",
            {"image_url": data_uri(jpeg(640, 480), "image/png")},
            "parameters.image_url: the data: URI declares image/png but holds a JPEG image",
        ),
        (
            "vidu2-image",
            {"image_url": "data:image/png;base64,R0lGODlhAQABAAAAACw="},
            "parameters.image_url: the data: URI's content is not a PNG, JPEG, WebP or BMP image",
        ),
        (
            "vidu2-image",
            {"image_url": "data:image/png;base64,iVBORw0KGgo#"},
            "parameters.image_url: the data: URI's content is not valid base64",
        ),
        (
            "viduq1-image",
            {"image_url": data_uri(png(1000, 200), "image/png")},
            "parameters.image_url: the image is 1000x200 px (5.00:1); viduq1-image needs an "
            "aspect ratio from 1:4 to 4:1",
        ),
        (
            "vidu2-start-end",
            {"image_url": [IMG, data_uri(png(200, 1000), "image/png")]},
            "parameters.image_url[1]: the image is 200x1000 px (5.00:1); vidu2-start-end needs "
            "an aspect ratio from 1:4 to 4:1",
        ),
        (
            "vidu2-reference",
            {"image_url": [IMG, data_uri(png(100, 300), "image/png")]},
            "parameters.image_url[1]: the image is 100x300 px; vidu2-reference needs a width and "
            "height of at least 128 px",
        ),
    ],
)
def test_images_outside_the_documented_limits_are_named(
    model: str, raw: dict[str, Any], expected: str
) -> None:
    assert rejection(model, raw) == expected


@pytest.mark.parametrize("model", ["wanx2.1-i2v-plus", "cogvideox-2", "vidu2-image"])
def test_a_data_uri_over_700_kib_is_refused_before_decoding(model: str) -> None:
    field = "img_url" if model.startswith("wanx") else "image_url"
    uri = "data:image/png;base64," + "A" * DATA_URI_MAX_CHARS
    message = rejection(model, {field: uri})
    assert message.startswith(
        f"parameters.{field}: a data: URI of {len(uri)} characters is too long"
    )
    assert (
        f"at most {DATA_URI_MAX_CHARS} (700 KiB, so that the request fits in one Kafka" in message
    )
    just_fits = data_uri(padded_png(640, 480, 500_000), "image/png")
    assert len(just_fits) < DATA_URI_MAX_CHARS
    validate_parameters(model, {field: just_fits})


def test_all_data_uris_of_a_request_together_fit_one_message() -> None:
    each = data_uri(padded_png(640, 480, 300_000), "image/png")
    validate_parameters("vidu2-reference", {"image_url": [each, IMG]})
    message = rejection("vidu2-reference", {"image_url": [each, each, IMG]})
    assert message.startswith("parameters.image_url: the data: URIs of this request have ")
    assert "together; at most 716800" in message
    kf2v = {"first_frame_url": each, "last_frame_url": each}
    assert rejection("wanx2.1-kf2v-plus", kf2v).startswith("parameters.first_frame_url: the data")


def test_start_and_end_frames_must_have_similar_resolutions() -> None:
    """§2.3.4: "the two resolutions must be similar (ratio 0.8–1.25)", as pixel counts."""
    start = data_uri(png(640, 480), "image/png")
    near = data_uri(png(600, 500), "image/png")  # 300,000 / 307,200 pixels
    validate_parameters("viduq1-start-end", {"image_url": [start, near]})
    validate_parameters("vidu2-start-end", {"image_url": [start, IMG]})  # a URL: not ours to see
    far = data_uri(png(1280, 960), "image/png")
    assert rejection("vidu2-start-end", {"image_url": [start, far]}) == (
        "parameters.image_url: the start frame is 640x480 px and the end frame 1280x960 px; "
        "vidu2-start-end needs frames of similar resolution, their pixel counts within 0.8 to "
        "1.25 of each other"
    )


def test_urls_are_not_fetched() -> None:
    assert validate_parameters("vidu2-reference", {"image_url": ["https://nowhere.invalid/x"]})


def test_viduq1_image_has_no_background_music() -> None:
    """§2.3.3: with_audio only for 4-second output; viduq1-image makes 5-second videos."""
    validate_parameters("viduq1-image", {"image_url": IMG, "with_audio": False})
    assert rejection("viduq1-image", {"image_url": IMG, "with_audio": True}) == (
        "parameters.with_audio: true is not allowed for viduq1-image; allowed: false (background "
        "music needs 4-second output; viduq1-image makes 5 s)"
    )
    validate_parameters("vidu2-image", {"image_url": IMG, "with_audio": True})


def test_the_checked_image_survives_the_store_round_trip() -> None:
    raw = {
        "image_url": [data_uri(png(640, 480), "image/png"), data_uri(jpeg(640, 480), "image/jpeg")]
    }
    params = validate_parameters("viduq1-start-end", raw)
    again = type(params).model_validate(params.model_dump(mode="json", exclude_none=True))
    assert again == params
    assert base64.b64decode(raw["image_url"][1].partition(",")[2]).startswith(b"\xff\xd8")
