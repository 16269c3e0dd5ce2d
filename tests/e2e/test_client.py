"""The client package (client/video_client) against the real broker and the service as a real
process: submit, events, result, cancel, attach, auth, reply topics, rejections."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import jwt
import pytest

from tests.e2e.conftest import KAFKA, Deployment, Simulator
from video_client import (
    InvalidParameters,
    KafkaConfig,
    RequestRejected,
    StatusEvent,
    TaskCancelled,
    TaskFailed,
    Topics,
    VideoClient,
)

pytestmark = pytest.mark.integration

SECRET = "client-e2e-secret-at-least-32-bytes-long"


def topics_of(deployment: Deployment) -> Topics:
    t = deployment.topics
    return Topics(t.requests, t.cancel, t.status, t.completed, t.dlq)


def token(user: str, tenant: str = "t-1", **claims: object) -> str:
    body = {"sub": user, "tenant_id": tenant, "exp": int(time.time()) + 300, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


def rid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def collect(events: object, limit_s: float = 30.0) -> list[StatusEvent]:
    seen: list[StatusEvent] = []
    async with asyncio.timeout(limit_s):
        async for event in events:  # type: ignore[attr-defined]
            seen.append(event)
    return seen


async def test_submit_follow_and_get_the_video(deployment: Deployment, sim: Simulator) -> None:
    await deployment.start_instance()
    async with VideoClient(KAFKA, topics=topics_of(deployment)) as client:
        task = await client.submit(
            "wanx2.1-t2v-turbo",
            {"prompt": "a kitten on the grass", "size": "832*480"},
            request_id=rid("client"),
            metadata={"order": 42},
        )
        events = await collect(task.events())
        completed = await task.result(timeout=30)
    assert [e.status for e in events] == [
        "accepted",
        "submitted",
        "running",
        "downloading",
        "completed",
    ][: len(events)] or events[-1].status == "completed"
    assert events[-1].status == "completed"
    assert [e.sequence for e in events] == sorted({e.sequence for e in events})
    assert len({e.event_id for e in events}) == len(events)
    assert all(e.metadata == {"order": 42} for e in events)
    video = completed.result.videos[0]
    assert Path(video.local_path).stat().st_size == video.size_bytes
    assert (video.width, video.height) == (832, 480)
    assert completed.request_id == task.request_id


async def test_invalid_parameters_are_refused_before_anything_is_sent(
    deployment: Deployment, sim: Simulator
) -> None:
    await deployment.collector.start()
    await deployment.start_instance()
    async with VideoClient(KAFKA, topics=topics_of(deployment)) as client:
        with pytest.raises(InvalidParameters) as caught:
            await client.submit("wanx2.1-t2v-turbo", {"prompt": "x", "size": "100*100"})
    assert "parameters.size: '100*100' is not allowed for wanx2.1-t2v-turbo" in str(caught.value)
    assert "1280*720" in str(caught.value)
    await asyncio.sleep(1.0)
    assert deployment.collector.all == []  # nothing reached the service
    assert await sim.generations() == 0


async def test_a_failed_task_raises_with_the_contract_error(
    deployment: Deployment, sim: Simulator
) -> None:
    await deployment.start_instance()
    await sim.fault(vendor="dashscope", route="submit", action="moderation", times=1)
    async with VideoClient(KAFKA, topics=topics_of(deployment)) as client:
        task = await client.submit("wanx2.1-t2v-turbo", {"prompt": "x"}, request_id=rid("fail"))
        with pytest.raises(TaskFailed) as caught:
            await task.result(timeout=30)
    assert caught.value.code == "content_moderation"
    assert caught.value.event is not None and caught.value.event.status == "failed"


async def test_cancel_and_attach(deployment: Deployment, sim: Simulator) -> None:
    await sim.configure(timing={"queued_s": 30.0, "running_s": 30.0})
    await deployment.start_instance()
    request_id = rid("cancel")
    async with VideoClient(KAFKA, topics=topics_of(deployment)) as client:
        task = await client.submit("cogvideox-2", {"prompt": "x"}, request_id=request_id)
        async with asyncio.timeout(20):
            async for event in task.events():
                if event.status == "submitted":
                    break
    # Another process attaches to it later: it sees the past, then the cancel.
    async with VideoClient(KAFKA, topics=topics_of(deployment)) as other:
        attached = await other.attach(request_id)
        await attached.loaded()
        assert [e.status for e in attached.statuses] == ["accepted", "submitted"]
        await attached.cancel("changed my mind")
        with pytest.raises(TaskCancelled) as caught:
            await attached.result(timeout=20)
        assert caught.value.code == "cancelled"
        lived = [e.status for e in attached.statuses]
        assert lived[:2] == ["accepted", "submitted"] and lived[-1] == "cancelled"
        # A third handle on a finished task: its whole life, then the end.
        again = await other.attach(request_id)
        events = await collect(again.events())
    assert [e.status for e in events] == lived


async def test_a_duplicate_submit_gets_the_finished_task_and_its_video(
    deployment: Deployment, sim: Simulator
) -> None:
    await deployment.start_instance()
    request_id = rid("dup")
    async with VideoClient(KAFKA, topics=topics_of(deployment)) as client:
        first = await client.submit("viduq1-text", {"prompt": "x"}, request_id=request_id)
        done = await first.result(timeout=30)
        # The service re-publishes only the `completed` status: the client finds the event.
        second = await client.submit("viduq1-text", {"prompt": "x"}, request_id=request_id)
        again = await second.result(timeout=30)
    assert again.event_id == done.event_id
    assert await sim.generations() == 1


async def test_tokens_and_reply_topics(deployment: Deployment, sim: Simulator) -> None:
    reply = f"{deployment.topics.status}.replies"
    await deployment.start_instance(
        AUTH_MODE="jwt",
        AUTH_JWT_SECRET=SECRET,
        REPLY_TOPIC_PATTERN=r"t[0-9a-f]+\.video\.status\.replies",
    )
    topics = topics_of(deployment)
    # No token: the service refuses, and says so only on the dead-letter topic.
    async with VideoClient(KAFKA, topics=topics) as anonymous:
        task = await anonymous.submit("cogvideox-flash", {"prompt": "x"}, request_id=rid("anon"))
        with pytest.raises(RequestRejected) as caught:
            await task.result(timeout=20)
        assert caught.value.code == "unauthorized"
        with pytest.raises(RequestRejected):
            await collect(task.events())
    # A token (a callable, so it can be refreshed), and events on the producer's reply topic.
    calls = 0

    def current() -> str:
        nonlocal calls
        calls += 1
        return token("u-1")

    await _create_topic(reply)
    async with VideoClient(KAFKA, topics=topics, token=current, reply_topic=reply) as client:
        assert client.event_topics == [reply, topics.dlq]
        task = await client.submit("cogvideox-flash", {"prompt": "x"}, request_id=rid("mine"))
        completed = await task.result(timeout=30)
        assert completed.user_id == "u-1" and completed.tenant_id == "t-1"
        assert task.statuses[0].status == "accepted"
    assert calls == 1


async def test_sasl_scram(deployment: Deployment, sim: Simulator) -> None:
    await deployment.start_instance()
    kafka = KafkaConfig(
        bootstrap_servers=f"127.0.0.1:{os.environ.get('KAFKA_SASL_PORT', '9094')}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="alice",
        sasl_password="alice-secret",
    )
    async with VideoClient(kafka, topics=topics_of(deployment)) as client:
        task = await client.submit("viduq1-text", {"prompt": "over SASL"})
        completed = await task.result(timeout=30)
    assert completed.result.videos


async def _create_topic(name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
