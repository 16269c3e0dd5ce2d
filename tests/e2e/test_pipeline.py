"""The pipeline end to end: requests on Kafka, tasks in MongoDB, the simulator upstream."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import KAFKA, Deployment, Simulator
from tests.e2e.models import PROVIDER_OF, VALID_PARAMETERS, marked
from tests.harness import request, send

pytestmark = pytest.mark.integration

LIFECYCLE = ["accepted", "submitted", "running", "downloading", "completed"]


def rid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


async def test_every_model_completes_end_to_end(deployment: Deployment, sim: Simulator) -> None:
    await deployment.collector.start()
    await deployment.start_instance()
    ids = {model: rid(model) for model in VALID_PARAMETERS}
    messages = [
        request(
            ids[m],
            m,
            marked(m, ids[m]),
            metadata={"order": m, "shop.id": 7, "$ref": "x"},
            user_id="u-1",
        )
        for m in VALID_PARAMETERS
    ]
    await send(KAFKA, deployment.topics.requests, messages)

    collector = deployment.collector
    await collector.wait_for(
        lambda: all(collector.events(r, deployment.topics.completed) for r in ids.values()),
        timeout=60,
        what="a completed event for every model",
    )
    for model, request_id in ids.items():
        statuses = [e["status"] for e in collector.events(request_id, deployment.topics.status)]
        assert statuses == LIFECYCLE, (model, statuses)
        status_events = collector.events(request_id, deployment.topics.status)
        assert [e["sequence"] for e in status_events] == [1, 2, 3, 4, 5]
        assert all(
            e["metadata"] == {"order": model, "shop.id": 7, "$ref": "x"} and e["user_id"] == "u-1"
            for e in status_events
        )
        assert all(
            e["provider"] == PROVIDER_OF[model] and e["model"] == model for e in status_events
        )
        assert status_events[1]["upstream_task_id"]

        (completed,) = collector.events(request_id, deployment.topics.completed)
        assert completed["event_type"] == "completed" and completed["sequence"] == 5
        result = completed["result"]
        assert (
            result["model"] == model
            and result["upstream_task_id"] == status_events[1]["upstream_task_id"]
        )
        assert result["prompt"].endswith(f"[{request_id}]")
        assert result["videos"], model
        for video in result["videos"]:
            path = Path(video["local_path"])
            assert path.parent == deployment.video_dir.resolve()
            assert video["filename"] == path.name and path.name.startswith(f"{PROVIDER_OF[model]}_")
            data = path.read_bytes()
            assert len(data) == video["size_bytes"] and data[4:8] == b"ftyp"
            assert hashlib.sha256(data).hexdigest() == video["sha256"]
            assert video["width"] and video["height"] and video["duration"]
        assert completed["timings"]["total_s"] >= completed["timings"]["generation_s"]
        # One generation per request: the marker is in exactly one upstream task's prompt.
        assert await sim.generations(prompt_contains=f"[{request_id}]") == 1, model

    # The DashScope-specific fields reach the completed event.
    (t2v,) = collector.events(ids["wanx2.1-t2v-turbo"], deployment.topics.completed)
    assert t2v["result"]["usage"]["video_count"] == 1
    assert t2v["result"]["resolution"]
    # Every task left the store's scans once its last event reached Kafka.
    stored = await deployment.settled_tasks()
    assert [(t["status"], t["active"], t["published"], len(t["events"])) for t in stored] == [
        ("completed", False, 6, 6)
    ] * len(ids)
    # Nothing is left under a temporary name.
    assert not [p for p in deployment.video_dir.iterdir() if p.name.endswith(".part")]


async def test_same_request_id_three_times_starts_one_generation(
    deployment: Deployment, sim: Simulator
) -> None:
    await deployment.collector.start()
    await deployment.start_instance()
    request_id = rid("dup")
    message = request(request_id, "cogvideox-flash", marked("cogvideox-flash", request_id))
    await send(KAFKA, deployment.topics.requests, [message])
    collector = deployment.collector
    await collector.wait_for(lambda: collector.events(request_id, deployment.topics.completed), 30)
    await send(KAFKA, deployment.topics.requests, [message, message])
    await collector.wait_for(
        lambda: len(collector.events(request_id, deployment.topics.status)) >= 7,
        30,
        "re-published statuses",
    )
    statuses = collector.events(request_id, deployment.topics.status)
    assert [e["status"] for e in statuses] == [*LIFECYCLE, "completed", "completed"]
    # A re-publish is the same event: consumers can drop it by event_id.
    assert statuses[-1]["event_id"] == statuses[-2]["event_id"] == statuses[4]["event_id"]
    assert await sim.generations(request_id_prefix=f"{request_id}-") == 1
    assert len(collector.events(request_id, deployment.topics.completed)) == 1
    assert len(await deployment.tasks()) == 1


BAD_INPUTS: list[tuple[str, bytes | dict[str, Any], str, str]] = [
    ("not-json", b"{not json", "invalid_request", "not valid UTF-8 JSON"),
    ("not-object", b"[1, 2]", "invalid_request", "must be a JSON object"),
    (
        "no-request-id",
        {"model": "cogvideox-flash", "parameters": {"prompt": "x"}},
        "invalid_request",
        "request_id",
    ),
    (
        "bad-request-id",
        {"request_id": "has space", "model": "cogvideox-flash", "parameters": {"prompt": "x"}},
        "invalid_request",
        "request_id",
    ),
    (
        "unknown-model",
        {"model": "wanx9-t2v", "parameters": {"prompt": "x"}},
        "unknown_model",
        "wanx2.1-t2v-turbo",
    ),
    (
        "typo-param",
        {"model": "wanx2.1-t2v-turbo", "parameters": {"prompt": "x", "resolutoin": "720P"}},
        "invalid_parameters",
        "resolutoin",
    ),
    (
        "bad-value",
        {"model": "wanx2.1-t2v-plus", "parameters": {"prompt": "x", "size": "832*480"}},
        "invalid_parameters",
        "1280*720",
    ),
    (
        "wrong-provider",
        {"model": "cogvideox-2", "provider": "aliyun", "parameters": {"prompt": "x"}},
        "invalid_request",
        "zhipuai",
    ),
    ("no-parameters", {"model": "cogvideox-2"}, "invalid_request", "parameters"),
    (
        "big-metadata",
        {"model": "cogvideox-2", "parameters": {"prompt": "x"}, "metadata": {"x": "y" * 5000}},
        "invalid_request",
        "metadata",
    ),
    (
        "short-timeout",
        {"model": "cogvideox-2", "parameters": {"prompt": "x"}, "timeout_s": 5},
        "invalid_request",
        "timeout_s",
    ),
    (
        "reply-topic",
        {"model": "cogvideox-2", "parameters": {"prompt": "x"}, "reply_topic": "elsewhere"},
        "forbidden",
        "reply_topic",
    ),
]


async def test_bad_input_goes_to_the_dead_letter_topic_and_never_upstream(
    deployment: Deployment, sim: Simulator
) -> None:
    await deployment.collector.start()
    await deployment.start_instance()
    messages: list[tuple[str | None, bytes]] = []
    keys: dict[str, str] = {}
    for label, body, _, _ in BAD_INPUTS:
        key = rid(label)
        keys[label] = key
        if isinstance(body, dict):
            body = (
                {"request_id": key, **body}
                if "request_id" not in body and label != "no-request-id"
                else body
            )
            value = json.dumps(body).encode()
        else:
            value = body
        messages.append((key, value))
    await send(
        KAFKA,
        deployment.topics.requests,
        messages,
        headers={"authorization": "Bearer not-needed", "trace": "t-1"},
    )

    collector = deployment.collector
    await collector.wait_for(
        lambda: all(collector.events(k, deployment.topics.dlq) for k in keys.values()),
        30,
        "dead letters",
    )
    for label, body, code, fragment in BAD_INPUTS:
        (dead,) = collector.events(keys[label], deployment.topics.dlq)
        assert dead["event_type"] == "rejected"
        assert dead["error"]["code"] == code, (label, dead["error"])
        assert fragment in dead["error"]["message"], (label, dead["error"]["message"])
        assert dead["original"]["topic"] == deployment.topics.requests
        assert dead["original"]["key"] == keys[label]
        assert dead["original"]["headers"] == {"trace": "t-1"}  # never the authorization header
        readable = isinstance(body, dict) and label not in ("no-request-id", "bad-request-id")
        failed = collector.events(keys[label], deployment.topics.status)
        if readable:
            assert [e["status"] for e in failed] == ["failed"], label
            assert failed[0]["error"] == dead["error"]
        else:
            assert failed == [], label
    stats = (await sim.control.get("/_sim/stats")).json()
    assert stats["generations"] == 0
    assert await deployment.tasks() == []


async def test_cancel_stops_the_upstream_task(deployment: Deployment, sim: Simulator) -> None:
    await sim.configure(timing={"queued_s": 30.0, "running_s": 30.0})
    await deployment.collector.start()
    await deployment.start_instance()
    request_id = rid("cancel")
    await send(
        KAFKA,
        deployment.topics.requests,
        [request(request_id, "wanx2.1-t2v-turbo", marked("wanx2.1-t2v-turbo", request_id))],
    )
    collector = deployment.collector
    await collector.wait_for(
        lambda: "submitted" in [e["status"] for e in collector.events(request_id)], 20
    )
    cancel = json.dumps(
        {"request_id": request_id, "reason": "customer changed their mind"}
    ).encode()
    await send(KAFKA, deployment.topics.cancel, [(request_id, cancel)])
    await collector.wait_for(
        lambda: "cancelled" in [e["status"] for e in collector.events(request_id)], 20
    )

    # The cancel may publish the latest status again (same event_id): consumers drop those.
    statuses = list(
        {e["event_id"]: e for e in collector.events(request_id, deployment.topics.status)}.values()
    )
    assert [e["status"] for e in statuses] == ["accepted", "submitted", "cancelled"]
    assert statuses[-1]["error"]["code"] == "cancelled"
    assert "customer changed their mind" in statuses[-1]["error"]["message"]
    (upstream,) = await sim.tasks(prompt_contains=f"[{request_id}]")
    assert upstream["status"] == "CANCELED"  # still PENDING upstream, so DashScope can cancel it
    # A second cancel of a terminal task publishes nothing.
    await send(KAFKA, deployment.topics.cancel, [(request_id, cancel)])
    unknown = json.dumps({"request_id": rid("never-seen")}).encode()
    await send(KAFKA, deployment.topics.cancel, [(None, unknown)])
    await deployment.start_instance()  # a second instance joining proves the cancels were read
    assert len({e["event_id"] for e in collector.events(request_id, deployment.topics.status)}) == 3
    assert not list(deployment.video_dir.glob("*.mp4")) if deployment.video_dir.exists() else True


async def test_upstream_failures_end_with_contract_codes(
    deployment: Deployment, sim: Simulator
) -> None:
    await deployment.collector.start()
    await deployment.start_instance()
    cases = {
        "moderation": ({"action": "moderation", "route": "submit"}, "content_moderation"),
        "arrearage": ({"action": "arrearage", "route": "submit"}, "quota_exceeded"),
        "fail_task": (
            {"action": "fail_task", "route": "submit", "code": "InternalError.Algo"},
            "upstream_failed",
        ),
        "unknown": ({"action": "unknown", "route": "submit"}, "upstream_failed"),
        "expired": ({"action": "expired_url", "route": "download"}, "download_failed"),
        "not_mp4": ({"action": "not_mp4", "route": "download"}, "download_failed"),
    }
    ids = {name: rid(name) for name in cases}
    for name, (rule, _) in cases.items():
        await sim.fault(vendor="dashscope", prompt_contains=f"[{ids[name]}]", **rule)
    messages = [
        request(ids[n], "wanx2.1-t2v-turbo", marked("wanx2.1-t2v-turbo", ids[n])) for n in cases
    ]
    await send(KAFKA, deployment.topics.requests, messages)
    collector = deployment.collector
    await collector.wait_for(
        lambda: all("failed" in [e["status"] for e in collector.events(r)] for r in ids.values()),
        60,
    )
    for name, (_, code) in cases.items():
        final = collector.events(ids[name], deployment.topics.status)[-1]
        assert final["status"] == "failed" and final["error"]["code"] == code, (
            name,
            final["error"],
        )
        assert final["error"]["message"]
    assert (
        not [p for p in deployment.video_dir.glob("*") if p.suffix in (".mp4", ".part")]
        if deployment.video_dir.exists()
        else True
    )


async def test_throttling_and_server_errors_are_retried(
    deployment: Deployment, sim: Simulator
) -> None:
    await deployment.collector.start()
    await deployment.start_instance()
    request_id = rid("flaky")
    await sim.fault(
        vendor="dashscope",
        route="submit",
        action="429",
        retry_after=1,
        times=2,
        prompt_contains=f"[{request_id}]",
    )
    await sim.fault(vendor="dashscope", route="query", action="503", times=2)
    await sim.fault(vendor="dashscope", route="download", action="truncate", times=1)
    await send(
        KAFKA,
        deployment.topics.requests,
        [request(request_id, "wanx2.1-t2v-turbo", marked("wanx2.1-t2v-turbo", request_id))],
    )
    collector = deployment.collector
    await collector.wait_for(lambda: collector.events(request_id, deployment.topics.completed), 60)
    assert await sim.generations(prompt_contains=f"[{request_id}]") == 1


async def test_missing_provider_key_fails_naming_the_variable(deployment: Deployment) -> None:
    await deployment.collector.start()
    await deployment.start_instance(ZHIPUAI_API_KEY="")
    request_id = rid("nokey")
    await send(
        KAFKA, deployment.topics.requests, [request(request_id, "viduq1-text", {"prompt": "x"})]
    )
    collector = deployment.collector
    await collector.wait_for(
        lambda: "failed" in [e["status"] for e in collector.events(request_id)], 20
    )
    final = collector.events(request_id, deployment.topics.status)[-1]
    assert final["error"]["code"] == "upstream_unavailable"
    assert "ZHIPUAI_API_KEY" in final["error"]["message"]


async def test_reply_topic_gets_copies_when_allowed(deployment: Deployment) -> None:
    reply = f"{deployment.topics.status}.replies"
    deployment.collector = type(deployment.collector)(
        KAFKA, [deployment.topics.status, deployment.topics.completed, reply]
    )
    await deployment.collector.start()
    await deployment.start_instance(REPLY_TOPIC_PATTERN=r"t[0-9a-f]+\.video\.status\.replies")
    request_id = rid("reply")
    await send(
        KAFKA,
        deployment.topics.requests,
        [request(request_id, "cogvideox-flash", {"prompt": "x"}, reply_topic=reply)],
    )
    collector = deployment.collector
    await collector.wait_for(
        lambda: (
            len(collector.events(request_id, reply)) == 6
            and len(collector.events(request_id, deployment.topics.status)) == 5
            and len(collector.events(request_id, deployment.topics.completed)) == 1
        ),
        40,
        "reply copies",
    )
    copies = collector.events(request_id, reply)
    # One key, one partition: the copies come in the task's order, completed event last.
    assert [e["event_type"] for e in copies] == ["status"] * 5 + ["completed"]
    originals = [
        e
        for t in (deployment.topics.status, deployment.topics.completed)
        for e in collector.events(request_id, t)
    ]
    assert sorted(e["event_id"] for e in copies) == sorted(e["event_id"] for e in originals)


@pytest.mark.slow
async def test_timeout_fails_the_task_and_cancels_upstream(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing={"queued_s": 300.0, "running_s": 300.0})
    await deployment.collector.start()
    await deployment.start_instance()
    request_id = rid("timeout")
    await send(
        KAFKA,
        deployment.topics.requests,
        [
            request(
                request_id,
                "wanx2.1-t2v-turbo",
                marked("wanx2.1-t2v-turbo", request_id),
                timeout_s=60,
            )
        ],
    )
    collector = deployment.collector
    await collector.wait_for(
        lambda: "failed" in [e["status"] for e in collector.events(request_id)], 90
    )
    final = collector.events(request_id, deployment.topics.status)[-1]
    assert final["error"]["code"] == "timeout" and "60 s" in final["error"]["message"]
    (upstream,) = await sim.tasks(prompt_contains=f"[{request_id}]")
    assert upstream["status"] == "CANCELED"
    assert os.path.exists(deployment.video_dir) is False or not list(deployment.video_dir.iterdir())


async def test_max_in_flight_pauses_intake_and_loses_nothing(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing={"queued_s": 0.5, "running_s": 2.0})
    await deployment.collector.start()
    instance = await deployment.start_instance(MAX_IN_FLIGHT="3")
    first = [rid("bp") for _ in range(4)]
    later = [rid("bp") for _ in range(4)]
    await send(
        KAFKA,
        deployment.topics.requests,
        [request(r, "cogvideox-flash", {"prompt": "x"}) for r in first],
    )
    collector = deployment.collector
    await collector.wait_for(
        lambda: all(collector.events(r) for r in first), 20, "first batch accepted"
    )
    assert "video_intake_paused 1.0" in await instance.metrics()
    # Sent while paused: they wait in Kafka, and are read once tasks finish.
    await send(
        KAFKA,
        deployment.topics.requests,
        [request(r, "cogvideox-flash", {"prompt": "x"}) for r in later],
    )
    await collector.wait_for(
        lambda: all(collector.events(r, deployment.topics.completed) for r in first + later),
        60,
        "all completed",
    )

    def accepted_at(request_id: str) -> float:
        stamp = collector.events(request_id, deployment.topics.status)[0]["timestamp"]
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    # Generations take 2.5 s: without the pause the later requests would have been taken in at
    # once; paused, they wait until the first tasks finish.
    assert min(map(accepted_at, later)) - max(map(accepted_at, first)) >= 2.0
    assert "video_intake_paused 0.0" in await instance.metrics()
