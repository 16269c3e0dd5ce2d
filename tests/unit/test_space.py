"""The free-space guard of VIDEO_DIR: below the threshold downloads wait (logged) rather than
fail on ENOSPC; the wait ends when space comes back, and a deadline can cut it."""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
from pathlib import Path

import pytest

from consumers.media import space
from consumers.media.space import (
    SpaceGuard,
    free_bytes,
    free_bytes_or_nan,
    guard_for,
    wait_for_free_space,
)


class Disk:
    """Free bytes that tests set; time that moves only when the guard sleeps."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.clock = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: list[int] = []  # free bytes after each sleep, in turn
        self.error: OSError | None = None
        self.measured = 0

    def measure(self, path: Path) -> int:
        self.measured += 1
        if self.error is not None:
            raise self.error
        return self.free

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock += seconds
        if self.on_sleep:
            self.free = self.on_sleep.pop(0)
        await asyncio.sleep(0)

    def guard(self, min_free: int = 1000, **options: float) -> SpaceGuard:
        return SpaceGuard(
            "/videos",
            min_free,
            measure=self.measure,
            sleep=self.sleep,
            monotonic=lambda: self.clock,
            **options,
        )


def test_free_bytes_is_measured_on_the_directory_or_its_nearest_parent(tmp_path: Path) -> None:
    expected = shutil.disk_usage(tmp_path).free
    assert abs(free_bytes(tmp_path) - expected) < 64 * 1024 * 1024
    assert abs(free_bytes(tmp_path / "not" / "yet") - expected) < 64 * 1024 * 1024
    assert free_bytes("relative-dir-that-does-not-exist/videos") > 0
    assert free_bytes_or_nan(tmp_path) > 0


def test_the_gauge_value_is_nan_when_the_disk_cannot_be_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def denied(path: object) -> object:
        raise PermissionError("denied")

    monkeypatch.setattr(space.shutil, "disk_usage", denied)
    assert math.isnan(free_bytes_or_nan("/videos"))


async def test_a_measurement_with_room_to_spare_serves_the_next_downloads() -> None:
    disk = Disk(free=1000 + 350)
    guard = disk.guard(min_free=1000)
    assert [await guard.wait(download_bytes=100) for _ in range(3)] == [0.0] * 3
    assert disk.measured == 1  # 350 spare: room for this download and two more
    disk.free = 500  # meanwhile the disk filled: the next one measures and waits
    disk.on_sleep = [2000]
    assert await guard.wait(download_bytes=100) > 0 and disk.measured == 3
    await guard.wait(download_bytes=100)
    disk.clock += space.REMEASURE_S  # a measurement is used for a second at most
    await guard.wait(download_bytes=100)
    assert disk.measured == 4
    await guard.wait()  # a download of unknown size always measures
    assert disk.measured == 5


async def test_with_enough_space_nothing_waits() -> None:
    disk = Disk(free=5000)
    guard = disk.guard()
    assert await guard.wait() == 0.0 and disk.sleeps == [] and not guard.low
    assert guard.free_bytes() == 5000
    assert await disk.guard(min_free=0).wait() == 0.0  # 0: the guard is off


async def test_below_the_threshold_downloads_wait_until_space_comes_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "video.space")
    disk = Disk(free=10)
    disk.on_sleep = [20, 30, 999, 1000]
    guard = disk.guard(poll_s=5.0, log_every_s=12.0)
    waited = await guard.wait()
    assert waited == 20.0 and disk.sleeps == [5.0] * 4
    assert guard.waiting == 0 and not guard.low
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # Logged when it starts and every 12 s while it lasts, not at every poll.
    assert len(warnings) == 2
    assert "has 10 bytes free, below VIDEO_DIR_MIN_FREE_BYTES=1000" in warnings[0]
    assert "1 waiting" in warnings[0]
    assert any(
        "1000 bytes free again after 20 s: downloads resume" in r.getMessage()
        for r in caplog.records
    )


async def test_waiting_downloads_are_counted_and_a_deadline_cuts_the_wait() -> None:
    disk = Disk(free=0)
    guard = disk.guard()
    waiters = [asyncio.create_task(guard.wait()) for _ in range(3)]
    async with asyncio.timeout(5):
        while guard.waiting < 3:  # each measures in a thread first
            await asyncio.sleep(0.01)
    assert guard.waiting == 3 and guard.low
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    assert guard.waiting == 0
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await disk.guard().wait()


async def test_a_file_system_that_cannot_be_measured_does_not_block_downloads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    disk = Disk(free=0)
    disk.error = PermissionError("denied")
    assert await disk.guard().wait() == 0.0
    assert "cannot be measured" in caplog.text


async def test_one_shared_guard_per_directory_and_threshold(tmp_path: Path) -> None:
    assert guard_for(tmp_path, 1) is guard_for(tmp_path, 1)
    assert guard_for(tmp_path, 1) is not guard_for(tmp_path, 2)
    assert await wait_for_free_space(tmp_path, 1) == 0.0
    assert await wait_for_free_space(tmp_path, 0) == 0.0
    assert space.downloads_waiting_for_space() == 0
