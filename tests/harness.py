"""Helpers for end-to-end tests: the service as a real process, and Kafka event collection."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Topics:
    """A fresh set of topic names, so tests never read each other's events."""

    def __init__(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.requests = f"t{suffix}.video.requests"
        self.cancel = f"t{suffix}.video.cancel"
        self.status = f"t{suffix}.video.status"
        self.completed = f"t{suffix}.video.completed"
        self.dlq = f"t{suffix}.video.requests.dlq"

    def env(self) -> dict[str, str]:
        return {
            "TOPIC_REQUESTS": self.requests,
            "TOPIC_CANCEL": self.cancel,
            "TOPIC_STATUS": self.status,
            "TOPIC_COMPLETED": self.completed,
            "TOPIC_DLQ": self.dlq,
            "TOPIC_PARTITIONS": "3",
        }


class ServiceProcess:
    """`faststream run consumers.app:app` in its own process, as users run it."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.metrics_port = int(env["METRICS_PORT"])
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 60.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "faststream", "run", "consumers.app:app"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"service exited with {self.process.returncode}: {self.log_tail()}"
                    )
                try:
                    response = await client.get(
                        f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=2
                    )
                    if response.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"service not healthy in {timeout} s: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    async def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            if self.process.poll() is None:
                self.process.kill()
        return self.process.wait(10)

    async def metrics(self) -> str:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5)
            return response.text

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class EventCollector:
    """Reads the service's output topics in the background and groups events by request_id."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        self.by_request: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        self.headers_by_request: dict[str, list[tuple[str, dict[str, str]]]] = defaultdict(list)
        self.all: list[tuple[str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _read(self) -> None:
        async for record in self._consumer:
            event = json.loads(record.value)
            key = record.key.decode() if record.key else event.get("request_id", "")
            self.by_request[key].append((record.topic, event))
            headers = {name: (value or b"").decode() for name, value in record.headers}
            self.headers_by_request[key].append((record.topic, headers))
            self.all.append((record.topic, event))
            self._changed.set()

    def events(self, request_id: str, topic: str | None = None) -> list[dict[str, Any]]:
        return [e for t, e in self.by_request.get(request_id, []) if topic is None or t == topic]

    def headers(self, request_id: str, topic: str | None = None) -> list[dict[str, str]]:
        """The Kafka headers of the events of `events(request_id, topic)`, in the same order."""
        found = self.headers_by_request.get(request_id, [])
        return [h for t, h in found if topic is None or t == topic]

    async def wait_for(self, predicate: Any, timeout: float = 30.0, what: str = "events") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {what}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass


async def send(
    bootstrap: str,
    topic: str,
    messages: Sequence[tuple[str | None, bytes]],
    headers: Mapping[str, str] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        hdrs = [(k, v.encode()) for k, v in (headers or {}).items()]
        for key, value in messages:
            await producer.send(topic, value, key=key.encode() if key else None, headers=hdrs)
        await producer.flush()
    finally:
        await producer.stop()


def request(
    request_id: str, model: str, parameters: dict[str, Any], **extra: Any
) -> tuple[str, bytes]:
    body = {"request_id": request_id, "model": model, "parameters": parameters, **extra}
    return request_id, json.dumps(body).encode()
