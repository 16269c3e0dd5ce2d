"""One task's actor: load the task, take its next step, sleep until the one after.

Each step starts from the task as stored, so a cancel, a takeover or a crash between steps is
always seen. Between steps the actor holds only its task id and a few counters, not the task
document. Errors are handled in one place: `_on_error` decides retry or give up. Each step runs
in the task's log context and, when tracing is on, in a span of its own (`video.<step>`, in the
task's trace; consumers/operations/tracing.py).
"""

from __future__ import annotations

import asyncio
import logging

from consumers.engine import finish
from consumers.engine.context import EngineContext, Progress
from consumers.engine.fetch import DeadlineReached, fetch
from consumers.engine.poll import poll, wait_for_turn
from consumers.engine.schedule import retry_delay
from consumers.engine.scheduler import Alarm
from consumers.engine.submit import submit
from consumers.errors import INFRA_ERRORS, INFRA_RETRY_S, LeaseLost, ShuttingDown, TaskMoved
from consumers.media.download import DownloadError
from consumers.operations import tracing
from consumers.operations.logs import task_context
from consumers.storage.task import Task
from providers.base import ProviderError
from schemas.errors import ErrorCode, ErrorInfo
from schemas.status import TaskStatus

log = logging.getLogger("video.engine")

LEASE_WAIT_S = 1.0


async def run(ctx: EngineContext, task_id: str, alarm: Alarm) -> None:
    """Drive one task until it ends or this instance no longer holds it."""
    progress = Progress(alarm)
    try:
        delay: float | None = 0.0
        while True:
            if progress.poll_turn is not None:
                ctx.outbox.latest(task_id)  # waiting for a turn holds no document
                await wait_for_turn(ctx, progress)
                delay = None
            task = (ctx.outbox.latest(task_id) if delay == 0.0 else None) or await _load(
                ctx, task_id
            )
            if task is None:
                return
            if progress.next_at == 0.0 and task.next_action_at is not None:
                progress.next_at = task.next_action_at.timestamp()  # resumed: keep its schedule
            # Every line logged in the step names the task; the span (tracing on) is its child.
            with task_context(task), tracing.step_span(_step_name(task), task):
                delay = await _guarded_step(ctx, task, progress)
            if delay is None:
                return
            deadline = task.deadline_at.timestamp()
            del task  # a sleeping actor holds no document ...
            if delay != 0.0:
                ctx.outbox.latest(task_id)  # ... not even the one its last write left
            await alarm.sleep(min(delay, ctx.seconds_left(deadline)))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("task %s: unexpected error", task_id)
        await _fail_internal(ctx, task_id)


async def step(ctx: EngineContext, task: Task, progress: Progress) -> float | None:
    """Take the task's next step; returns the seconds until the one after, None when done."""
    if task.terminal:
        await ctx.outbox.flush(task)  # events a crash or a Kafka outage left unpublished
        return None
    if task.cancelling:
        await finish.cancel(ctx, task)
        return None
    if ctx.clock.timestamp() >= task.deadline_at.timestamp():
        await finish.time_out(ctx, task)  # checked before any flush: nothing can hold it up
        return None
    task = await ctx.outbox.flush(task)
    wait = progress.next_at - ctx.clock.timestamp()
    if wait > 0:
        return wait
    provider = ctx.providers.get(task.provider)
    if provider is None:
        await finish.fail(ctx, task, finish.no_key_error(task.provider, task.model))
        return None
    if task.status is TaskStatus.ACCEPTED:
        return await submit(ctx, task, provider, progress)
    if task.status is TaskStatus.DOWNLOADING:
        return await fetch(ctx, task)
    return await poll(ctx, task, provider, progress)


def _step_name(task: Task) -> str:
    """What the next step will do, by the task's state: the name of its span."""
    if task.terminal:
        return "publish"
    if task.cancelling:
        return "cancel"
    return {TaskStatus.ACCEPTED: "submit", TaskStatus.DOWNLOADING: "fetch"}.get(task.status, "poll")


