"""What the completed event reports about a video (duration, width, height), read from its
ISO-BMFF boxes with seeks and small reads: a multi-GiB file costs a few KiB of I/O.

`probe_mp4` is best effort by design: a damaged or unusual file gives None fields, never an
exception. Only a file that is not an MP4 at all (no `ftyp` box at the start) raises `NotMp4Error`.
The reader only descends a fixed path of known containers (moov/trak/mdia/minf/stbl, moof/traf),
so nesting is bounded by construction; box counts and leaf reads are capped.

`check_video` decides whether a downloaded file is a video at all, and is what downloads use. It
requires what a player needs before the first frame: an `ftyp` box first, a `moov` box (the
movie header: before or after `mdat`; a fragmented MP4 has one too, with `mvex`, and its samples
in `moof`/`mdat` pairs after it), and in it a video track (handler `vide`) whose width and height
can be read and are not zero. The duration may stay unknown (null in the completed event). A file
with only the signature, a truncated file whose `moov` never arrived, an audio-only MP4 and a
video track without a size raise `NotAVideoError`, whose message names what is missing.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

# Children scanned per container: a long fragmented file has one moof/mdat pair per fragment.
_MAX_BOXES = 100_000
_MAX_LEAF_BYTES = 256  # every header box we parse fits in this
_MAX_TRUN_BYTES = 4 * 1024 * 1024  # per-sample table of one fragment run

_T = TypeVar("_T")
_Span = tuple[int, int]  # payload start, payload end (file offsets)


@dataclass(frozen=True)
class Mp4Info:
    duration: float | None  # seconds
    width: int | None  # display size: a 90/270 degree rotation in the track matrix is applied
    height: int | None


class NotMp4Error(ValueError):
    """The file does not start with an ISO-BMFF `ftyp` box."""


class NotAVideoError(ValueError):
    """An MP4 container without a readable video: no `moov`, or no video track with a size."""


class _Bad(Exception):
    """A box that cannot be what it claims: give up on the field it was for."""


@dataclass(frozen=True)
class _Track:
    track_id: int
    width: int | None
    height: int | None
    timescale: int
    duration: int  # of the samples in moov, in `timescale` units


_NO_MOOV = _Track(track_id=0, width=None, height=None, timescale=0, duration=0)


def is_mp4_signature(first_bytes: bytes) -> bool:
    return len(first_bytes) >= 8 and first_bytes[4:8] == b"ftyp"


def probe_mp4(source: str | os.PathLike[str] | BinaryIO) -> Mp4Info:
    """Duration and size of an MP4 file (a path, or a binary file open for reading)."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            return _probe(f)
    return _probe(source)


def check_video(source: str | os.PathLike[str] | BinaryIO) -> Mp4Info:
    """`probe_mp4`, for a file that must be a video (see the module docstring): raises
    NotMp4Error without the signature, NotAVideoError without a moov or a sized video track."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            return _check(f)
    return _check(source)


def _check(f: BinaryIO) -> Mp4Info:
    info, track = _examine(f)
    if track is _NO_MOOV:
        raise NotAVideoError(
            "it has no moov box (the movie header): the file is truncated or holds no movie"
        )
    if track is None:
        raise NotAVideoError("its moov box has no readable video track (audio only, or damaged)")
    if info.width is None or info.height is None:
        raise NotAVideoError("its video track has no width and height")
    return info


def _probe(f: BinaryIO) -> Mp4Info:
    return _examine(f)[0]


def _examine(f: BinaryIO) -> tuple[Mp4Info, _Track | None]:
    """The file's info and its first video track (_NO_MOOV when there is no moov at all)."""
    f.seek(0)
    if not is_mp4_signature(f.read(8)):
        raise NotMp4Error("not an MP4 file: it does not start with an ftyp box")
    file_end = f.seek(0, os.SEEK_END)
    moov = _guard(_first, f, 0, file_end, b"moov")
    if moov is None:  # e.g. truncated before a moov at the end
        return Mp4Info(None, None, None), _NO_MOOV
    return _probe_moov(f, moov, file_end)


def _guard(fn: Callable[..., _T], *args: Any) -> _T | None:
    """fn(*args), or None when the boxes it reads are damaged: each field fails on its own."""
    try:
        return fn(*args)
    except (_Bad, struct.error, ValueError, OverflowError, IndexError):
        return None


