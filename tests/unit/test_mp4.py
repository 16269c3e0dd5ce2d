"""The MP4 probe on real files and on hand-built boxes.

Fixtures in tests/fixtures (tiny, made once with ffmpeg 5.1 so CI needs no ffmpeg):
  moov_at_end.mp4 (audio track first, then a 96x64 video; moov after mdat, 2 s):
    ffmpeg -f lavfi -i testsrc=size=96x64:rate=5:duration=2 \
      -f lavfi -i sine=frequency=440:sample_rate=8000:duration=2 -map 1:a -map 0:v \
      -c:v libx264 -preset veryslow -crf 45 -pix_fmt yuv420p -g 5 -c:a aac -b:a 8k -ac 1 \
      -fflags +bitexact moov_at_end.mp4
  fragmented.mp4 (empty moov, mvhd duration 0, no mehd, 3 one-second fragments, 96x64):
    ffmpeg -f lavfi -i testsrc=size=96x64:rate=5:duration=3 -c:v libx264 -preset veryslow \
      -crf 45 -pix_fmt yuv420p -g 5 -movflags frag_keyframe+empty_moov+default_base_moof \
      -fflags +bitexact fragmented.mp4
  fragmented_head_in_moov.mp4 (first second in moov, so mvhd says 1 s; 3 s in all; 64x96):
    ffmpeg -f lavfi -i testsrc=size=64x96:rate=5:duration=3 -c:v libx264 -preset veryslow \
      -crf 45 -pix_fmt yuv420p -g 5 -movflags frag_keyframe -fflags +bitexact \
      fragmented_head_in_moov.mp4
"""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from consumers.media.mp4 import (
    Mp4Info,
    NotAVideoError,
    NotMp4Error,
    check_video,
    is_mp4_signature,
    probe_mp4,
)

ROOT = Path(__file__).resolve().parents[2]
MEDIA = ROOT / "simulator" / "media"
FIXTURES = ROOT / "tests" / "fixtures"
NOTHING = Mp4Info(None, None, None)


# --- real files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "duration", "width", "height"),
    [
        (MEDIA / "landscape_720p_5s.mp4", 5.0, 1280, 720),
        (MEDIA / "landscape_480p_5s.mp4", 5.0, 832, 480),
        (MEDIA / "portrait_720p_4s.mp4", 4.0, 720, 1280),
        (FIXTURES / "moov_at_end.mp4", 2.0, 96, 64),
        (FIXTURES / "fragmented.mp4", 3.0, 96, 64),
        (FIXTURES / "fragmented_head_in_moov.mp4", 3.0, 64, 96),
    ],
    ids=lambda v: v.name if isinstance(v, Path) else None,
)
def test_probe_real_files(path: Path, duration: float, width: int, height: int) -> None:
    info = probe_mp4(path)
    assert (info.width, info.height) == (width, height)
    assert info.duration == pytest.approx(duration, abs=0.1)
    with path.open("rb") as f:  # an open file works too
        assert probe_mp4(f) == info


def test_moov_at_end_is_really_at_the_end() -> None:
    data = (FIXTURES / "moov_at_end.mp4").read_bytes()
    assert data.index(b"moov") > data.index(b"mdat")


def test_signature() -> None:
    head = (MEDIA / "landscape_720p_5s.mp4").read_bytes()[:8]
    assert is_mp4_signature(head)
    assert not is_mp4_signature(b"<!DOCTYPE html>")
    assert not is_mp4_signature(head[:7])
    assert not is_mp4_signature(b"")


