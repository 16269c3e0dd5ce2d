"""Ending a task without a video: failed, timed out, or cancelled (and the vendor told so)."""

from __future__ import annotations

import logging

from consumers.engine.context import EngineContext
from consumers.media.download import remove_file
from consumers.storage.task import Task
from providers.base import ProviderError, Submitted
from schemas.errors import ErrorCode, ErrorInfo
from schemas.status import TaskStatus

log = logging.getLogger("video.engine")

_UPSTREAM_LIVE = (TaskStatus.SUBMITTED, TaskStatus.RUNNING)


async def fail(
    ctx: EngineContext, task: Task, error: ErrorInfo, *, stop_upstream: bool = False
) -> Task:
    """End the task as failed with `error`."""
    if stop_upstream and task.status in _UPSTREAM_LIVE:
        # Before the status goes out: whoever reads it may rely on the vendor having stopped.
        await cancel_upstream(ctx, task)
    _remove_files(ctx, task)
    ended = await ctx.outbox.move(task, TaskStatus.FAILED, {}, error=error)
    await ctx.slots.release(task.id)
    return ended


async def time_out(ctx: EngineContext, task: Task) -> Task:
    error = ErrorInfo(
        code=ErrorCode.TIMEOUT,
        message=f"the task did not finish within its timeout of {task.timeout_s} s",
    )
    return await fail(ctx, task, error, stop_upstream=True)


async def cancel(ctx: EngineContext, task: Task) -> Task:
    """Carry out a requested cancel: stop the vendor's task, then publish `cancelled`."""
    if task.status in _UPSTREAM_LIVE:
        await cancel_upstream(ctx, task)
    reason = task.cancel_reason
    error = ErrorInfo(
        code=ErrorCode.CANCELLED,
        message=f"cancelled: {reason}" if reason else "cancelled by request",
    )
    _remove_files(ctx, task)
    ended = await ctx.outbox.move(
        task, TaskStatus.CANCELLED, {}, error=error, even_if_cancelling=True
    )
    await ctx.slots.release(task.id)
    return ended


async def cancel_upstream(
    ctx: EngineContext, task: Task, submitted: Submitted | None = None
) -> None:
    """Ask the vendor to stop the task's generation; a refusal or failure is only logged."""
    provider = ctx.providers.get(task.provider)
    upstream_id = submitted.upstream_task_id if submitted else task.upstream_task_id
    key_id = submitted.key_id if submitted else task.key_id
    if provider is None or not provider.supports_cancel or not upstream_id or not key_id:
        return
    try:
        cancelled = await provider.cancel(upstream_id, key_id)
    except ProviderError as exc:
        log.warning("task %s: upstream cancel of %s failed: %s", task.id, upstream_id, exc.message)
        ctx.metrics.upstream_calls.labels(provider.name, "cancel", "error").inc()
        return
    outcome = "ok" if cancelled else "refused"
    ctx.metrics.upstream_calls.labels(provider.name, "cancel", outcome).inc()


def no_key_error(provider: str, model: str) -> ErrorInfo:
    variable = f"{provider.upper()}_API_KEY"
    return ErrorInfo(
        code=ErrorCode.UPSTREAM_UNAVAILABLE,
        message=f"{variable} is not set: no API key for {provider} ({model})",
    )


INTERNAL_ERROR = ErrorInfo(
    code=ErrorCode.INTERNAL_ERROR, message="internal error in the video service"
)


def _remove_files(ctx: EngineContext, task: Task) -> None:
    """A task that ends without completing keeps no file, not even one whose download had
    finished before a cancel or a timeout overtook it; gone before its status goes out."""
    for video in task.videos or ():
        remove_file(ctx.video_dir, video.temp_name)
        remove_file(ctx.video_dir, video.filename)
