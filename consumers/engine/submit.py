"""The submit step: the one step that pays for a video, so the one that must never run twice.

Before the request leaves, the task stores a fresh submit ticket (guarded by lease and version).
The vendor's answer is recorded only against that ticket, whoever holds the task by then, and
the recording write is retried until it lands or the task is seen to have moved on; only then is
the vendor's task cancelled. A task found with a ticket but no answer (its instance died or
stalled in the window) is submitted again only after `SUBMIT_RECORD_GRACE_S`, counted as a
resubmission: that is the one remaining way to pay twice, and README names it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from consumers.engine import finish, resolve
from consumers.engine.context import EngineContext, Progress
from consumers.engine.schedule import retry_delay
from consumers.errors import INFRA_ERRORS, INFRA_RETRY_S, LeaseLost, ShuttingDown
from consumers.storage.task import Task
from providers.base import ModelSpec, Provider, ProviderError, Submitted
from providers.registry import get_model

log = logging.getLogger("video.engine")

RECORD_RETRY_FIRST_S = 0.1  # then doubling, up to INFRA_RETRY_S: a blip costs a tenth of a second


async def submit(
    ctx: EngineContext, task: Task, provider: Provider, progress: Progress
) -> float | None:
    """Submit the task upstream; returns the seconds until its next step."""
    ctx.gate.check_open()
    spec = get_model(task.model)
    attempt = task.submit_attempts + 1
    if task.submit_unresolved:
        wait = resolve.wait_s(ctx, task, provider)
        if wait > 0:
            return wait
        found = await _look_up(ctx, task, provider, progress)
        if isinstance(found, float):
            return found
        if isinstance(found, Submitted):
            return await _adopt(ctx, task, found, progress)
        if found is resolve.Lookup.RESEND:
            attempt = max(1, task.submit_attempts)
        else:
            _count_resubmission(ctx, task)
    deadline = task.deadline_at.timestamp()
    wait_s = ctx.seconds_left(deadline)
    if not await ctx.slots.acquire(task.id, task.tenant_id, provider, spec.name, wait_s):
        return 0.0  # the deadline passed while waiting: the next step ends it
    ticket = uuid.uuid4().hex
    # What a submit that never leaves must put back: an earlier attempt may still be unresolved.
    before = {
        f: getattr(task, f) for f in ("submit_ticket", "submit_started_at", "submit_attempts")
    }
    task = await ctx.outbox.update(
        task,
        {
            "submit_ticket": ticket,
            "submit_started_at": ctx.clock.now(),
            "submit_attempts": attempt,
        },
    )
    try:
        sent = ctx.gate.run(task.id, _send_and_record(ctx, task, ticket, before, provider, spec))
    except ShuttingDown:
        await _drop_ticket(ctx, task, ticket, before)  # closed since the check above: never sent
        await ctx.slots.release(task.id)
        raise
    return _after_submit(ctx, progress, await sent)


def _after_submit(ctx: EngineContext, progress: Progress, delay: float) -> float:
    progress.attempts, progress.due_from, progress.last_poll = 0, None, 0.0
    progress.next_at = ctx.clock.timestamp() + delay
    return delay


async def _look_up(
    ctx: EngineContext, task: Task, provider: Provider, progress: Progress
) -> Submitted | resolve.Lookup | float:
    """The lost submit's fate; a float is a delay before asking again (the lookup failed)."""
    try:
        return await resolve.look_up(ctx, task, provider)
    except ProviderError as exc:
        progress.attempts += 1
        if not exc.transient or progress.attempts >= ctx.settings.upstream_max_attempts:
            raise  # undecidable: the task fails, never paid twice
        settings = ctx.settings
        return retry_delay(progress.attempts, settings.retry_base_s, settings.retry_max_s, None)


async def _adopt(
    ctx: EngineContext, task: Task, found: Submitted, progress: Progress
) -> float | None:
    """The vendor did create the lost submit's task: record it as this task's."""
    first_poll = _first_poll_s(ctx)
    recorded = await _record(ctx, task, task.submit_ticket, found, first_poll)
    if recorded is None:
        return 0.0
    await ctx.outbox.flush(recorded)
    return _after_submit(ctx, progress, first_poll)


