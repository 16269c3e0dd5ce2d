"""A submit whose answer was lost: did the vendor create the task or not?

Two ways a submit's answer goes missing: the vendor's answer itself is ambiguous (a 5xx or a
timeout after the request left), or the instance that sent it died before storing the answer.
Either way the task is left with a submit ticket and no upstream id, and sending it blindly
again could pay twice. So, after `SUBMIT_RESOLVE_AFTER_S` (the vendor may still be creating it)
and `SUBMIT_RECORD_GRACE_S` (its first instance may still be storing it):

- a vendor that refuses a repeated client request id (BigModel) gets the same attempt again: it
  creates the task if the first never arrived, and answers "already exists" otherwise;
- another vendor (DashScope) is asked for the tasks of that model created since the submit,
  leaving out those of our other tasks: exactly one is adopted, none means a new attempt is
  safe, several end the task as undecidable (never paid twice). Its list tells tasks apart by
  model and time only, so while another task's submit of that model is unresolved the lookup
  waits (a few retries, then the task ends as undecidable): a task it lists might be that one's.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from enum import Enum

from consumers.engine.context import EngineContext
from consumers.storage.task import Task
from providers.base import Provider, ProviderError, Submitted
from schemas.errors import ErrorCode

log = logging.getLogger("video.engine")


class Lookup(Enum):
    RESEND = "resend"  # send the same attempt again: the vendor refuses a second task
    NONE = "none"  # the vendor created no task: a new attempt is safe


def wait_s(ctx: EngineContext, task: Task, provider: Provider) -> float:
    """Seconds before a lost submit may be looked up."""
    assert task.submit_started_at is not None
    settle = 0.0 if provider.dedupes_submits else ctx.settings.submit_resolve_after_s
    wait = max(ctx.settings.submit_record_grace_s, settle)
    return task.submit_started_at.timestamp() + wait - ctx.clock.timestamp()


async def look_up(ctx: EngineContext, task: Task, provider: Provider) -> Submitted | Lookup:
    """What became of the task's last submit. Raises ProviderError (transient: ask again)."""
    if provider.dedupes_submits:
        return Lookup.RESEND
    assert task.submit_started_at is not None
    since = task.submit_started_at
    # The list tells tasks apart by model and time only: while another task's submit of this
    # model is unresolved, a task listed since then may be that one's. Ask again later.
    window = since - timedelta(seconds=ctx.settings.submit_record_grace_s)
    others = await ctx.store.submits_unresolved_since(task.provider, task.model, window)
    if others - {task.id}:
        raise ProviderError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"{len(others - {task.id})} other submits of {task.model} are unresolved: the "
            f"{task.provider} task list cannot tell their tasks from this one's yet",
            transient=True,
        )
    known = await ctx.store.upstream_ids_since(task.provider, task.model, since)
    found = await provider.find_submitted(
        task.request_id, task.model, max(1, task.submit_attempts), since, exclude=known
    )
    outcome = "adopted" if found is not None else "none"
    ctx.metrics.submit_lookups.labels(task.provider, outcome).inc()
    log.info("task %s: lost submit looked up: %s", task.id, outcome)
    return found if found is not None else Lookup.NONE