async def _guarded_step(ctx: EngineContext, task: Task, progress: Progress) -> float | None:
    try:
        return await step(ctx, task, progress)
    except (TaskMoved, DeadlineReached):
        ctx.outbox.latest(task.id)  # what this instance wrote last is not the truth any more
        return 0.0
    except LeaseLost:
        return LEASE_WAIT_S
    except ShuttingDown:
        return None
    except (ProviderError, DownloadError) as exc:
        tracing.record_error(exc)
        return await _on_error(ctx, task, exc, progress)
    except INFRA_ERRORS as exc:
        tracing.record_error(exc)
        log.warning("task %s: %r; retrying in %.0f s", task.id, exc, INFRA_RETRY_S)
        return INFRA_RETRY_S


async def _on_error(
    ctx: EngineContext, task: Task, exc: ProviderError | DownloadError, progress: Progress
) -> float | None:
    """The one place that decides: try the step again after a backoff, or end the task."""
    provider = ctx.providers[task.provider]
    operation = {TaskStatus.ACCEPTED: "submit", TaskStatus.DOWNLOADING: "download"}.get(
        task.status, "query"
    )
    if isinstance(exc, ProviderError):
        ctx.metrics.upstream_calls.labels(provider.name, operation, "error").inc()
    progress.attempts += 1
    retry = exc.transient and progress.attempts < ctx.settings.upstream_max_attempts
    if retry and operation == "submit" and isinstance(exc, ProviderError):
        retry = exc.submit_not_taken  # a submit the vendor may have taken is never resent
    if retry:
        retry_after = exc.retry_after if isinstance(exc, ProviderError) else None
        delay = retry_delay(
            progress.attempts, ctx.settings.retry_base_s, ctx.settings.retry_max_s, retry_after
        )
        log.info(
            "task %s: %s failed (%s); retry %d", task.id, operation, exc.message, progress.attempts
        )
        progress.next_at = ctx.clock.timestamp() + delay
        return delay
    await finish.fail(ctx, task, _give_up_error(ctx, task, exc, operation, progress))
    return None


def _give_up_error(
    ctx: EngineContext,
    task: Task,
    exc: ProviderError | DownloadError,
    operation: str,
    progress: Progress,
) -> ErrorInfo:
    if isinstance(exc, DownloadError):
        return ErrorInfo(
            code=ErrorCode.DOWNLOAD_FAILED, message=exc.message, retryable=exc.transient
        )
    if not exc.transient:
        return exc.to_error()
    if operation == "submit" and not exc.submit_not_taken:
        ctx.metrics.unknown_submits.labels(task.provider, task.model).inc()
        log.error("task %s: submit outcome unknown (%s); not resubmitted", task.id, exc.message)
        message = (
            f"{exc.message}; the submit to {task.provider} may have been taken, so it is not "
            "sent again (that could pay for the video twice)"
        )
    else:
        message = f"{exc.message} (gave up after {progress.attempts} attempts)"
    return ErrorInfo(
        code=ErrorCode.UPSTREAM_UNAVAILABLE,
        message=message,
        retryable=True,
        upstream_code=exc.upstream_code,
    )


async def _load(ctx: EngineContext, task_id: str) -> Task | None:
    """The task as stored, if this instance still holds it."""
    while True:
        try:
            task = await ctx.store.get(task_id)
        except INFRA_ERRORS as exc:
            log.warning("task %s: load failed (%r)", task_id, exc)
            await asyncio.sleep(INFRA_RETRY_S)
            continue
        if task is None or task.lease_owner != ctx.owner or not task.active:
            return None
        return task


async def _fail_internal(ctx: EngineContext, task_id: str) -> None:
    try:
        task = await _load(ctx, task_id)
        if task is not None and not task.terminal:
            await finish.fail(ctx, task, finish.INTERNAL_ERROR, stop_upstream=True)
    except Exception:
        log.exception("task %s: could not record the internal error", task_id)
