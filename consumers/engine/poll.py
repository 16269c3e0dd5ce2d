"""The poll step: ask the vendor where the task is, and move on when it has finished."""

from __future__ import annotations

from consumers.engine import finish
from consumers.engine.clock import seconds_between
from consumers.engine.context import EngineContext, Progress
from consumers.engine.schedule import poll_delay
from consumers.media.files import video_filename
from consumers.storage.task import PlannedVideo, Task
from providers.base import PollResult, Provider, UpstreamState
from providers.registry import get_model
from schemas.errors import ErrorCode, ErrorInfo
from schemas.status import TaskStatus

_WAITING = (UpstreamState.QUEUED, UpstreamState.RUNNING)


async def poll(
    ctx: EngineContext, task: Task, provider: Provider, progress: Progress
) -> float | None:
    """Query the vendor once; returns the seconds until the next step (None when ended)."""
    ctx.slots.force(task.id, provider, task.model)  # resumed or taken over: it still runs there
    assert task.upstream_task_id is not None and task.key_id is not None
    result = await provider.poll(task.upstream_task_id, task.key_id)
    ctx.metrics.upstream_calls.labels(provider.name, "query", "ok").inc()
    progress.attempts = 0
    progress.polls += 1
    if result.state in _WAITING:
        delay = _next_poll_s(ctx, task, progress)
        progress.next_at = ctx.clock.timestamp() + delay
        if result.state is UpstreamState.RUNNING and task.status is TaskStatus.SUBMITTED:
            await ctx.outbox.move(
                task, TaskStatus.RUNNING, {"upstream_status": result.upstream_status}
            )
        return delay
    ctx.slots.release(task.id)
    if result.state is UpstreamState.SUCCEEDED:
        ctx.metrics.generation_seconds.labels(provider.name, task.model).observe(
            seconds_between(task.submitted_at, ctx.clock.now())
        )
        await _start_download(ctx, task, result)
        progress.attempts, progress.next_at = 0, 0.0
        return 0.0
    await finish.fail(ctx, task, _failure(task, result), stop_upstream=False)
    return None


def _failure(task: Task, result: PollResult) -> ErrorInfo:
    if result.state is UpstreamState.FAILED and result.error is not None:
        return result.error.to_error()
    return ErrorInfo(
        code=ErrorCode.UPSTREAM_FAILED,
        message=f"the {task.provider} task ended as {result.upstream_status}",
        upstream_code=result.upstream_status,
    )


async def _start_download(ctx: EngineContext, task: Task, result: PollResult) -> None:
    if not result.videos:
        error = ErrorInfo(
            code=ErrorCode.UPSTREAM_FAILED,
            message=f"the {task.provider} task succeeded but returned no video URL",
        )
        await finish.fail(ctx, task, error)
        return
    done_at = ctx.clock.now()
    videos = [
        PlannedVideo(
            index=index,
            url=video.url,
            cover_image_url=video.cover_image_url,
            filename=video_filename(task.provider, task.id, index, done_at),
            temp_name=f".{task.id}.{index}.part",
        ).model_dump()
        for index, video in enumerate(result.videos)
    ]
    changes = {
        "upstream_status": result.upstream_status,
        "upstream_done_at": done_at,
        "videos": videos,
        "actual_prompt": result.actual_prompt,
        "orig_prompt": result.orig_prompt,
        "usage": dict(result.usage) if result.usage else None,
    }
    await ctx.outbox.move(task, TaskStatus.DOWNLOADING, changes)


def _next_poll_s(ctx: EngineContext, task: Task, progress: Progress) -> float:
    settings = ctx.settings
    return poll_delay(
        progress.polls,
        get_model(task.model).typical_duration_s,
        settings.poll_first_s,
        settings.poll_interval_min_s,
        settings.poll_interval_max_s,
    )
