"""The task runner: one small actor per task in flight, driven from the task store.

An actor walks its task through accepted → submitted → running → downloading → completed
(or failed/cancelled), sleeping between actions on a timer rather than holding a worker, so
ten thousand tasks in flight cost memory, not CPU. Every move is one guarded write to the store
(see `consumers.store`), so a restart or another instance carries on exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka.errors import KafkaError
from pymongo.errors import PyMongoError

from consumers.messaging import events
from consumers.subscribers.auth import Identity
from consumers.media.download import DownloadError, download_video, existing_video, remove_temp
from consumers.operations.metrics import Metrics
from consumers.messaging.publisher import EventPublisher
from consumers.engine.schedule import poll_delay, retry_delay
from consumers.settings import Settings
from consumers.store import Task, TaskStore, now
from providers.base import (
    ModelSpec,
    PollResult,
    Provider,
    ProviderError,
    Submitted,
    UpstreamState,
)
from providers.registry import get_model
from schemas.errors import ErrorCode, ErrorInfo
from schemas.events import TaskResult, Timings, VideoFile
from schemas.status import TaskStatus

log = logging.getLogger("video.runner")

INFRA_ERRORS = (PyMongoError, KafkaError, OSError)
INFRA_RETRY_S = 2.0


class TaskMoved(Exception):
    """The task changed without this actor (a cancel, a takeover, a deadline): reload it."""


@dataclass(slots=True)
class Progress:
    """What an actor keeps in memory between actions; lost on restart, and that is fine."""

    next_at: float = 0.0  # epoch seconds of the next action
    polls: int = 0
    attempts: int = 0  # consecutive transient failures of the current action


def _ts(moment: datetime | None) -> float:
    return moment.timestamp() if moment else 0.0


def _seconds(start: datetime | None, end: datetime | None) -> float:
    return round(max(0.0, _ts(end) - _ts(start)), 3) if start and end else 0.0


def video_filename(provider: str, task_id: str, index: int, moment: datetime) -> str:
    """The contract's file name: {provider}_{YYYYmmdd_HHMMSS}_{index}_{8 hex}.mp4."""
    digest = hashlib.sha256(f"{task_id}:{index}".encode()).hexdigest()[:8]
    return f"{provider}_{moment:%Y%m%d_%H%M%S}_{index}_{digest}.mp4"


