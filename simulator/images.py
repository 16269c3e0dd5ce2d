"""Reading an input image's format, pixel size and alpha, as the vendors do before generating.

The simulator's own reader, kept apart from the service's (`providers.images`) on purpose: the
simulator stands for the vendors, so a mistake in the service's reader must not be repeated
here, where it would go unnoticed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Picture:
    format: str  # "png", "jpeg", "webp", "bmp", or "unknown"
    width: int = 0
    height: int = 0
    alpha: bool = False

    @property
    def known(self) -> bool:
        return self.format != "unknown" and self.width > 0 and self.height > 0


UNKNOWN = Picture("unknown")


def read(data: bytes) -> Picture:
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            return _png(data)
        if data[:2] == b"\xff\xd8":
            return _jpeg(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:2] == b"BM":
            width, height = struct.unpack_from("<ii", data, 18)
            return Picture("bmp", width, abs(height))
    except (struct.error, IndexError):
        pass
    return UNKNOWN


def _png(data: bytes) -> Picture:
    width, height, _, colour = struct.unpack_from(">IIBB", data, 16)
    alpha, at = colour in (4, 6), 33
    while at + 8 <= len(data) and not alpha:
        length, kind = struct.unpack_from(">I4s", data, at)
        if kind == b"IDAT":
            break
        alpha, at = kind == b"tRNS", at + 12 + length
    return Picture("png", width, height, alpha)


def _jpeg(data: bytes) -> Picture:
    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD7:
            at += 1 if marker == 0xFF else 2
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack_from(">HH", data, at + 5)
            return Picture("jpeg", width, height)
        if marker in (0xD9, 0xDA):
            break
        at += 2 + struct.unpack_from(">H", data, at + 2)[0]
    return UNKNOWN


def _webp(data: bytes) -> Picture:
    kind = data[12:16]
    if kind == b"VP8X":
        size = int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
        return Picture("webp", *size, alpha=bool(data[20] & 0x10))
    if kind == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return Picture("webp", (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1, bool(bits >> 28 & 1))
    if kind == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return Picture("webp", width & 0x3FFF, height & 0x3FFF)
    return UNKNOWN
