"""The download step: fetch and check the task's videos, then complete it.

The task's deadline bounds the whole step, the wait for a download slot included: a slow server
cannot keep a task past its `timeout_s`, nor hold a slot for ever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from consumers.engine.clock import seconds_between
from consumers.engine.context import EngineContext
from consumers.errors import LeaseLost
from consumers.media.download import DownloadError, download_video, existing_video
from consumers.media.objects import ObjectSink, ObjectStoreError
from consumers.media.space import wait_for_free_space
from consumers.messaging.events import completed_event
from consumers.storage.task import PlannedVideo, Task
from schemas.events import TaskResult, Timings, VideoFile
from schemas.status import TaskStatus

log = logging.getLogger("video.engine")


class DeadlineReached(Exception):
    """The task's deadline passed during the step: the next step ends it as timed out."""


async def fetch(ctx: EngineContext, task: Task) -> float | None:
    """Download every video of the task and complete it. Raises DownloadError."""
    if not ctx.leases_fresh():
        raise LeaseLost
    started = ctx.clock.timestamp()
    try:
        async with asyncio.timeout(ctx.seconds_left(task.deadline_at.timestamp())):
            # Below VIDEO_DIR_MIN_FREE_BYTES, wait (holding no download slot) rather than fail
            # half-way on a full disk; the deadline still bounds the wait.
            settings = ctx.settings
            await wait_for_free_space(
                ctx.video_dir,
                settings.video_dir_min_free_bytes,
                settings.max_video_bytes * len(task.videos or ()),
            )
            async with ctx.downloads:
                files = [await _one(ctx, video) for video in task.videos or ()]
    except TimeoutError as exc:
        raise DeadlineReached from exc
    ctx.metrics.download_seconds.labels(task.provider, task.model).observe(
        ctx.clock.timestamp() - started
    )
    await _complete(ctx, task, files)
    return None


async def _one(ctx: EngineContext, video: PlannedVideo) -> VideoFile:
    found = await existing_video(ctx.video_dir, video.filename)
    saved = found or await download_video(
        ctx.http,
        video.url,
        video_dir=ctx.video_dir,
        filename=video.filename,
        temp_name=video.temp_name,
        max_bytes=ctx.settings.max_video_bytes,
        allowed_hosts=ctx.allowed_hosts,
    )
    file = VideoFile(
        index=video.index,
        url=video.url,
        cover_image_url=video.cover_image_url,
        local_path=saved.local_path,
        filename=saved.filename,
        size_bytes=saved.size_bytes,
        sha256=saved.sha256,
        content_type=saved.content_type,
        duration=saved.duration,
        width=saved.width,
        height=saved.height,
    )
    return file if ctx.objects is None else await _upload(ctx.objects, file)


async def _upload(objects: ObjectSink, file: VideoFile) -> VideoFile:
    """Upload the checked video for other hosts; the key follows the file name, so a task done
    again after a crash finds its object already there (and does not send it twice)."""
    key = objects.key_for(file.filename)
    try:
        stored = await objects.upload(Path(file.local_path), key, file.sha256, file.size_bytes)
    except ObjectStoreError as exc:  # the sink retried already: the task ends download_failed
        raise DownloadError(str(exc)) from None
    return file.model_copy(
        update={
            "object_key": stored.object_key,
            "object_url": stored.object_url,
            "object_url_expires_at": stored.object_url_expires_at,
        }
    )


async def _complete(ctx: EngineContext, task: Task, files: Sequence[VideoFile]) -> None:
    finished = ctx.clock.now()
    assert task.upstream_task_id is not None
    result = TaskResult(
        upstream_task_id=task.upstream_task_id,
        model=task.model,
        created=finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
        videos=list(files),
        prompt=task.prompt,
        actual_prompt=task.actual_prompt,
        resolution=task.resolution,
        usage=task.usage,
    )
    timings = Timings(
        queued_s=seconds_between(task.created_at, task.submitted_at),
        generation_s=seconds_between(task.submitted_at, task.upstream_done_at),
        download_s=seconds_between(task.upstream_done_at, finished),
        total_s=seconds_between(task.created_at, finished),
    )
    changes = {"result": result.model_dump(mode="json")}
    status_entry = ctx.outbox.status_entry(task, TaskStatus.COMPLETED, changes, None)
    completed_entry = completed_event(status_entry, result, timings)
    # A TaskMoved here leaves the files: a new owner completes with them, and a cancel or a
    # timeout removes them when it ends the task (`finish`).
    await ctx.outbox.move(
        task, TaskStatus.COMPLETED, changes, entries=[status_entry, completed_entry]
    )
    await ctx.slots.release(task.id)
    if ctx.objects is not None and ctx.objects.settings.delete_local_after_upload:
        for file in files:  # opted in: the object store keeps the video (README, "Videos")
            await asyncio.to_thread(Path(file.local_path).unlink, missing_ok=True)