class TaskRunner:
    def __init__(
        self,
        *,
        store: TaskStore,
        publisher: EventPublisher,
        providers: Mapping[str, Provider],
        settings: Settings,
        metrics: Metrics,
        http: httpx.AsyncClient,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.providers = providers
        self.settings = settings
        self.metrics = metrics
        self.http = http
        self.owner = settings.instance_id
        self.video_dir = Path(settings.video_dir).resolve()
        hosts: tuple[str, ...] = ()
        for provider in providers.values():
            hosts += provider.result_host_suffixes
        self.allowed_hosts = settings.allowed_download_hosts(hosts)
        self._actors: dict[str, asyncio.Task[None]] = {}
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._slots_held: dict[str, tuple[Provider, str]] = {}
        self._slot_queues: dict[tuple[str, str], deque[asyncio.Future[None]]] = defaultdict(deque)
        self._critical: set[asyncio.Future[Any]] = set()
        self._downloads = asyncio.Semaphore(settings.max_concurrent_downloads)
        self._capacity_listeners: list[asyncio.Event] = []
        self._stopping = False

    # --- holding tasks ------------------------------------------------------------------------

    @property
    def held(self) -> int:
        return len(self._actors)

    @property
    def has_room(self) -> bool:
        return self.held < self.settings.max_in_flight

    def holds(self, task_id: str) -> bool:
        return task_id in self._actors

    def held_ids(self) -> set[str]:
        return set(self._actors)

    def adopt(self, task: Task) -> None:
        """Start driving a task this instance holds the lease of."""
        if self._stopping or task["_id"] in self._actors:
            return
        self._actors[task["_id"]] = asyncio.create_task(self._drive(task))
        self.metrics.in_flight.set(self.held)

    def forget(self, task_ids: Iterable[str]) -> None:
        """Stop actors whose tasks this instance no longer holds (taken over, or cancelled)."""
        for task_id in task_ids:
            actor = self._actors.get(task_id)
            if actor is not None:
                actor.cancel()

    def wake(self, task_id: str) -> None:
        """Interrupt an actor's wait so it reloads its task (used after a cancel)."""
        waiter = self._waiting.get(task_id)
        if waiter is not None and not waiter.done():
            waiter.set_exception(TaskMoved())

    def capacity_listener(self) -> asyncio.Event:
        """An event set whenever a task leaves this instance (for resuming intake)."""
        event = asyncio.Event()
        self._capacity_listeners.append(event)
        return event

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop every actor. Submits under way are let finish recording their upstream id."""
        self._stopping = True
        if self._critical:
            await asyncio.wait(list(self._critical), timeout=grace_s)
        actors = list(self._actors.values())
        for actor in actors:
            actor.cancel()
        await asyncio.gather(*actors, return_exceptions=True)

    # --- cancel (from `video.cancel`) -----------------------------------------------------------

    async def cancel(
        self, request_id: str, reason: str | None, identity: Identity | None = None
    ) -> bool:
        """Finish a task as cancelled, whoever holds it. False when unknown, already over, or
        not the caller's (with authentication on, only the task's own user may cancel it)."""
        message = f"cancelled: {reason}" if reason else "cancelled by request"
        for _ in range(5):
            task = await self.store.find_by_request_id(request_id)
            if task is None:
                log.info("cancel of unknown request_id %s ignored", request_id)
                return False
            if TaskStatus(task["status"]).terminal:
                log.info("cancel of %s ignored: already %s", request_id, task["status"])
                return False
            if identity is not None:
                refused = identity.mismatch(task.get("user_id"), task.get("tenant_id"))
                if refused:
                    log.warning("cancel of %s refused: %s", request_id, refused)
                    return False
            lease_until = now() + timedelta(seconds=self.settings.lease_ttl_s)
            taken = await self.store.take_for_cancel(task, self.owner, lease_until)
            if taken is None:
                continue
            if taken["status"] in (TaskStatus.SUBMITTED, TaskStatus.RUNNING):
                # Before the status goes out: whoever reads `cancelled` may rely on it.
                await self._cancel_upstream(taken)
            try:
                await self._transition(
                    taken,
                    TaskStatus.CANCELLED,
                    {},
                    error=ErrorInfo(code=ErrorCode.CANCELLED, message=message),
                )
            except TaskMoved:
                continue
            self.wake(taken["_id"])
            self._release_slot(taken["_id"])
            return True
        log.warning("cancel of %s gave up: the task kept moving", request_id)
        return False

    # --- the actor ------------------------------------------------------------------------------

    async def _drive(self, task: Task) -> None:
        task_id = task["_id"]
        try:
            while True:
                try:
                    await self._run(task, Progress())
                    return
                except TaskMoved:
                    pass
                except INFRA_ERRORS as exc:
                    log.warning("task %s: %r; retrying in %.0f s", task_id, exc, INFRA_RETRY_S)
                    await asyncio.sleep(INFRA_RETRY_S)
                fresh = await self._reload(task_id)
                if fresh is None:
                    return
                task = fresh
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task %s: unexpected error", task_id)
            await self._fail_internal(task_id)
        finally:
            self._release_slot(task_id)
            self._actors.pop(task_id, None)
            self.metrics.in_flight.set(self.held)
            for listener in self._capacity_listeners:
                listener.set()

    async def _reload(self, task_id: str) -> Task | None:
        """The task as stored, if this instance still holds it."""
        while True:
            try:
                fresh = await self.store.get(task_id)
            except INFRA_ERRORS as exc:
                log.warning("task %s: reload failed (%r)", task_id, exc)
                await asyncio.sleep(INFRA_RETRY_S)
                continue
            if fresh is None or fresh.get("lease_owner") != self.owner:
                return None
            return fresh

    async def _fail_internal(self, task_id: str) -> None:
        try:
            fresh = await self._reload(task_id)
            if fresh is not None and not TaskStatus(fresh["status"]).terminal:
                error = ErrorInfo(
                    code=ErrorCode.INTERNAL_ERROR, message="internal error in the video service"
                )
                await self._finish(fresh, TaskStatus.FAILED, error)
        except Exception:
            log.exception("task %s: could not record the internal error", task_id)

    async def _run(self, task: Task, progress: Progress) -> None:
        task = await self._flush(task)
        status = TaskStatus(task["status"])
        if status in (TaskStatus.SUBMITTED, TaskStatus.RUNNING):
            # Taken over or resumed: its upstream task still counts against the model's limit.
            provider = self.providers.get(task["provider"])
            if provider is not None and task["_id"] not in self._slots_held:
                provider.running_slots.force_acquire(task["model"])
                self._slots_held[task["_id"]] = (provider, task["model"])
            progress.next_at = _ts(task.get("next_action_at"))
        while not TaskStatus(task["status"]).terminal:
            if time.time() >= _ts(task["deadline_at"]):
                error = ErrorInfo(
                    code=ErrorCode.TIMEOUT,
                    message=f"the task did not finish within its timeout of {task['timeout_s']} s",
                )
                task = await self._finish(task, TaskStatus.FAILED, error, cancel_upstream=True)
                break
            if progress.next_at > time.time():
                await self._wait(task, progress.next_at)
                continue  # check the deadline again
            status = TaskStatus(task["status"])
            if status is TaskStatus.DOWNLOADING:
                task = await self._download(task, progress)
                continue
            spec = get_model(task["model"])
            provider = self.providers.get(spec.provider)
            if provider is None:
                task = await self._finish(task, TaskStatus.FAILED, self._no_key_error(spec))
            elif status is TaskStatus.ACCEPTED:
                task = await self._submit(task, provider, spec, progress)
            else:
                task = await self._poll(task, provider, spec, progress)

    # --- submit ---------------------------------------------------------------------------------

    async def _submit(
        self, task: Task, provider: Provider, spec: ModelSpec, progress: Progress
    ) -> Task:
        await self._acquire_slot(task, provider, spec.name)
        # Shielded: a shutdown must not cut between the vendor's answer and recording its id.
        critical = asyncio.ensure_future(self._submit_and_record(task, provider, spec, progress))
        self._critical.add(critical)
        critical.add_done_callback(self._critical.discard)
        return await asyncio.shield(critical)

    async def _submit_and_record(
        self, task: Task, provider: Provider, spec: ModelSpec, progress: Progress
    ) -> Task:
        labels = (provider.name, spec.name)
        if task.get("submit_started_at") is not None:
            self.metrics.resubmissions.labels(*labels).inc()
            log.warning(
                "task %s (%s): submitting again; an earlier submit started at %s was never "
                "recorded, so %s may run this generation twice",
                task["_id"],
                task["request_id"],
                task["submit_started_at"],
                provider.name,
            )
        task = await self._update(task, {"submit_started_at": now()})
        parameters = spec.parameters.model_validate(task["params"])
        try:
            submitted = await provider.submit(task["request_id"], spec.name, parameters)
        except ProviderError as exc:
            self._release_slot(task["_id"])
            self.metrics.upstream_calls.labels(provider.name, "submit", "error").inc()
            return await self._submit_failed(task, provider, spec, exc, progress)
        self.metrics.upstream_calls.labels(provider.name, "submit", "ok").inc()
        first_poll = time.time() + poll_delay(
            0,
            spec.typical_duration_s,
            self.settings.poll_first_s,
            self.settings.poll_interval_min_s,
            self.settings.poll_interval_max_s,
        )
        changes = {
            "upstream_task_id": submitted.upstream_task_id,
            "upstream_status": submitted.upstream_status,
            "key_id": submitted.key_id,
            "submitted_at": now(),
            "next_action_at": datetime.fromtimestamp(first_poll, UTC),
        }
        try:
            task = await self._transition(task, TaskStatus.SUBMITTED, changes)
        except TaskMoved:
            # Cancelled while the submit was under way: stop the vendor working for nobody.
            await self._cancel_upstream({**task, **changes}, submitted)
            self._release_slot(task["_id"])
            raise
        progress.next_at, progress.polls, progress.attempts = first_poll, 0, 0
        return task

    async def _submit_failed(
        self,
        task: Task,
        provider: Provider,
        spec: ModelSpec,
        exc: ProviderError,
        progress: Progress,
    ) -> Task:
        if exc.transient and exc.submit_not_taken:
            task = await self._retry_later(task, exc, progress)
            if TaskStatus(task["status"]).terminal:
                return task
            log.info(
                "task %s: submit refused (%s); retry %d",
                task["_id"],
                exc.message,
                progress.attempts,
            )
            return await self._update(task, {"submit_started_at": None})
        if exc.transient:
            # The vendor may have taken it: sending it again could pay for it twice.
            self.metrics.unknown_submits.labels(provider.name, spec.name).inc()
            log.error(
                "task %s: submit outcome unknown (%s); not resubmitted", task["_id"], exc.message
            )
            error = ErrorInfo(
                code=ErrorCode.UPSTREAM_UNAVAILABLE,
                message=(
                    f"{exc.message}; the submit to {provider.name} may have been taken, so it is "
                    "not sent again (that could pay for the video twice)"
                ),
                retryable=True,
                upstream_code=exc.upstream_code,
            )
            return await self._finish(task, TaskStatus.FAILED, error)
        return await self._finish(task, TaskStatus.FAILED, exc.to_error())

    # --- poll -----------------------------------------------------------------------------------

    async def _poll(
        self, task: Task, provider: Provider, spec: ModelSpec, progress: Progress
    ) -> Task:
        try:
            result = await provider.poll(task["upstream_task_id"], task["key_id"])
        except ProviderError as exc:
            self.metrics.upstream_calls.labels(provider.name, "query", "error").inc()
            if exc.transient:
                return await self._retry_later(task, exc, progress)
            return await self._finish(task, TaskStatus.FAILED, exc.to_error())
        self.metrics.upstream_calls.labels(provider.name, "query", "ok").inc()
        progress.attempts = 0
        progress.polls += 1
        upstream = {"upstream_status": result.upstream_status}

        if result.state in (UpstreamState.QUEUED, UpstreamState.RUNNING):
            progress.next_at = time.time() + poll_delay(
                progress.polls,
                spec.typical_duration_s,
                self.settings.poll_first_s,
                self.settings.poll_interval_min_s,
                self.settings.poll_interval_max_s,
            )
            if result.state is UpstreamState.RUNNING and task["status"] == TaskStatus.SUBMITTED:
                return await self._transition(task, TaskStatus.RUNNING, upstream)
            return {**task, **upstream}

        self._release_slot(task["_id"])
        task = {**task, **upstream}
        if result.state is UpstreamState.SUCCEEDED:
            self.metrics.generation_seconds.labels(provider.name, spec.name).observe(
                _seconds(task.get("submitted_at"), now())
            )
            return await self._start_download(task, result, progress)
        if result.state is UpstreamState.FAILED and result.error is not None:
            error = result.error.to_error()
        else:
            error = ErrorInfo(
                code=ErrorCode.UPSTREAM_FAILED,
                message=f"the {provider.name} task ended as {result.upstream_status}",
                upstream_code=result.upstream_status,
            )
        return await self._finish(task, TaskStatus.FAILED, error, changes=upstream)

    async def _start_download(self, task: Task, result: PollResult, progress: Progress) -> Task:
        if not result.videos:
            error = ErrorInfo(
                code=ErrorCode.UPSTREAM_FAILED,
                message=f"the {task['provider']} task succeeded but returned no video URL",
            )
            return await self._finish(task, TaskStatus.FAILED, error)
        done_at = now()
        videos = [
            {
                "index": index,
                "url": video.url,
                "cover_image_url": video.cover_image_url,
                "filename": video_filename(task["provider"], task["_id"], index, done_at),
                "temp_name": f".{task['_id']}.{index}.part",
            }
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
        progress.next_at, progress.attempts = 0.0, 0
        return await self._transition(task, TaskStatus.DOWNLOADING, changes)

    # --- download -------------------------------------------------------------------------------

    async def _download(self, task: Task, progress: Progress) -> Task:
        started = time.time()
        files: list[VideoFile] = []
        try:
            async with self._downloads:
                for entry in task["videos"]:
                    found = await existing_video(self.video_dir, entry["filename"])
                    video = found or await download_video(
                        self.http,
                        entry["url"],
                        video_dir=self.video_dir,
                        filename=entry["filename"],
                        temp_name=entry["temp_name"],
                        max_bytes=self.settings.max_video_bytes,
                        allowed_hosts=self.allowed_hosts,
                    )
                    files.append(
                        VideoFile(
                            index=entry["index"],
                            url=entry["url"],
                            cover_image_url=entry.get("cover_image_url"),
                            local_path=video.local_path,
                            filename=video.filename,
                            size_bytes=video.size_bytes,
                            sha256=video.sha256,
                            content_type=video.content_type,
                            duration=video.duration,
                            width=video.width,
                            height=video.height,
                        )
                    )
        except DownloadError as exc:
            progress.attempts += 1
            if exc.transient and progress.attempts < self.settings.upstream_max_attempts:
                progress.next_at = time.time() + self._retry_delay(progress, None)
                log.info(
                    "task %s: download failed (%s); retry %d",
                    task["_id"],
                    exc.message,
                    progress.attempts,
                )
                return task
            error = ErrorInfo(
                code=ErrorCode.DOWNLOAD_FAILED, message=exc.message, retryable=exc.transient
            )
            return await self._finish(task, TaskStatus.FAILED, error)
        self.metrics.download_seconds.labels(task["provider"], task["model"]).observe(
            time.time() - started
        )
        return await self._complete(task, files)

    async def _complete(self, task: Task, files: Sequence[VideoFile]) -> Task:
        finished = now()
        result = TaskResult(
            upstream_task_id=task["upstream_task_id"],
            model=task["model"],
            created=finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
            videos=list(files),
            prompt=task.get("prompt"),
            actual_prompt=task.get("actual_prompt"),
            resolution=task.get("resolution"),
            usage=task.get("usage"),
        )
        timings = Timings(
            queued_s=_seconds(task.get("created_at"), task.get("submitted_at")),
            generation_s=_seconds(task.get("submitted_at"), task.get("upstream_done_at")),
            download_s=_seconds(task.get("upstream_done_at"), finished),
            total_s=_seconds(task.get("created_at"), finished),
        )
        changes = {"result": result.model_dump(mode="json"), "finished_at": finished}
        status_entry = events.status_event({**task, **changes}, TaskStatus.COMPLETED)
        completed_entry = events.completed_event(status_entry, result, timings)
        try:
            return await self._transition(
                task, TaskStatus.COMPLETED, changes, entries=[status_entry, completed_entry]
            )
        except TaskMoved:
            # Cancelled meanwhile: the files belong to no completed task.
            for video in files:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(video.local_path)
            raise

    # --- ending ---------------------------------------------------------------------------------

    async def _finish(
        self,
        task: Task,
        status: TaskStatus,
        error: ErrorInfo,
        *,
        cancel_upstream: bool = False,
        changes: Mapping[str, Any] | None = None,
    ) -> Task:
        if cancel_upstream and task["status"] in (TaskStatus.SUBMITTED, TaskStatus.RUNNING):
            # Before the status goes out: whoever reads it may rely on the vendor having stopped.
            await self._cancel_upstream(task)
        task = await self._transition(
            task, status, {**(changes or {}), "finished_at": now()}, error=error
        )
        for entry in task.get("videos") or ():
            remove_temp(self.video_dir, entry["temp_name"])
        self._release_slot(task["_id"])
        return task

    async def _cancel_upstream(
        self, task: Mapping[str, Any], submitted: Submitted | None = None
    ) -> None:
        provider = self.providers.get(task["provider"])
        upstream_id = submitted.upstream_task_id if submitted else task.get("upstream_task_id")
        key_id = submitted.key_id if submitted else task.get("key_id")
        if provider is None or not provider.supports_cancel or not upstream_id or not key_id:
            return
        try:
            cancelled = await provider.cancel(upstream_id, key_id)
        except ProviderError as exc:
            log.warning("task %s: upstream cancel failed: %s", task["_id"], exc.message)
            return
        self.metrics.upstream_calls.labels(
            provider.name, "cancel", "ok" if cancelled else "refused"
        ).inc()

    # --- store and outbox -----------------------------------------------------------------------

    async def _update(self, task: Task, changes: Mapping[str, Any]) -> Task:
        changes = {**changes, "published": task.get("published", 0)}
        updated = await self.store.update(task, self.owner, changes)
        if updated is None:
            raise TaskMoved
        return updated

    async def _transition(
        self,
        task: Task,
        status: TaskStatus,
        changes: Mapping[str, Any],
        *,
        error: ErrorInfo | None = None,
        entries: list[dict[str, Any]] | None = None,
    ) -> Task:
        """Move the task to `status` and write its event(s) in the same update, then publish."""
        merged = {**task, **changes}
        entries = entries or [events.status_event(merged, status, error=error)]
        fields = {
            **changes,
            "status": str(status),
            "sequence": entries[0]["body"]["sequence"],
            "error": error.model_dump(mode="json") if error else None,
            "updated_at": now(),
            # What `_flush` confirmed since the last write rides along with this one.
            "published": task.get("published", 0),
        }
        updated = await self.store.update(task, self.owner, fields, entries)
        if updated is None:
            raise TaskMoved
        labels = (task["provider"], task["model"])
        self.metrics.statuses.labels(*labels, str(status)).inc()
        if status.terminal:
            self.metrics.task_seconds.labels(*labels, str(status)).observe(
                _seconds(task.get("created_at"), now())
            )
            if error is not None:
                self.metrics.errors.labels(*labels, str(error.code)).inc()
        return await self._flush(updated)

    async def _flush(self, task: Task) -> Task:
        """Publish the task's events that may not have reached Kafka yet.

        The count of published events is stored with the task's next write, not in a write of
        its own; a crash in between only publishes the latest events again, with the same
        event ids. A finished task records it at once, to leave the store's scans.
        """
        stored = task.get("events") or []
        published = int(task.get("published", 0))
        finished = TaskStatus(task["status"]).terminal
        if published >= len(stored) and not (finished and task.get("active")):
            return task
        if published < len(stored):
            await self.publisher.publish_entries(
                task["request_id"], stored[published:], task.get("reply_topic")
            )
        if finished:
            await self.store.mark_finished(task["_id"], len(stored))
        return {**task, "published": len(stored), "active": not finished}

    # --- waiting --------------------------------------------------------------------------------

    async def _wait(
        self, task: Task, until: float, queue: deque[asyncio.Future[None]] | None = None
    ) -> None:
        """Sleep until `until` (or the task's deadline), or until woken by `wake` or a queue."""
        loop = asyncio.get_running_loop()
        when = min(until, _ts(task["deadline_at"]))
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(max(0.0, when - time.time()), _resolve, waiter)
        self._waiting[task["_id"]] = waiter
        if queue is not None:
            queue.append(waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiting.pop(task["_id"], None)

    async def _acquire_slot(self, task: Task, provider: Provider, model: str) -> None:
        """Wait for a running slot of the model (the vendor's concurrency limit), in FIFO order."""
        if task["_id"] in self._slots_held:
            return
        queue = self._slot_queues[(provider.name, model)]
        while not provider.running_slots.try_acquire(model):
            await self._wait(task, _ts(task["deadline_at"]), queue)
            if time.time() >= _ts(task["deadline_at"]):
                raise TaskMoved  # reload and let the deadline check end it
        self._slots_held[task["_id"]] = (provider, model)

    def _release_slot(self, task_id: str) -> None:
        held = self._slots_held.pop(task_id, None)
        if held is None:
            return
        provider, model = held
        provider.running_slots.release(model)
        queue = self._slot_queues[(provider.name, model)]
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def _retry_later(self, task: Task, exc: ProviderError, progress: Progress) -> Task:
        """After a transient upstream error: try again after a backoff, or give up once
        UPSTREAM_MAX_ATTEMPTS consecutive attempts failed."""
        progress.attempts += 1
        if progress.attempts < self.settings.upstream_max_attempts:
            progress.next_at = time.time() + self._retry_delay(progress, exc)
            return task
        error = ErrorInfo(
            code=ErrorCode.UPSTREAM_UNAVAILABLE,
            message=f"{exc.message} (gave up after {progress.attempts} attempts)",
            retryable=True,
            upstream_code=exc.upstream_code,
        )
        return await self._finish(task, TaskStatus.FAILED, error)

    def _retry_delay(self, progress: Progress, exc: ProviderError | None) -> float:
        return retry_delay(
            progress.attempts,
            self.settings.retry_base_s,
            self.settings.retry_max_s,
            exc.retry_after if exc else None,
        )

    def _no_key_error(self, spec: ModelSpec) -> ErrorInfo:
        variable = f"{spec.provider.upper()}_API_KEY"
        return ErrorInfo(
            code=ErrorCode.UPSTREAM_UNAVAILABLE,
            message=f"{variable} is not set: no API key for {spec.provider} ({spec.name})",
        )


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
