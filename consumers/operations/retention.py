"""Retention: finished tasks (`TASK_RETENTION_DAYS`) and videos in VIDEO_DIR
(`VIDEO_RETENTION_DAYS`), both off by default.

Tasks. A task is deleted only when it is finished: terminal, all its events on Kafka (`active`
false), and `finished_at` older than the retention. Never an active task. Two mechanisms, for
two kinds of server:

- a TTL index (`task_retention`: `finished_at`, partial on `active: false`,
  `expireAfterSeconds`) where the server runs a TTL monitor (real MongoDB, checked with
  `getParameter ttlMonitorEnabled`, or `serverStatus`'s `metrics.ttl` where `getParameter` is
  not allowed): the server deletes, within about a minute of expiry;
- a sweep, every `RETENTION_INTERVAL_S`, in any case: the only deletion where the server has no
  TTL monitor (mongo-java-server accepts the index and never expires anything), a backstop
  elsewhere. Deletes go in batches of ids, each with the same guard again.

Changing the retention on real MongoDB would need `collMod` (creating the same index with
another `expireAfterSeconds` is refused); mongo-java-server has no `collMod` and corrupts its
catalogue when an index is re-created with other options, so the index is dropped and created
afresh instead, on both. With the retention off, an index left by an earlier setting is
dropped, so that MongoDB stops deleting.

A `request_id` is de-duplicated only while its task is kept: after its task is deleted, the
same `request_id` starts a new task.

Videos. Files under their final name (`{provider}_{YYYYmmdd_HHMMSS}_{index}_{8 hex}.mp4`)
whose modification time is older than the retention, unless a task still active names them.
Temporary `.part` files (and any other file) are never touched here: a live download's are
its own, and those left by a crash are swept by the engine at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from consumers.errors import INFRA_ERRORS
from consumers.settings import Settings
from consumers.storage.base import TaskStore
from schemas.status import TERMINAL

log = logging.getLogger("video.retention")

INDEX_NAME = "task_retention"
BATCH = 500
DAY_S = 86400.0
FIRST_RUN_AFTER_S = 30.0
# The contract's final file name (consumers.media.files.video_filename).
VIDEO_NAME = re.compile(r"^[a-z0-9]+_\d{8}_\d{6}_\d+_[0-9a-f]{8}\.mp4$")
_TERMINAL = sorted(str(s) for s in TERMINAL)


class RetentionStore(Protocol):
    """What retention needs from the task store."""

    async def now(self) -> datetime: ...

    async def finished_before(
        self, cutoff: datetime, limit: int, after: str | None = None
    ) -> list[dict[str, Any]]:
        """Up to `limit` finished tasks (`_id`, `request_id`) whose `finished_at` < `cutoff`,
        in `_id` order, after `after`."""
        ...

    async def delete_finished(self, task_ids: list[str], cutoff: datetime) -> int:
        """Delete those of `task_ids` that are still finished before `cutoff`."""
        ...

    async def active_video_names(self) -> set[str] | None:
        """The file names of every video a still active task plans or holds (None: this store
        cannot tell, and no video is removed)."""
        ...

    async def ensure_index(self, ttl_s: int | None, *, enabled: bool) -> str:
        """Keep the retention index in step with the setting: `ttl` (the server deletes),
        `sweep` (an index without expiry, the sweep deletes) or `off` (no index)."""
        ...


class MongoRetentionStore:
    """The `tasks` collection of the service's database (consumers/storage/mongo.py)."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, ttl: bool | None = None) -> None:
        self.db = db
        self.tasks = db["tasks"]
        self._ttl = ttl  # None: ask the server

    async def now(self) -> datetime:
        reply = await self.db.command("isMaster")
        moment: datetime = reply["localTime"]
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _finished(self, cutoff: datetime) -> dict[str, Any]:
        return {"active": False, "status": {"$in": _TERMINAL}, "finished_at": {"$lt": cutoff}}

    async def finished_before(
        self, cutoff: datetime, limit: int, after: str | None = None
    ) -> list[dict[str, Any]]:
        which = self._finished(cutoff)
        if after is not None:
            which["_id"] = {"$gt": after}
        cursor = self.tasks.find(which, {"_id": 1, "request_id": 1}).sort("_id", ASCENDING)
        return [doc async for doc in cursor.limit(limit)]

    async def delete_finished(self, task_ids: list[str], cutoff: datetime) -> int:
        guard = {"_id": {"$in": task_ids}, **self._finished(cutoff)}
        return (await self.tasks.delete_many(guard)).deleted_count

    async def active_video_names(self) -> set[str] | None:
        names: set[str] = set()
        async for doc in self.tasks.find({"active": True}, {"videos": 1}):
            for video in doc.get("videos") or ():
                if isinstance(video, dict) and isinstance(video.get("filename"), str):
                    names.add(video["filename"])
        return names

    async def ttl_supported(self) -> bool:
        if self._ttl is None:
            self._ttl = await _ttl_monitor(self.db)
        return self._ttl

    async def ensure_index(self, ttl_s: int | None, *, enabled: bool) -> str:
        current = (await self.tasks.index_information()).get(INDEX_NAME)
        if not enabled:
            if current is not None:
                await self.tasks.drop_index(INDEX_NAME)
                log.info("task retention off: index %s dropped", INDEX_NAME)
            return "off"
        expire = ttl_s if ttl_s is not None and await self.ttl_supported() else None
        mode = "ttl" if expire is not None else "sweep"
        if current is not None:
            if (
                current.get("expireAfterSeconds") == expire
                and current.get("partialFilterExpression") == {"active": False}
                and list(current.get("key", ())) == [("finished_at", 1)]
            ):
                return mode
            await self.tasks.drop_index(INDEX_NAME)  # never re-created with other options
        options: dict[str, Any] = {"partialFilterExpression": {"active": False}}
        if expire is not None:
            options["expireAfterSeconds"] = expire
        await self.tasks.create_index([("finished_at", ASCENDING)], name=INDEX_NAME, **options)
        log.info("task retention index %s: %s (expireAfterSeconds %s)", INDEX_NAME, mode, expire)
        return mode


