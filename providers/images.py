"""What an image's first bytes say: its format, pixel size and whether it has alpha.

Only the headers are read (PNG's IHDR and tRNS, JPEG's SOF marker, WebP's VP8/VP8L/VP8X header,
BMP's info header), so checking an image costs microseconds and needs no imaging library. Used on
`data:` URIs, whose bytes the service holds, before any paid call.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FORMATS = ("png", "jpeg", "webp", "bmp")


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str  # one of FORMATS
    width: int
    height: int
    alpha: bool  # PNG: an alpha channel or a tRNS chunk; WebP: the alpha flag


class NotAnImage(ValueError):
    """The bytes are not a PNG, JPEG, WebP or BMP image whose header can be read."""


def inspect(data: bytes) -> ImageInfo:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        info = _png(data)
    elif data.startswith(b"\xff\xd8"):
        info = _jpeg(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        info = _webp(data)
    elif data.startswith(b"BM"):
        info = _bmp(data)
    else:
        raise NotAnImage("not a PNG, JPEG, WebP or BMP image")
    if info.width < 1 or info.height < 1:
        raise NotAnImage(f"a {info.format.upper()} image without pixels")
    return info


def _png(data: bytes) -> ImageInfo:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise NotAnImage("a PNG image without its IHDR header")
    width, height, _depth, colour = struct.unpack(">IIBB", data[16:26])
    alpha = colour in (4, 6)
    position = 33
    while not alpha and position + 8 <= len(data):  # a tRNS chunk before the pixels: alpha too
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind in (b"IDAT", b"IEND"):
            break
        alpha = kind == b"tRNS"
        position += 12 + length
    return ImageInfo("png", width, height, alpha)


# SOF0-SOF15 carry the frame's size, except DHT (C4), JPG (C8) and DAC (CC).
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(data: bytes) -> ImageInfo:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise NotAnImage("a JPEG image with a broken marker")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _SOF:
            if position + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return ImageInfo("jpeg", width, height, False)
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            break
        position += 2 + length
    raise NotAnImage("a JPEG image without a frame header (SOF)")


def _webp(data: bytes) -> ImageInfo:
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        flags = data[20]
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return ImageInfo("webp", width, height, bool(flags & 0x10))
    if kind == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        return ImageInfo("webp", width, height, bool(bits >> 28 & 1))
    if kind == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageInfo("webp", width & 0x3FFF, height & 0x3FFF, False)
    raise NotAnImage("a WebP image whose header cannot be read")


def _bmp(data: bytes) -> ImageInfo:
    if len(data) < 26:
        raise NotAnImage("a BMP image without its header")
    (size,) = struct.unpack("<I", data[14:18])
    if size == 12:  # BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
    elif size >= 40 and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
    else:
        raise NotAnImage("a BMP image with an unknown header")
    return ImageInfo("bmp", width, abs(height), False)
