"""The in-process world: the engine on the in-memory store, the simulator over httpx's ASGI
transport, and a recording Kafka stand-in. No server, no network, no sleeps of seconds.

Faults are injected where production has them: a store that raises on its Nth call of a method
(or runs a hook first, to place a cancel between two steps), a publisher that raises or never
confirms for one topic, clocks that run ahead.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pymongo.errors import AutoReconnect

from consumers.engine.clock import Clock
from consumers.engine.engine import Engine
from consumers.media.objects import ObjectSink
from consumers.messaging.publisher import COMPLETED, STATUS, EventPublisher
from consumers.operations.metrics import Metrics
from consumers.settings import Settings
from consumers.storage.memory import MemoryTaskStore
from consumers.storage.task import Task
from consumers.subscribers.auth import Authenticator
from consumers.subscribers.intake import Intake, Record
from providers.registry import create_providers
from simulator import SimConfig, create_app
from simulator.context import Sim

TOPICS = {STATUS: "video.status", COMPLETED: "video.completed"}
DLQ = "video.requests.dlq"
TERMINAL = ("completed", "failed", "cancelled")

Hook = Callable[..., Awaitable[None]]


class FaultyStore(MemoryTaskStore):
    """The in-memory store, with faults on demand: `fail("move", nth=2)` makes the second
    call of `move` from now raise; `before("move", hook)` awaits `hook(*args)` first."""

    def __init__(self, clock: Callable[[], Any] | None = None) -> None:
        super().__init__(clock) if clock else super().__init__()
        self._failures: dict[str, list[int]] = {}
        self._calls: dict[str, int] = {}
        self._hooks: dict[str, Hook] = {}

    def fail(self, method: str, nth: int = 1, times: int = 1) -> None:
        start = self._calls.get(method, 0) + nth
        self._failures[method] = list(range(start, start + times))

    def before(self, method: str, hook: Hook | None) -> None:
        if hook is None:
            self._hooks.pop(method, None)
        else:
            self._hooks[method] = hook

    async def _fault(self, method: str, *args: Any) -> None:
        self._calls[method] = self._calls.get(method, 0) + 1
        hook = self._hooks.get(method)
        if hook is not None:
            await hook(*args)
        if self._calls[method] in self._failures.get(method, ()):
            raise AutoReconnect(f"injected: {method} #{self._calls[method]}")

    async def get(self, task_id: str) -> Task | None:
        await self._fault("get", task_id)
        return await super().get(task_id)

    async def move(self, task: Task, owner: str, changes: Any, *args: Any, **kw: Any) -> Any:
        await self._fault("move", task, owner, changes)
        return await super().move(task, owner, changes, *args, **kw)

    async def record_submit(self, task: Task, ticket: str | None, changes: Any, events: Any) -> Any:
        await self._fault("record_submit", task.id)
        return await super().record_submit(task, ticket, changes, events)

    async def renew_leases(self, owner: str, until: Any, task_ids: Any = None) -> int:
        await self._fault("renew_leases", owner)
        return await super().renew_leases(owner, until, task_ids)

    async def held_task_ids(self, owner: str) -> set[str]:
        await self._fault("held_task_ids", owner)
        return await super().held_task_ids(owner)

    async def release_leases(self, owner: str, keep: Any, now: Any) -> int:
        await self._fault("release_leases", owner)
        return await super().release_leases(owner, keep, now)


class Kafka:
    """The publisher's way out, recorded: events by topic, faults by topic."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []  # topic, key, body
        self.record_headers: list[dict[str, str]] = []  # of each of `records`
        self.failing: set[str] = set()
        self.silent: set[str] = set()  # sends to these are queued and never confirmed

    async def send(
        self, value: bytes, topic: str, key: bytes | None, headers: Mapping[str, str]
    ) -> Awaitable[Any]:
        if topic in self.failing:
            raise ConnectionError(f"injected: cannot publish to {topic}")
        loop = asyncio.get_running_loop()
        confirmation: asyncio.Future[None] = loop.create_future()
        if topic not in self.silent:
            self.records.append((topic, (key or b"").decode(), json.loads(value)))
            self.record_headers.append(dict(headers))
            confirmation.set_result(None)
        return confirmation

    def events(self, request_id: str, topic: str = TOPICS[STATUS]) -> list[dict[str, Any]]:
        return [body for t, key, body in self.records if t == topic and key == request_id]

    def headers(self, request_id: str, topic: str = TOPICS[STATUS]) -> list[dict[str, str]]:
        """The headers of the request's events on `topic`, in order."""
        return [
            headers
            for (t, key, _), headers in zip(self.records, self.record_headers, strict=True)
            if t == topic and key == request_id
        ]

    def dead_letter_headers(self) -> list[dict[str, str]]:
        return [
            h for (t, _, _), h in zip(self.records, self.record_headers, strict=True) if t == DLQ
        ]

    def statuses(self, request_id: str) -> list[str]:
        return [e["status"] for e in self.events(request_id)]


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "instance_id": "me",
        "download_allowed_hosts": "sim.test",
        "video_dir": str(tmp_path / "videos"),
        "poll_first_s": 0.02,
        "poll_interval_min_s": 0.02,
        "poll_interval_max_s": 0.05,
        "retry_base_s": 0.01,
        "retry_max_s": 0.05,
        "lease_ttl_s": 3.0,
        "submit_record_grace_s": 0.3,
        "submit_resolve_after_s": 0.3,
        "metrics_port": 0,
        "video_dir_min_free_bytes": 0,  # a CI disk with little free space must not stall downloads
    }
    values.update({k: v for k, v in overrides.items() if not k.startswith(VENDORS)})
    return Settings(_env_file=None, **values)