def _boxes(f: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in [start, end); stops at a bad header."""
    pos = start
    for _ in range(_MAX_BOXES):
        if end - pos < 8:
            return
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            return
        size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if size == 1:  # 64-bit largesize follows the type
            if len(head) < 16:
                return
            (size,) = struct.unpack_from(">Q", head, 8)
            header = 16
        elif size == 0:  # extends to the end of its container
            size = end - pos
        if size < header:
            return
        # A box running past its container (a truncated file) is clamped, not trusted.
        yield kind, pos + header, min(pos + size, end)
        pos += size


def _first(f: BinaryIO, start: int, end: int, kind: bytes) -> _Span | None:
    for k, s, e in _boxes(f, start, end):
        if k == kind:
            return s, e
    return None


def _read(f: BinaryIO, span: _Span, limit: int = _MAX_LEAF_BYTES) -> bytes:
    f.seek(span[0])
    return f.read(min(span[1] - span[0], limit))


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from(">I", data, offset)[0])


def _u64(data: bytes, offset: int) -> int:
    return int(struct.unpack_from(">Q", data, offset)[0])


def _times(full_box: bytes) -> tuple[int, int]:
    """(timescale, duration) of an mvhd or mdhd payload, version 0 or 1."""
    if full_box[0] == 1:
        return _u32(full_box, 20), _u64(full_box, 24)
    return _u32(full_box, 12), _u32(full_box, 16)


def _probe_moov(f: BinaryIO, moov: _Span, file_end: int) -> tuple[Mp4Info, _Track | None]:
    mvhd = mvex = track = None
    for kind, s, e in _boxes(f, *moov):
        if kind == b"mvhd" and mvhd is None:
            mvhd = _read(f, (s, e))
        elif kind == b"mvex" and mvex is None:
            mvex = (s, e)
        elif kind == b"trak" and track is None:
            track = _guard(_video_track, f, (s, e))
    width, height = (track.width, track.height) if track else (None, None)
    timescale, seconds = _guard(_movie_duration, mvhd) or (0, None)
    if mvex is not None and timescale:
        # Fragmented: mvhd covers only the samples in moov (often none). The whole is in mehd
        # when the muxer wrote one, else it is the end of the last fragment.
        seconds = (
            _guard(_mehd_seconds, f, mvex, timescale)
            or _guard(_fragments_seconds, f, track, mvex, moov[1], file_end)
            or seconds
        )
    return Mp4Info(round(seconds, 3) if seconds else None, width, height), track


def _movie_duration(mvhd: bytes | None) -> tuple[int, float | None]:
    """(timescale, seconds) from mvhd; seconds None when unset or "unknown" (all ones)."""
    if mvhd is None:
        raise _Bad("no mvhd")
    timescale, duration = _times(mvhd)
    if timescale == 0:
        raise _Bad("mvhd timescale 0")
    unknown = 0xFFFFFFFFFFFFFFFF if mvhd[0] == 1 else 0xFFFFFFFF
    return timescale, duration / timescale if 0 < duration < unknown else None


def _video_track(f: BinaryIO, trak: _Span) -> _Track | None:
    tkhd = mdia = None
    for kind, s, e in _boxes(f, *trak):
        if kind == b"tkhd":
            tkhd = _read(f, (s, e))
        elif kind == b"mdia":
            mdia = (s, e)
    if tkhd is None or mdia is None:
        return None
    hdlr = mdhd = minf = None
    for kind, s, e in _boxes(f, *mdia):
        if kind == b"hdlr":
            hdlr = _read(f, (s, e))
        elif kind == b"mdhd":
            mdhd = _read(f, (s, e))
        elif kind == b"minf":
            minf = (s, e)
    if hdlr is None or hdlr[8:12] != b"vide" or mdhd is None:
        return None
    # tkhd: version/flags, times, track_ID, ..., matrix (9 x int32), width, height (16.16).
    v1 = tkhd[0] == 1
    track_id = _u32(tkhd, 20 if v1 else 12)
    a, b, _u, c, d = struct.unpack_from(">5i", tkhd, 52 if v1 else 40)
    raw_w, raw_h = struct.unpack_from(">II", tkhd, 88 if v1 else 76)
    width, height = round(raw_w / 65536), round(raw_h / 65536)
    if not (width and height) and minf is not None:  # some muxers leave tkhd at 0
        width, height = _sample_entry_size(f, minf)
    if a == 0 and d == 0 and b != 0 and c != 0:  # rotated by 90 or 270 degrees
        width, height = height, width
    timescale, duration = _times(mdhd)
    return _Track(
        track_id=track_id,
        width=width if 0 < width <= 65535 else None,
        height=height if 0 < height <= 65535 else None,
        timescale=timescale,
        duration=duration if duration != 0xFFFFFFFF else 0,
    )


def _sample_entry_size(f: BinaryIO, minf: _Span) -> tuple[int, int]:
    stbl = _first(f, *minf, b"stbl")
    stsd = _first(f, *stbl, b"stsd") if stbl else None
    if stsd is None:
        return 0, 0
    data = _read(f, stsd)
    # version/flags, entry_count, then the first VisualSampleEntry: its width/height (uint16)
    # follow 8 header, 6+2 SampleEntry and 16 pre_defined/reserved bytes.
    w, h = struct.unpack_from(">HH", data, 40)
    return w, h


def _mehd_seconds(f: BinaryIO, mvex: _Span, timescale: int) -> float | None:
    mehd = _first(f, *mvex, b"mehd")
    if mehd is None:
        return None
    data = _read(f, mehd)
    duration = _u64(data, 4) if data[0] == 1 else _u32(data, 4)
    return duration / timescale if duration else None


def _fragments_seconds(
    f: BinaryIO, track: _Track | None, mvex: _Span, moov_end: int, file_end: int
) -> float | None:
    """End time of the video track's last fragment (moof boxes follow moov at the top level)."""
    if track is None or track.timescale == 0:
        return None
    default_duration = 0
    for kind, s, e in _boxes(f, *mvex):
        if kind == b"trex":
            trex = _read(f, (s, e))
            if _u32(trex, 4) == track.track_id:
                default_duration = _u32(trex, 12)
    end = track.duration  # samples in moov come first
    found = False
    for kind, s, e in _boxes(f, moov_end, file_end):
        if kind != b"moof":
            continue
        for child, cs, ce in _boxes(f, s, e):
            if child == b"traf":
                traf_end = _traf_end(f, (cs, ce), track.track_id, default_duration, end)
                if traf_end is not None:
                    end, found = traf_end, True
    return end / track.timescale if found and end else None


def _traf_end(
    f: BinaryIO, traf: _Span, track_id: int, default_duration: int, start: int
) -> int | None:
    """Decode time after the last sample of this track fragment; None when it is another track's."""
    time = start
    for kind, s, e in _boxes(f, *traf):
        if kind == b"tfhd":
            tfhd = _read(f, (s, e))
            if _u32(tfhd, 4) != track_id:
                return None
            flags = _u32(tfhd, 0) & 0xFFFFFF
            offset = 8 + (8 if flags & 0x01 else 0) + (4 if flags & 0x02 else 0)
            if flags & 0x08:
                default_duration = _u32(tfhd, offset)
        elif kind == b"tfdt":  # absolute decode time of the fragment's first sample
            tfdt = _read(f, (s, e))
            time = _u64(tfdt, 4) if tfdt[0] == 1 else _u32(tfdt, 4)
        elif kind == b"trun":
            time += _trun_duration(f, (s, e), default_duration)
    return time


def _trun_duration(f: BinaryIO, trun: _Span, default_duration: int) -> int:
    head = _read(f, trun, 16)
    flags = _u32(head, 0) & 0xFFFFFF
    count = _u32(head, 4)
    if not flags & 0x100:  # no per-sample durations
        return count * default_duration
    offset = 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
    entry = 4 * bin(flags & 0xF00).count("1")  # duration, size, flags, composition offset
    table = count * entry
    if table > _MAX_TRUN_BYTES or trun[0] + offset + table > trun[1]:
        raise _Bad("trun sample table too large or truncated")
    f.seek(trun[0] + offset)
    data = f.read(table)
    if len(data) < table:
        raise _Bad("trun sample table truncated")
    return sum(_u32(data, i * entry) for i in range(count))
