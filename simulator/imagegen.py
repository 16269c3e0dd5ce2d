"""Small, valid test images of any size, written without an imaging library.

PNG (truecolour, optionally with alpha), baseline JPEG (greyscale, one flat tone), lossless WebP
(VP8L, one colour: every prefix code has a single symbol, so the pixels take no bits) and BMP
(24-bit). Tests build `data:` URIs from them; `python -m simulator.imagegen` rewrites the images
the simulator serves from `media/` (see `MEDIA_IMAGES`).
"""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path


def png(
    width: int, height: int, *, alpha: bool = False, rgb: tuple[int, int, int] = (90, 140, 200)
) -> bytes:
    """A PNG of one colour; colour type 6 (RGBA) with `alpha`, else 2 (RGB)."""
    pixel = bytes(rgb) + (b"\x80" if alpha else b"")
    raw = b"".join(b"\x00" + pixel * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# The standard luminance Huffman tables (ITU T.81 Annex K.3), as DHT segments.
_DC_COUNTS = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
_DC_SYMBOLS = bytes(range(12))
_AC_COUNTS = bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D])
_AC_SYMBOLS = bytes.fromhex(
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a"
    "25262728292a3435363738393a434445464748494a535455565758595a636465666768696a737475767778797a"
    "838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9ca"
    "d2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa"
)


def jpeg(width: int, height: int) -> bytes:
    """A baseline greyscale JPEG, mid-grey: every 8x8 block is DC 0 ("00") then EOB ("1010")."""
    quant = b"\x00" + bytes([1] * 64)
    frame = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    tables = b"\x00" + _DC_COUNTS + _DC_SYMBOLS + b"\x10" + _AC_COUNTS + _AC_SYMBOLS
    scan = b"\x01\x01\x00\x00\x3f\x00"
    blocks = -(-width // 8) * -(-height // 8)
    bits = "001010" * blocks
    bits += "1" * (-len(bits) % 8)  # pad with ones
    data = int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""
    data = data.replace(b"\xff", b"\xff\x00")  # byte stuffing (never needed for this pattern)
    jfif = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return (
        b"\xff\xd8"
        + _segment(0xE0, jfif)
        + _segment(0xDB, quant)
        + _segment(0xC0, frame)
        + _segment(0xC4, tables)
        + _segment(0xDA, scan)
        + data
        + b"\xff\xd9"
    )


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def webp(width: int, height: int, rgba: tuple[int, int, int, int] = (200, 120, 60, 255)) -> bytes:
    """A lossless WebP (VP8L) of one colour."""
    bits: list[tuple[int, int]] = [(width - 1, 14), (height - 1, 14), (int(rgba[3] < 255), 1)]
    bits += [(0, 3), (0, 1), (0, 1), (0, 1)]  # version 0; no transform, colour cache, meta codes
    red, green, blue, alpha = rgba
    for symbol in (green, red, blue, alpha):  # simple codes of one 8-bit symbol each
        bits += [(1, 1), (0, 1), (1, 1), (symbol, 8)]
    bits += [(1, 1), (0, 1), (0, 1), (0, 1)]  # distance: one 1-bit symbol, 0
    value = position = 0
    for number, count in bits:  # least significant bit first
        value |= number << position
        position += count
    payload = b"\x2f" + value.to_bytes(-(-position // 8), "little")
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def bmp(width: int, height: int) -> bytes:
    """An 8-bit BMP of one colour, run-length encoded (BI_RLE8), so that it stays small."""
    row = b"".join(bytes([min(255, width - x), 0]) for x in range(0, width, 255)) + b"\x00\x00"
    pixels = row * height + b"\x00\x01"  # end of line per row, then end of bitmap
    palette = b"\xc0\x80\x40\x00"  # one colour, as blue, green, red, reserved
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 1, len(pixels), 2835, 2835, 1, 0)
    offset = 14 + len(info) + len(palette)
    header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    return header + info + palette + pixels


def data_uri(content: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(content).decode()}"


# The images the simulator serves (media/), by name: what each is for.
MEDIA_IMAGES = {
    "cat.png": lambda: png(640, 480),  # a valid first frame for every image model (4:3)
    "cat-end.png": lambda: png(640, 480, rgb=(200, 140, 90)),  # a matching last frame
    "portrait.jpg": lambda: jpeg(480, 854),  # 9:16 JPEG
    "square.webp": lambda: webp(512, 512),  # WebP: not for CogVideoX
    "frame.bmp": lambda: bmp(320, 240),  # BMP: DashScope only
    "alpha.png": lambda: png(320, 240, alpha=True),  # PNG with alpha: refused by DashScope
    "tiny.png": lambda: png(200, 150),  # under DashScope's 240 px
    "banner.png": lambda: png(1000, 200),  # 5:1, outside Vidu's 1:4 to 4:1
    "icon.png": lambda: png(100, 100),  # under vidu2-reference's 128 px
    "large.png": lambda: png(1280, 960),  # 4x the pixels of cat.png: not a similar end frame
}


def write_media(directory: Path) -> None:
    for name, make in MEDIA_IMAGES.items():
        (directory / name).write_bytes(make())


if __name__ == "__main__":
    write_media(Path(__file__).parent / "media")