async def _ttl_monitor(db: AsyncDatabase[dict[str, Any]]) -> bool:
    """Whether the server deletes expired documents of TTL indexes."""
    admin = db.client.admin
    try:
        reply = await admin.command({"getParameter": 1, "ttlMonitorEnabled": 1})
        return bool(reply.get("ttlMonitorEnabled"))
    except OperationFailure:
        pass  # not allowed for this user, or no such command (mongo-java-server)
    try:
        status = await admin.command("serverStatus")
    except OperationFailure:
        return False
    return isinstance(status.get("metrics"), dict) and "ttl" in status["metrics"]


class NoRetentionStore:
    """For a task store other than MongoDB (the in-process tests' in-memory one): retention
    deletes nothing, as it cannot tell finished tasks and live videos apart there."""

    async def now(self) -> datetime:
        return datetime.now().astimezone()

    async def finished_before(
        self, cutoff: datetime, limit: int, after: str | None = None
    ) -> list[dict[str, Any]]:
        return []

    async def delete_finished(self, task_ids: list[str], cutoff: datetime) -> int:
        return 0

    async def active_video_names(self) -> set[str] | None:
        return None

    async def ensure_index(self, ttl_s: int | None, *, enabled: bool) -> str:
        return "off"


@dataclass
class RetentionReport:
    """What a run deleted (or, dry, would delete)."""

    dry_run: bool
    task_cutoff: datetime | None = None
    tasks: int = 0
    request_ids: list[str] = field(default_factory=list)  # of the tasks, up to SAMPLE
    video_cutoff: datetime | None = None
    videos: list[Path] = field(default_factory=list)
    video_bytes: int = 0
    videos_kept_active: int = 0  # old enough, but an active task names them
    index: str | None = None  # the index mode set by the run, when it set one

    SAMPLE = 20

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "tasks": {
                "cutoff": self.task_cutoff.isoformat() if self.task_cutoff else None,
                "deleted": self.tasks,
                "request_ids": self.request_ids,
            },
            "videos": {
                "cutoff": self.video_cutoff.isoformat() if self.video_cutoff else None,
                "deleted": len(self.videos),
                "bytes": self.video_bytes,
                "files": [str(p) for p in self.videos],
                "kept_for_active_tasks": self.videos_kept_active,
            },
        }


def _days(value: float | None) -> float | None:
    return value if value else None  # unset or 0: off


