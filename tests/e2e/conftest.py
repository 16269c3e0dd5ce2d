"""End-to-end fixtures: the upstream simulator and the service as real processes, on the real
Kafka broker and MongoDB-wire server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from tests.harness import ROOT, EventCollector, ServiceProcess, Topics, free_port

pytestmark = pytest.mark.integration

# The same addresses as the `kafka_bootstrap` and `mongo_url` fixtures (tests/conftest.py).
KAFKA = f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}"
MONGO = f"mongodb://127.0.0.1:{os.environ.get('MONGO_PORT', '27017')}"


class Simulator:
    def __init__(self, url: str) -> None:
        self.url = url
        self.control = httpx.AsyncClient(base_url=url, timeout=10)

    async def generations(self, **filters: str) -> int:
        response = await self.control.get("/_sim/generations", params=filters)
        response.raise_for_status()
        return int(response.json()["count"])

    async def tasks(self, **filters: str) -> list[dict[str, Any]]:
        response = await self.control.get("/_sim/tasks", params=filters)
        response.raise_for_status()
        body = response.json()
        return list(body["tasks"] if isinstance(body, dict) else body)

    async def fault(self, **rule: Any) -> None:
        response = await self.control.post("/_sim/faults", json=rule)
        response.raise_for_status()

    async def configure(self, **config: Any) -> None:
        response = await self.control.patch("/_sim/config", json=config)
        response.raise_for_status()

    async def reset(self) -> None:
        (await self.control.post("/_sim/reset")).raise_for_status()


@pytest.fixture(scope="session")
async def simulator(services_ready: None) -> AsyncIterator[Simulator]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    sim = Simulator(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 20
    while True:
        try:
            if (await sim.control.get("/_sim/health")).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the simulator did not start")
        await asyncio.sleep(0.1)
    yield sim
    await sim.control.aclose()
    process.terminate()
    process.wait(10)


@pytest.fixture
async def sim(simulator: Simulator) -> AsyncIterator[Simulator]:
    """The simulator, reset before and after each test (its faults and timings are per test)."""
    await simulator.reset()
    yield simulator
    await simulator.reset()


class Deployment:
    """One test's service: its topics, database and video directory, and its instances."""

    def __init__(self, tmp_path: Path, sim_url: str) -> None:
        self.topics = Topics()
        self.database = f"video_test_{uuid.uuid4().hex[:10]}"
        self.video_dir = tmp_path / "videos"
        self.tmp_path = tmp_path
        self.sim_url = sim_url
        self.instances: list[ServiceProcess] = []
        self.collector = EventCollector(
            KAFKA, [self.topics.status, self.topics.completed, self.topics.dlq]
        )

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "MONGODB_URL": MONGO,
            "MONGODB_DB": self.database,
            "KAFKA_GROUP_ID": f"video-service-{self.database}",
            "ALIYUN_API_KEY": "sk-test-one,sk-test-two",
            "ZHIPUAI_API_KEY": "test-id.test-secret",
            "ALIYUN_BASE_URL": self.sim_url,
            "ZHIPUAI_BASE_URL": self.sim_url,
            "ALIYUN_SUBMITS_PER_S": "0",
            "ALIYUN_RUNNING_PER_MODEL": "0",
            "ALIYUN_QUERIES_PER_S": "0",
            "ZHIPUAI_SUBMITS_PER_S": "0",
            "ZHIPUAI_RUNNING_PER_MODEL": "0",
            "ZHIPUAI_QUERIES_PER_S": "0",
            "DOWNLOAD_ALLOWED_HOSTS": "127.0.0.1",
            "VIDEO_DIR": str(self.video_dir),
            "POLL_FIRST_S": "0.3",
            "POLL_INTERVAL_MIN_S": "0.2",
            "POLL_INTERVAL_MAX_S": "0.5",
            "RETRY_BASE_S": "0.1",
            "RETRY_MAX_S": "0.5",
            "LEASE_TTL_S": "3",
            "SUBMIT_RECORD_GRACE_S": "2",
            "SUBMIT_RESOLVE_AFTER_S": "1",
            "LOG_LEVEL": "INFO",
            **self.topics.env(),
        }
        env.update(overrides)
        return env

    async def start_instance(self, **overrides: str) -> ServiceProcess:
        name = f"instance-{len(self.instances)}"
        instance_id = f"{name}-{uuid.uuid4().hex[:6]}"
        for attempt in range(3):
            env = self.env(METRICS_PORT=str(free_port()), INSTANCE_ID=instance_id, **overrides)
            log = f"{name}.log" if attempt == 0 else f"{name}.retry{attempt}.log"
            instance = ServiceProcess(env, self.tmp_path / log)
            self.instances.append(instance)
            try:
                await instance.start()
            except RuntimeError as exc:
                # free_port() only found a port free a moment ago; on a machine shared with
                # other test runs, another process may have taken it since: pick another.
                if "address already in use" not in str(exc) or attempt == 2:
                    raise
                self.instances.remove(instance)
                continue
            return instance
        raise AssertionError("unreachable")

    async def wait_for_group(self, instances: int, timeout: float = 30.0) -> None:
        """Wait until `instances` instances share the partitions (a stable group).

        Each instance has two consumers in the group: requests and cancels."""
        members = 2 * instances
        admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await admin.start()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                (response,) = await admin.describe_consumer_groups(
                    [f"video-service-{self.database}"]
                )
                _, _, state, _, _, found = response.groups[0]
                if state == "Stable" and len(found) == members:
                    return
                await asyncio.sleep(0.3)
            raise AssertionError(f"the consumer group did not settle with {instances} instances")
        finally:
            await admin.close()

    async def tasks(self) -> list[dict[str, Any]]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO)
        try:
            return await client[self.database]["tasks"].find({}).to_list(None)
        finally:
            await client.close()

    async def settled_tasks(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The stored tasks once none is active (events reach Kafka just before the store
        records that they did)."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = await self.tasks()
            if not any(t["active"] for t in tasks) or time.monotonic() > deadline:
                return tasks
            await asyncio.sleep(0.2)

    async def close(self) -> None:
        for instance in self.instances:
            instance.kill()
        await self.collector.stop()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO)
        await client.drop_database(self.database)
        await client.close()


@pytest.fixture
async def deployment(tmp_path: Path, sim: Simulator) -> AsyncIterator[Deployment]:
    deployment = Deployment(tmp_path, sim.url)
    yield deployment
    await deployment.close()


@pytest.fixture
def statuses(deployment: Deployment) -> Callable[[str], list[str]]:
    def of(request_id: str) -> list[str]:
        return [
            e["status"] for e in deployment.collector.events(request_id, deployment.topics.status)
        ]

    return of