async def _send_and_record(
    ctx: EngineContext,
    task: Task,
    ticket: str,
    before: Mapping[str, Any],
    provider: Provider,
    spec: ModelSpec,
) -> float:
    parameters = spec.parameters.model_validate(task.params)
    turn = ctx.rates.submits(provider.name, spec.name, provider.limits.submits_per_s_per_model)
    try:
        if turn is not None:
            await turn()
        submitted = await provider.submit(
            task.request_id,
            spec.name,
            parameters,
            attempt=task.submit_attempts,
            on_send=ctx.gate.check_send,
        )
    except (ShuttingDown, LeaseLost) as exc:
        await _drop_ticket(ctx, task, ticket, before)  # this attempt never left
        await ctx.slots.release(task.id)
        raise exc
    except ProviderError as exc:
        if exc.submit_not_taken or exc.already_exists:
            if exc.submit_not_taken:
                await _drop_ticket(ctx, task, ticket, before)
            await ctx.slots.release(task.id)
            raise
        return _outcome_unknown(ctx, task, provider, exc)
    ctx.metrics.upstream_calls.labels(provider.name, "submit", "ok").inc()
    first_poll = _first_poll_s(ctx)
    recorded = await _record(ctx, task, ticket, submitted, first_poll)
    if recorded is None:
        # Cancelled, or taken over and submitted again meanwhile: nobody will use this one.
        log.warning(
            "task %s: moved on during its submit; cancelling %s",
            task.id,
            submitted.upstream_task_id,
        )
        await finish.cancel_upstream(ctx, task, submitted)
        await ctx.slots.release(task.id)
        return 0.0
    await ctx.outbox.flush(recorded)
    return first_poll


async def _record(
    ctx: EngineContext, task: Task, ticket: str | None, submitted: Submitted, first_poll_s: float
) -> Task | None:
    changes = {
        "upstream_task_id": submitted.upstream_task_id,
        "upstream_status": submitted.upstream_status,
        "key_id": submitted.key_id,
        "submitted_at": ctx.clock.now(),
        "next_action_at": ctx.clock.after(first_poll_s),
        "submit_ticket": None,
    }
    for attempt in itertools.count():
        try:
            return await ctx.outbox.record_submit(task, ticket, changes)
        except INFRA_ERRORS as exc:
            log.warning(
                "task %s: recording upstream task %s failed (%r); retrying",
                task.id,
                submitted.upstream_task_id,
                exc,
            )
            await asyncio.sleep(min(INFRA_RETRY_S, RECORD_RETRY_FIRST_S * 2**attempt))
    raise AssertionError("unreachable")


def _outcome_unknown(
    ctx: EngineContext, task: Task, provider: Provider, exc: ProviderError
) -> float:
    """The vendor may or may not have created the task: keep the ticket (and the running slot,
    it may be running there) and look it up once it has settled (`consumers.engine.resolve`)."""
    ctx.metrics.upstream_calls.labels(provider.name, "submit", "unknown").inc()
    ctx.metrics.unknown_submits.labels(task.provider, task.model).inc()
    log.warning("task %s: submit outcome unknown (%s); it will be looked up", task.id, exc.message)
    return max(0.0, resolve.wait_s(ctx, task, provider))


async def _drop_ticket(
    ctx: EngineContext, task: Task, ticket: str, before: Mapping[str, Any]
) -> None:
    """This attempt created nothing upstream: put back the submit state it replaced (cleared,
    or an earlier attempt still unresolved), whoever holds the task now."""
    try:
        await ctx.store.drop_ticket(task.id, ticket, before)
    except Exception as exc:  # the next owner then looks it up first: slower, not wrong
        log.info("task %s: submit ticket not cleared (%r)", task.id, exc)


def _count_resubmission(ctx: EngineContext, task: Task) -> None:
    ctx.metrics.resubmissions.labels(task.provider, task.model).inc()
    log.warning(
        "task %s (%s): submitting again; the submit started at %s was never recorded and %s "
        "lists no task for it (should its list be late, this generation runs twice)",
        task.id,
        task.request_id,
        task.submit_started_at,
        task.provider,
    )


def _first_poll_s(ctx: EngineContext) -> float:
    """Seconds from a recorded submit to its first status query."""
    return ctx.settings.poll_first_s or ctx.settings.poll_interval_min_s