VENDORS = ("aliyun_", "zhipuai_")


def vendor_env(**overrides: Any) -> dict[str, str]:
    """The vendors' variables (providers/settings.py): keys, the simulator, no limits;
    `aliyun_api_key=None` removes one, other `aliyun_*`/`zhipuai_*` overrides set one."""
    env = {
        "ALIYUN_API_KEY": "sk-one,sk-two",
        "ZHIPUAI_API_KEY": "id.secret",
        "ALIYUN_BASE_URL": "http://sim.test",
        "ZHIPUAI_BASE_URL": "http://sim.test",
        **{f"{v}_{limit}": "0" for v in ("ALIYUN", "ZHIPUAI") for limit in LIMITS},
    }
    for name, value in overrides.items():
        if name.startswith(VENDORS):
            if value is None:
                env.pop(name.upper(), None)
            else:
                env[name.upper()] = str(value)
    return env


LIMITS = ("SUBMITS_PER_S", "RUNNING_PER_MODEL", "QUERIES_PER_S")


@dataclass
class World:
    tmp_path: Path
    sim: Sim
    sim_app: Any
    store: FaultyStore
    kafka: Kafka
    engines: list[Engine] = field(default_factory=list)
    intakes: dict[str, Intake] = field(default_factory=dict)
    offset: int = 0

    @property
    def engine(self) -> Engine:
        return self.engines[0]

    def start_engine(
        self,
        local_clock: Callable[[], float] = time.time,
        objects: ObjectSink | None = None,
        **overrides: Any,
    ) -> Engine:
        config = settings(self.tmp_path, **overrides)
        transport = httpx.ASGITransport(self.sim_app)
        metrics = Metrics()
        publisher = EventPublisher(
            self.kafka.send, TOPICS, DLQ, on_reply_failure=metrics.reply_copies_failed.inc
        )
        engine = Engine(
            settings=config,
            store=self.store,
            publisher=publisher,
            providers=create_providers(vendor_env(**overrides), transport=transport),
            metrics=metrics,
            http=httpx.AsyncClient(transport=transport),
            clock=Clock(local_clock),
            objects=objects,
        )
        self.engines.append(engine)
        self.intakes[engine.owner] = Intake(
            store=self.store,
            engine=engine,
            publisher=publisher,
            settings=config,
            metrics=metrics,
            auth=Authenticator(config),
        )
        return engine

    async def send(
        self,
        *requests: dict[str, Any],
        to: Engine | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Requests through intake, as the request subscriber hands them over (each with
        `headers`)."""
        engine = to or self.engine
        records = []
        for body in requests:
            self.offset += 1
            value = json.dumps(body).encode()
            records.append(Record("video.requests", 0, self.offset, None, headers or {}, value))
        await self.intakes[engine.owner].handle(records)

    async def until(self, check: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or check}")
            await asyncio.sleep(0.01)

    async def finished(self, request_id: str, timeout: float = 5.0) -> str:
        """Wait for the request's terminal status (published, and recorded as published)."""

        def done() -> bool:
            return any(s in TERMINAL for s in self.kafka.statuses(request_id))

        await self.until(done, timeout, f"a terminal status of {request_id}")
        return next(s for s in self.kafka.statuses(request_id) if s in TERMINAL)

    def generations(self, request_id: str) -> int:
        """Paid generations upstream for the request (its prompt carries `[request_id]`)."""
        return sum(1 for t in self.sim.tasks.all() if f"[{request_id}]" in (t.prompt or ""))

    async def close(self) -> None:
        for engine in self.engines:
            await engine.stop(grace_s=1.0)
            await engine.ctx.http.aclose()
            for provider in engine.ctx.providers.values():
                await provider.aclose()


def request(model: str = "cogvideox-flash", **fields: Any) -> dict[str, Any]:
    request_id = fields.pop("request_id", None) or f"r-{uuid.uuid4().hex[:10]}"
    parameters = fields.pop("parameters", {})
    return {
        "request_id": request_id,
        "model": model,
        "parameters": {"prompt": f"a cat [{request_id}]", **parameters},
        **fields,
    }


def sim_app(**config: Any) -> Any:
    timing = {"queued_s": 0.02, "running_s": 0.05}
    return create_app(SimConfig.from_dict({"timing": timing, **config}))