class RetentionSweeper:
    """Deletes finished tasks and old videos: `run_once()` now, or `start()` a loop every
    `RETENTION_INTERVAL_S` (the first run `FIRST_RUN_AFTER_S` after start, or one interval if
    shorter) until `stop()`."""

    def __init__(
        self,
        store: RetentionStore,
        settings: Settings,
        *,
        video_dir: Path | None = None,
        interval_s: float | None = None,
        first_run_after_s: float = FIRST_RUN_AFTER_S,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.task_days = _days(settings.task_retention_days)
        self.video_days = _days(settings.video_retention_days)
        self.video_dir = (video_dir or Path(settings.video_dir)).resolve()
        self.interval_s = interval_s if interval_s is not None else settings.retention_interval_s
        self.first_run_after_s = first_run_after_s
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._loop: asyncio.Task[None] | None = None

    @classmethod
    def for_store(cls, store: TaskStore, settings: Settings, **options: Any) -> RetentionSweeper:
        """The sweeper of the service's own task store (MongoDB's `tasks` collection; any
        other store gets one that deletes nothing)."""
        from consumers.storage.mongo import MongoTaskStore

        backend: RetentionStore
        if isinstance(store, MongoTaskStore):
            backend = MongoRetentionStore(store.tasks.database)
        else:
            backend = NoRetentionStore()
        return cls(backend, settings, **options)

    @property
    def enabled(self) -> bool:
        return self.task_days is not None or self.video_days is not None

    async def ensure_index(self) -> str:
        ttl_s = round(self.task_days * DAY_S) if self.task_days is not None else None
        return await self.store.ensure_index(ttl_s, enabled=self.task_days is not None)

    async def run_once(self, *, dry_run: bool = False) -> RetentionReport:
        report = RetentionReport(dry_run=dry_run)
        if self.task_days is not None:
            await self._tasks(report, self.task_days, dry_run)
        if self.video_days is not None:
            await self._videos(report, self.video_days, dry_run)
        if not dry_run and (report.tasks or report.videos):
            log.info(
                "retention: %d finished tasks deleted, %d videos (%d bytes) removed",
                report.tasks,
                len(report.videos),
                report.video_bytes,
            )
        return report

    async def _tasks(self, report: RetentionReport, days: float, dry_run: bool) -> None:
        cutoff = await self.store.now() - timedelta(days=days)
        report.task_cutoff = cutoff
        after: str | None = None
        while True:
            found = await self.store.finished_before(cutoff, BATCH, after)
            if not found:
                return
            ids = [d["_id"] for d in found]
            after = max(ids)
            room = RetentionReport.SAMPLE - len(report.request_ids)
            report.request_ids += [str(d.get("request_id")) for d in found[: max(room, 0)]]
            if dry_run:
                report.tasks += len(ids)
            else:
                report.tasks += await self.store.delete_finished(ids, cutoff)

    async def _videos(self, report: RetentionReport, days: float, dry_run: bool) -> None:
        cutoff_ts = self._wall_clock() - days * DAY_S
        report.video_cutoff = datetime.fromtimestamp(cutoff_ts).astimezone()
        old = await asyncio.to_thread(_old_videos, self.video_dir, cutoff_ts)
        if not old:
            return
        live = await self.store.active_video_names()
        if live is None:
            return
        for path, size in old:
            if path.name in live:
                report.videos_kept_active += 1
                continue
            if not dry_run:
                try:
                    await asyncio.to_thread(path.unlink)
                except FileNotFoundError:
                    continue  # removed meanwhile (another instance's sweep)
            report.videos.append(path)
            report.video_bytes += size

    # --- the loop -----------------------------------------------------------------------------

    def start(self) -> None:
        """Keep the index in step with the setting, then sweep every interval (with retention
        off: only drop an index an earlier setting left)."""
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="retention")

    async def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)

    async def _run(self) -> None:
        try:
            mode = await self.ensure_index()
            if self.task_days is not None:
                log.info("task retention %.4g days: %s", self.task_days, mode)
        except INFRA_ERRORS as exc:
            log.warning("task retention index not checked: %r (the sweep still runs)", exc)
        if not self.enabled:
            return
        await self._sleep(min(self.first_run_after_s, self.interval_s))
        while True:
            try:
                await self.run_once()
            except INFRA_ERRORS as exc:
                log.warning("retention sweep skipped: %r", exc)
            except Exception:
                log.exception("retention sweep failed")
            await self._sleep(self.interval_s)


def _old_videos(video_dir: Path, cutoff_ts: float) -> list[tuple[Path, int]]:
    """Final video files in `video_dir` last modified before `cutoff_ts`, with their size."""
    found: list[tuple[Path, int]] = []
    try:
        entries = list(os.scandir(video_dir))
    except FileNotFoundError:
        return found
    for entry in entries:
        if not VIDEO_NAME.match(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            stat = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.st_mtime < cutoff_ts:
            found.append((Path(entry.path), stat.st_size))
    return sorted(found)