@pytest.mark.parametrize("data", [b"", b"\x00" * 7, b"<html>not a video</html>", b"RIFF....AVI "])
def test_not_an_mp4_raises(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(data)
    with pytest.raises(NotMp4Error):
        probe_mp4(path)


# --- damaged files: None fields, never an exception -------------------------------------------


def test_truncated_before_a_moov_at_the_end(tmp_path: Path) -> None:
    data = (FIXTURES / "moov_at_end.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: data.index(b"moov") - 100])
    assert probe_mp4(path) == NOTHING


def test_truncated_mdat_after_moov_still_reads_the_header(tmp_path: Path) -> None:
    # The probe reads boxes, it does not validate samples: catching a short download is the
    # Content-Length check's job (consumers.media.download).
    data = (MEDIA / "landscape_720p_5s.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert probe_mp4(path) == Mp4Info(5.0, 1280, 720)


@pytest.mark.parametrize(
    "name", ["moov_at_end.mp4", "fragmented.mp4", "fragmented_head_in_moov.mp4"]
)
def test_every_truncation_and_random_damage_is_survived(tmp_path: Path, name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    rng = random.Random(name)
    samples = [data[:cut] for cut in range(8, len(data), 7)]
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(8, len(data))] = rng.randrange(256)
        samples.append(bytes(damaged))
    for sample in samples:
        info = probe_mp4(cast(BinaryIO, io.BytesIO(sample)))
        assert info.duration is None or info.duration >= 0
        assert info.width is None or 0 < info.width <= 65535


def test_garbage_after_ftyp(tmp_path: Path) -> None:
    rng = random.Random(1)
    ftyp = box(b"ftyp", b"isom\0\0\0\0isom")
    for _ in range(200):
        sample = ftyp + bytes(rng.randrange(256) for _ in range(rng.randrange(200)))
        assert probe_mp4(cast(BinaryIO, io.BytesIO(sample))) == NOTHING


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # Running past the end of the file: clamped to it, so the payload is still read.
        (struct.pack(">I4sQ", 1, b"moov", 2**64 - 1), Mp4Info(12.5, 640, 360)),
        (struct.pack(">I4s", 0xFFFFFFFF, b"moov"), Mp4Info(12.5, 640, 360)),
        # Smaller than its own header: the scan stops there.
        (struct.pack(">I4s", 3, b"moov"), NOTHING),
        (struct.pack(">I4sQ", 1, b"moov", 4), NOTHING),
    ],
)
def test_absurd_sizes(header: bytes, expected: Mp4Info) -> None:
    assert probe(box(b"ftyp", b"isom") + header + movie()[8:]) == expected


def test_reads_only_the_boxes_of_a_huge_file(tmp_path: Path) -> None:
    # ftyp, a 3 GiB mdat (sparse: no disk used) with a 64-bit size, moov at the end.
    path = tmp_path / "huge.mp4"
    mdat_size = 3 * 2**30
    with path.open("wb") as f:
        f.write(box(b"ftyp", b"isom"))
        f.write(struct.pack(">I4sQ", 1, b"mdat", mdat_size))
        f.seek(mdat_size - 16, io.SEEK_CUR)
        f.write(movie())
    with path.open("rb", buffering=0) as raw:
        counting = CountingReader(raw)
        assert probe_mp4(cast(BinaryIO, counting)) == Mp4Info(12.5, 640, 360)
    assert counting.bytes_read < 4096


# --- hand-built boxes: versions, rotation, fallbacks, fragments -------------------------------


def test_version_1_headers() -> None:
    data = box(b"ftyp", b"isom") + movie(version=1, duration=90_000 * 7, timescale=90_000)
    assert probe(data) == Mp4Info(7.0, 640, 360)


def test_moov_with_size_zero_runs_to_the_end() -> None:
    moov = movie()
    data = box(b"ftyp", b"isom") + struct.pack(">I", 0) + moov[4:]
    assert probe(data) == Mp4Info(12.5, 640, 360)


def test_rotated_track_reports_the_display_size() -> None:
    rotate_90 = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    assert probe(box(b"ftyp", b"isom") + movie(matrix=rotate_90)) == Mp4Info(12.5, 360, 640)


def test_size_from_the_sample_entry_when_tkhd_has_none() -> None:
    data = box(b"ftyp", b"isom") + movie(size=(0, 0), sample_entry=(320, 240))
    assert probe(data) == Mp4Info(12.5, 320, 240)


def test_first_video_track_wins_over_an_audio_track() -> None:
    data = box(b"ftyp", b"isom") + movie(tracks=[(b"soun", (0, 0)), (b"vide", (1920, 1080))])
    assert probe(data) == Mp4Info(12.5, 1920, 1080)


def test_no_video_track() -> None:
    assert probe(box(b"ftyp", b"isom") + movie(tracks=[(b"soun", (0, 0))])) == Mp4Info(
        12.5, None, None
    )


@pytest.mark.parametrize(
    ("version", "duration"), [(0, 0xFFFFFFFF), (1, 2**64 - 1), (0, 0)], ids=str
)
def test_unknown_duration(version: int, duration: int) -> None:
    data = box(b"ftyp", b"isom") + movie(version=version, duration=duration)
    assert probe(data) == Mp4Info(None, 640, 360)


@pytest.mark.parametrize("version", [0, 1])
def test_fragmented_duration_from_mehd(version: int) -> None:
    mehd_value = struct.pack(">Q" if version else ">I", 8_000)
    mvex = box(b"mvex", box(b"mehd", full(version) + mehd_value))
    data = box(b"ftyp", b"isom") + movie(duration=0, extra=mvex)
    assert probe(data) == Mp4Info(8.0, 640, 360)


def test_fragmented_without_mehd_or_fragments_has_no_duration() -> None:
    data = box(b"ftyp", b"isom") + movie(duration=0, extra=box(b"mvex"))
    assert probe(data) == Mp4Info(None, 640, 360)


def test_mehd_wins_over_the_fragments(tmp_path: Path) -> None:
    # fragmented.mp4 has an mvex with only a trex: add an mehd saying 2.5 s (timescale 1000).
    data = (FIXTURES / "fragmented.mp4").read_bytes()
    mehd = box(b"mehd", full(0) + struct.pack(">I", 2500))
    data = grow(data, [b"moov", b"mvex"], mehd)
    assert probe(data) == Mp4Info(2.5, 96, 64)


# --- helpers ----------------------------------------------------------------------------------


def probe(data: bytes) -> Mp4Info:
    return probe_mp4(cast(BinaryIO, io.BytesIO(data)))


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(version: int, flags: int = 0) -> bytes:
    return struct.pack(">I", version << 24 | flags)


IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def movie(
    *,
    version: int = 0,
    timescale: int = 1000,
    duration: int = 12_500,
    size: tuple[int, int] = (640, 360),
    matrix: tuple[int, ...] = IDENTITY,
    sample_entry: tuple[int, int] | None = None,
    tracks: list[tuple[bytes, tuple[int, int]]] | None = None,
    extra: bytes = b"",
) -> bytes:
    """A moov box: mvhd, then one trak per (handler, size), then `extra`."""
    if version == 1:
        mvhd = full(1) + struct.pack(">QQIQ", 0, 0, timescale, duration) + bytes(80)
    else:
        mvhd = full(0) + struct.pack(">IIII", 0, 0, timescale, duration) + bytes(80)
    traks = [
        trak(i + 1, handler, track_size, version, matrix, sample_entry)
        for i, (handler, track_size) in enumerate(tracks or [(b"vide", size)])
    ]
    return box(b"moov", box(b"mvhd", mvhd), *traks, extra)


def trak(
    track_id: int,
    handler: bytes,
    size: tuple[int, int],
    version: int,
    matrix: tuple[int, ...],
    sample_entry: tuple[int, int] | None,
) -> bytes:
    if version == 1:
        times = struct.pack(">QQIIQ", 0, 0, track_id, 0, 0)
    else:
        times = struct.pack(">IIIII", 0, 0, track_id, 0, 0)
    tkhd = (
        full(version, 3)
        + times
        + bytes(8)
        + struct.pack(">hhhH", 0, 0, 0, 0)
        + struct.pack(">9i", *matrix)
        + struct.pack(">II", size[0] << 16, size[1] << 16)
    )
    hdlr = full(0) + bytes(4) + handler + bytes(12) + b"Handler\0"
    mdhd = full(0) + struct.pack(">IIIIHH", 0, 0, 1000, 0, 0, 0)
    stsd = full(0) + struct.pack(">I", 0)
    if sample_entry:
        entry = bytes(6) + struct.pack(">H", 1) + bytes(16) + struct.pack(">HH", *sample_entry)
        stsd = full(0) + struct.pack(">I", 1) + box(b"avc1", entry + bytes(50))
    minf = box(b"minf", box(b"stbl", box(b"stsd", stsd)))
    mdia = box(b"mdia", box(b"mdhd", mdhd), box(b"hdlr", hdlr), minf)
    return box(b"trak", box(b"tkhd", tkhd), mdia)


def grow(data: bytes, path: list[bytes], addition: bytes) -> bytes:
    """Append `addition` inside the box at `path` (32-bit sizes), fixing the enclosing sizes.
    Later top-level boxes move, which is fine with default-base-is-moof fragments."""
    start, end, sizes = 0, len(data), []
    for kind in path:
        pos = start
        while True:
            size, found = struct.unpack_from(">I4s", data, pos)
            if found == kind:
                break
            pos += size
        sizes.append(pos)
        start, end = pos + 8, pos + size
    out = bytearray(data[:end] + addition + data[end:])
    for pos in sizes:
        struct.pack_into(">I", out, pos, struct.unpack_from(">I", out, pos)[0] + len(addition))
    return bytes(out)


class CountingReader:
    """A binary file that counts the bytes read through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


# --- check_video: what makes a file a video ---------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [*sorted(MEDIA.glob("*.mp4")), *sorted(FIXTURES.glob("*.mp4"))],
    ids=lambda p: p.name,
)
def test_every_real_video_passes_the_check(path: Path) -> None:
    info = check_video(path)
    assert info == probe_mp4(path)
    assert info.width and info.height


@pytest.mark.parametrize(
    ("data", "missing"),
    [
        # The 100-byte file of the issue: the signature and nothing else a player can use.
        (box(b"ftyp", b"isom\0\0\0\0isomiso2avc1mp41") + bytes(72), "no moov"),
        (box(b"ftyp", b"isom") + box(b"mdat", bytes(500)), "no moov"),
        (box(b"ftyp", b"isom") + box(b"moov"), "no readable video track"),
        (box(b"ftyp", b"isom") + movie(tracks=[(b"soun", (0, 0))]), "no readable video track"),
        (box(b"ftyp", b"isom") + movie(size=(0, 0), sample_entry=(0, 0)), "no width and height"),
    ],
    ids=["signature-only", "mdat-only", "empty-moov", "audio-only", "no-size"],
)
def test_a_container_without_a_video_is_refused(data: bytes, missing: str) -> None:
    with pytest.raises(NotAVideoError, match=missing):
        check_video(cast(BinaryIO, io.BytesIO(data)))
    probe(data)  # the best-effort probe still answers (None fields)


def test_truncated_before_the_moov_is_refused(tmp_path: Path) -> None:
    data = (FIXTURES / "moov_at_end.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: data.index(b"moov") - 100])
    with pytest.raises(NotAVideoError, match="truncated"):
        check_video(path)


def test_check_video_needs_the_signature() -> None:
    with pytest.raises(NotMp4Error):
        check_video(cast(BinaryIO, io.BytesIO(b"<html></html>")))
