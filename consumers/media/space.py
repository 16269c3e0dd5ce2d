"""Free space in VIDEO_DIR, and the guard downloads wait on when it runs low.

A download that fills the disk fails half-way with ENOSPC, and with it a task that was paid for.
Below `VIDEO_DIR_MIN_FREE_BYTES` downloads wait instead, polling until space comes back (video
retention, an operator, another volume), within their task's deadline: the caller bounds the
wait (the download step runs under the task's `asyncio.timeout`). One guard per directory and
threshold is shared by every download of the process, so a low-space episode is logged once
when it starts, again every minute while it lasts (with the number of downloads waiting), and
once when it ends.

Measuring is a `statvfs` in a worker thread, which under load cost more than the rest of the
guard: a measurement that left room for more downloads (counted at the most each may write) is
used again for them, for at most `REMEASURE_S` (other writers on the disk are not counted).

`free_bytes(video_dir)` is cheap and synchronous, for a gauge (`video_dir_free_bytes`) read on
every scrape (`free_bytes_or_nan` never raises, as a gauge callback must not). The threshold
is a margin, not a reservation: downloads that start together may together use more than it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

log = logging.getLogger("video.space")

POLL_S = 5.0
LOG_EVERY_S = 60.0
REMEASURE_S = 1.0


def free_bytes(video_dir: Path | str) -> int:
    """Bytes an unprivileged process may still write on VIDEO_DIR's file system (`f_bavail`).
    A directory not created yet is measured on the nearest existing parent."""
    path = Path(video_dir)
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except FileNotFoundError:
            continue
    return shutil.disk_usage(".").free  # a relative path whose parents are all missing


def free_bytes_or_nan(video_dir: Path | str) -> float:
    """`free_bytes` for a gauge callback (`video_dir_free_bytes`), which must not raise: NaN
    when the file system cannot be measured."""
    try:
        return float(free_bytes(video_dir))
    except OSError:
        return float("nan")


class SpaceGuard:
    """Downloads in `video_dir` wait here while less than `min_free_bytes` are free (0: never)."""

    def __init__(
        self,
        video_dir: Path | str,
        min_free_bytes: int,
        *,
        poll_s: float = POLL_S,
        log_every_s: float = LOG_EVERY_S,
        measure: Callable[[Path], int] = free_bytes,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.video_dir = Path(video_dir)
        self.min_free_bytes = min_free_bytes
        self.poll_s = poll_s
        self.log_every_s = log_every_s
        self._measure = measure
        self._sleep = sleep
        self._monotonic = monotonic
        self.waiting = 0  # downloads waiting for space now
        self._low_since: float | None = None
        self._logged_at = 0.0
        self._spare = 0  # room the last measurement left above the threshold, less what passed
        self._measured_at = 0.0

    def free_bytes(self) -> int:
        return self._measure(self.video_dir)

    @property
    def low(self) -> bool:
        """Whether the last measurement was below the threshold (downloads are waiting)."""
        return self._low_since is not None

    async def wait(self, download_bytes: int = 0) -> float:
        """Return once enough space is free for a download of at most `download_bytes` (0: not
        known, measure); the seconds waited. Cancellable at any point."""
        if self.min_free_bytes <= 0:
            return 0.0
        started = self._monotonic()
        if self._spare >= download_bytes > 0 and started - self._measured_at < REMEASURE_S:
            self._spare -= download_bytes  # room for this one as last measured
            return 0.0
        free = await self._free(download_bytes)
        if free is None or free >= self.min_free_bytes:
            self._recovered(free)
            return 0.0
        self.waiting += 1
        try:
            while free is not None and free < self.min_free_bytes:
                self._still_low(free)
                await self._sleep(self.poll_s)
                free = await self._free(download_bytes)
        finally:
            self.waiting -= 1
        self._recovered(free)
        return self._monotonic() - started

    async def _free(self, download_bytes: int) -> int | None:
        """None when the file system cannot be measured: the download goes ahead (and fails
        on its own if the directory is really unusable); the guard invents no failure."""
        try:
            free = await asyncio.to_thread(self._measure, self.video_dir)
        except OSError as exc:
            log.warning("free space of %s cannot be measured: %r", self.video_dir, exc)
            self._spare = 0
            return None
        self._spare = max(0, free - self.min_free_bytes - download_bytes)  # this one's taken
        self._measured_at = self._monotonic()
        return free

    def _still_low(self, free: int) -> None:
        now = self._monotonic()
        if self._low_since is None:
            self._low_since = now
        elif now - self._logged_at < self.log_every_s:
            return
        self._logged_at = now
        log.warning(
            "VIDEO_DIR %s has %d bytes free, below VIDEO_DIR_MIN_FREE_BYTES=%d: downloads wait "
            "for space (%d waiting, for %.0f s so far)",
            self.video_dir,
            free,
            self.min_free_bytes,
            self.waiting,
            now - self._low_since,
        )

    def _recovered(self, free: int | None) -> None:
        if self._low_since is None:
            return
        log.info(
            "VIDEO_DIR %s has %s bytes free again after %.0f s: downloads resume",
            self.video_dir,
            free if free is not None else "unknown",
            self._monotonic() - self._low_since,
        )
        self._low_since = None


_GUARDS: dict[tuple[Path, int], SpaceGuard] = {}


def guard_for(video_dir: Path | str, min_free_bytes: int) -> SpaceGuard:
    """The process's one guard for this directory and threshold."""
    key = (Path(video_dir), min_free_bytes)
    guard = _GUARDS.get(key)
    if guard is None:
        guard = _GUARDS[key] = SpaceGuard(video_dir, min_free_bytes)
    return guard


async def wait_for_free_space(
    video_dir: Path | str, min_free_bytes: int, download_bytes: int = 0
) -> float:
    """Wait until `video_dir` has `min_free_bytes` free (at once when it has, or when the
    threshold is 0); the seconds waited. For the download step, before it writes a byte of a
    download of at most `download_bytes` (0: not known, measure every time)."""
    return await guard_for(video_dir, min_free_bytes).wait(download_bytes)


def downloads_waiting_for_space() -> int:
    """Downloads of this process waiting for space now (for a gauge)."""
    return sum(guard.waiting for guard in _GUARDS.values())
