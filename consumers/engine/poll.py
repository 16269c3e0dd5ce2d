"""The poll step: ask the vendor where the task is, and move on when it has finished."""

from __future__ import annotations

from consumers.engine import finish
from consumers.engine.clock import seconds_between
from consumers.engine.context import EngineContext, Progress
from consumers.media.files import video_filename
from consumers.storage.task import PlannedVideo, Task
from providers.base import PollResult, Provider, UpstreamState
from schemas.errors import ErrorCode, ErrorInfo
from schemas.status import TaskStatus

_WAITING = (UpstreamState.QUEUED, UpstreamState.RUNNING)


async def poll(
    ctx: EngineContext, task: Task, provider: Provider, progress: Progress
) -> float | None:
    """Query the vendor once; returns the seconds until the next step (None when ended)."""
    await ctx.slots.keep(task.id, task.tenant_id, provider, task.model)  # resumed or taken over
    assert task.upstream_task_id is not None and task.key_id is not None
    if provider.name in ctx.planners and not progress.granted:
        deadline = task.deadline_at.timestamp()
        progress.poll_turn = (provider.name, _due(ctx, task, progress), deadline)
        return 0.0  # the actor waits for the turn, then comes back here
    progress.granted = False
    result = await provider.poll(task.upstream_task_id, task.key_id)
    ctx.metrics.upstream_calls.labels(provider.name, "query", "ok").inc()
    now = progress.last_poll = ctx.clock.timestamp()
    progress.attempts = 0
    if result.state in _WAITING:
        if result.state is UpstreamState.QUEUED:
            progress.due_from = now  # not started yet: its generation time counts from later
        progress.next_at = now + ctx.settings.poll_interval_min_s
        if result.state is UpstreamState.RUNNING and task.status is TaskStatus.SUBMITTED:
            await ctx.outbox.move(
                task, TaskStatus.RUNNING, {"upstream_status": result.upstream_status}
            )
        return ctx.settings.poll_interval_min_s
    await ctx.slots.release(task.id)
    if result.state is UpstreamState.SUCCEEDED:
        generation_s = seconds_between(task.submitted_at, ctx.clock.now())
        ctx.metrics.generation_seconds.labels(provider.name, task.model).observe(generation_s)
        ctx.durations.learn(task.model, now - (progress.due_from or now - generation_s))
        await _start_download(ctx, task, result)
        progress.attempts, progress.next_at = 0, 0.0
        return 0.0
    await finish.fail(ctx, task, _failure(task, result), stop_upstream=False)
    return None


async def wait_for_turn(ctx: EngineContext, progress: Progress) -> None:
    """Between steps, holding no document: wait for the poll's turn in the query budget, or
    until the alarm rings (a cancel) or the deadline, whichever comes first."""
    assert progress.poll_turn is not None
    provider, due, deadline = progress.poll_turn
    progress.poll_turn = None
    turn = ctx.planners[provider].request(due)
    await progress.alarm.sleep(ctx.seconds_left(deadline), until=turn)
    progress.granted = turn.done() and not turn.cancelled()
    turn.cancel()


def _due(ctx: EngineContext, task: Task, progress: Progress) -> float:
    """When the task should have finished: most overdue goes first when the budget is short."""
    started = progress.due_from
    if started is None:
        started = task.submitted_at.timestamp() if task.submitted_at else ctx.clock.timestamp()
    due = started + ctx.durations.estimate(task.model)
    if progress.last_poll:
        due = min(due, progress.last_poll + ctx.settings.poll_interval_max_s)
    return due


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
