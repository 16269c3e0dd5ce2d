"""Retention in process: which tasks and videos a run deletes, dry runs, and the loop. The
MongoDB side (index, guards on the real server) is tested in tests/e2e/test_admin.py."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from consumers.operations import retention
from consumers.operations.retention import NoRetentionStore, RetentionReport, RetentionSweeper
from consumers.settings import Settings
from consumers.storage.memory import MemoryTaskStore
from tests.admin.fakes import NOW, FakeRetentionStore, task_doc

DAY = 86400.0


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(video_dir=str(tmp_path / "videos"), **values)  # type: ignore[arg-type]


def video(directory: Path, name: str, age_days: float, size: int = 100) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"v" * size)
    moment = time.time() - age_days * DAY
    os.utime(path, (moment, moment))
    return path


def finished(request_id: str, days_ago: float, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "request_id": request_id,
        "status": "completed",
        "active": False,
        "finished_at": NOW - timedelta(days=days_ago),
    }
    return task_doc(**{**base, **fields})


async def test_only_finished_tasks_past_the_retention_are_deleted(tmp_path: Path) -> None:
    store = FakeRetentionStore(
        [
            finished("old-done", 10),
            finished("old-failed", 8, status="failed"),
            finished("recent", 3),
            # Never an active task: terminal but its events not all on Kafka, or not terminal.
            finished("unpublished", 10, active=True),
            finished("running", 10, status="running", active=True),
            finished("never-finished", 10, finished_at=None),
        ]
    )
    sweeper = RetentionSweeper(store, settings(tmp_path, task_retention_days=7))
    report = await sweeper.run_once()
    assert report.tasks == 2 and sorted(report.request_ids) == ["old-done", "old-failed"]
    assert report.task_cutoff == NOW - timedelta(days=7)
    left = sorted(str(d["request_id"]) for d in store.tasks)
    assert left == ["never-finished", "recent", "running", "unpublished"]


async def test_a_dry_run_counts_every_batch_and_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "BATCH", 3)
    store = FakeRetentionStore([finished(f"r-{n:02d}", 9) for n in range(25)])
    sweeper = RetentionSweeper(store, settings(tmp_path, task_retention_days=7))
    dry = await sweeper.run_once(dry_run=True)
    assert dry.dry_run and dry.tasks == 25 and len(store.tasks) == 25
    assert len(dry.request_ids) == RetentionReport.SAMPLE
    assert store.batches == [3] * 8 + [1, 0]
    report = await sweeper.run_once()
    assert report.tasks == 25 and store.tasks == []
    assert report.as_dict()["tasks"]["deleted"] == 25


async def test_old_final_videos_go_but_parts_and_files_of_active_tasks_stay(
    tmp_path: Path,
) -> None:
    videos = tmp_path / "videos"
    gone = video(videos, "aliyun_20261101_100000_0_0123abcd.mp4", 10, size=300)
    orphan = video(videos, "zhipuai_20261101_100000_1_fedcba98.mp4", 9, size=200)
    live = video(videos, "zhipuai_20261101_100000_0_11112222.mp4", 10)
    recent = video(videos, "aliyun_20261128_100000_0_33334444.mp4", 1)
    part = video(videos, ".0b9e0f2e-7a43-4d59-a5a5-6a0f1f3e1c11.0.part", 10)
    other = video(videos, "notes.mp4", 10)
    (videos / "zhipuai_20261101_100000_0_55556666.mp4").mkdir()  # a directory, not a file
    store = FakeRetentionStore(
        [
            task_doc(
                request_id="downloading",
                status="downloading",
                videos=[{"index": 0, "url": "u", "filename": live.name, "temp_name": part.name}],
            ),
            finished(
                "done",
                1,
                videos=[{"index": 0, "url": "u", "filename": gone.name, "temp_name": ".x.0.part"}],
            ),
        ]
    )
    sweeper = RetentionSweeper(store, settings(tmp_path, video_retention_days=7))
    dry = await sweeper.run_once(dry_run=True)
    assert sorted(dry.videos) == sorted([gone, orphan]) and gone.exists()
    report = await sweeper.run_once()
    assert sorted(report.videos) == sorted([gone, orphan]) and report.video_bytes == 500
    assert report.videos_kept_active == 1 and report.tasks == 0 and report.task_cutoff is None
    assert not gone.exists() and not orphan.exists()
    assert live.exists() and recent.exists() and part.exists() and other.exists()
    assert report.as_dict()["videos"]["kept_for_active_tasks"] == 1


async def test_nothing_happens_when_retention_is_off_or_the_directory_is_missing(
    tmp_path: Path,
) -> None:
    store = FakeRetentionStore([finished("old", 100)])
    off = RetentionSweeper(store, settings(tmp_path, task_retention_days=0))
    assert not off.enabled
    report = await off.run_once()
    assert report.tasks == 0 and store.tasks != [] and report.as_dict()["tasks"]["cutoff"] is None
    no_dir = RetentionSweeper(store, settings(tmp_path, video_retention_days=1))
    assert (await no_dir.run_once()).videos == []


async def test_a_store_that_cannot_tell_deletes_nothing(tmp_path: Path) -> None:
    video(tmp_path / "videos", "aliyun_20261101_100000_0_0123abcd.mp4", 10)
    sweeper = RetentionSweeper.for_store(
        MemoryTaskStore(),
        settings(tmp_path, task_retention_days=1, video_retention_days=1),
    )
    assert isinstance(sweeper.store, NoRetentionStore)
    assert await sweeper.ensure_index() == "off"
    report = await sweeper.run_once()
    assert report.tasks == 0 and report.videos == []
    assert (await sweeper.store.now()).tzinfo is not None


async def test_the_loop_keeps_the_index_then_sweeps_every_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "video.retention")
    store = FakeRetentionStore([finished("old", 10)])
    sleeps: list[float] = []
    swept = asyncio.Event()

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) >= 3:
            swept.set()
            await asyncio.Event().wait()  # until stopped
        await asyncio.sleep(0)

    sweeper = RetentionSweeper(
        store,
        settings(tmp_path, task_retention_days=2.5, retention_interval_s=600),
        sleep=sleep,
        first_run_after_s=1.0,
    )
    sweeper.start()
    sweeper.start()  # once only
    await asyncio.wait_for(swept.wait(), 5)
    await sweeper.stop()
    await sweeper.stop()
    assert store.index_calls == [(216000, True)]
    assert sleeps == [1.0, 600, 600] and store.tasks == []
    assert "task retention 2.5 days: sweep" in caplog.text
    assert "1 finished tasks deleted" in caplog.text


async def test_off_the_loop_only_drops_an_index_left_by_an_earlier_setting(
    tmp_path: Path,
) -> None:
    store = FakeRetentionStore()
    sweeper = RetentionSweeper(store, settings(tmp_path))
    sweeper.start()
    for _ in range(10):
        await asyncio.sleep(0)
    assert store.index_calls == [(None, False)]
    assert sweeper._loop is not None and sweeper._loop.done()
    await sweeper.stop()


async def test_the_loop_survives_failures(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    class Flaky(FakeRetentionStore):
        calls = 0

        async def ensure_index(self, ttl_s: int | None, *, enabled: bool) -> str:
            raise AutoReconnect("down")

        async def now(self) -> datetime:
            self.calls += 1
            if self.calls == 1:
                raise AutoReconnect("still down")
            if self.calls == 2:
                raise RuntimeError("a bug")
            return await super().now()

    store = Flaky([finished("old", 10)])
    done = asyncio.Event()

    async def sleep(seconds: float) -> None:
        if store.calls >= 3:
            done.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0)

    sweeper = RetentionSweeper(store, settings(tmp_path, task_retention_days=1), sleep=sleep)
    sweeper.start()
    await asyncio.wait_for(done.wait(), 5)
    await sweeper.stop()
    assert store.tasks == []
    assert "index not checked" in caplog.text and "sweep skipped" in caplog.text
    assert "retention sweep failed" in caplog.text


class FakeAdmin:
    """`db.client.admin.command` answering as a server would."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.client = self
        self.admin = self

    async def command(self, command: object) -> object:
        name = "getParameter" if isinstance(command, dict) else str(command)
        answer = self.answers[name]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"getParameter": {"ttlMonitorEnabled": True}}, True),
        ({"getParameter": {"ttlMonitorEnabled": False}}, False),  # turned off by the DBA
        # getParameter not allowed for this user: serverStatus tells whether TTL passes run.
        ({"getParameter": OperationFailure("unauthorized"),
          "serverStatus": {"metrics": {"ttl": {"passes": 3}}}}, True),
        # mongo-java-server: no getParameter, and a serverStatus without TTL metrics.
        ({"getParameter": OperationFailure("no such command"),
          "serverStatus": {"metrics": {"cursor": {}}}}, False),
        ({"getParameter": OperationFailure("no"), "serverStatus": OperationFailure("no")}, False),
    ],
)  # fmt: skip
async def test_whether_the_server_runs_a_ttl_monitor(
    answers: dict[str, object], expected: bool
) -> None:
    assert await retention._ttl_monitor(FakeAdmin(answers)) is expected  # type: ignore[arg-type]
