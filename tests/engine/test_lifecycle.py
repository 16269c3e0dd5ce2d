"""The engine's ordinary paths, in-process: a task goes from accepted to completed, vendor
errors end it with the right code, duplicates start nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from providers.registry import get_model
from tests.engine.harness import World, request
from tests.factories import version_0_1_document


async def test_a_request_completes_with_one_generation(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request("wanx2.1-t2v-turbo", metadata={"order": 7})
    await world.send(body)
    assert await world.finished(body["request_id"]) == "completed"
    events = world.kafka.events(body["request_id"])
    statuses = [e["status"] for e in events]
    order = ["accepted", "submitted", "running", "downloading", "completed"]
    assert statuses == [s for s in order if s in statuses]  # in order; running may be skipped
    assert statuses[:2] == ["accepted", "submitted"] and statuses[-2:] == order[-2:]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["metadata"] == {"order": 7} for e in events)
    (completed,) = world.kafka.events(body["request_id"], "video.completed")
    video = completed["result"]["videos"][0]
    assert Path(video["local_path"]).stat().st_size == video["size_bytes"] > 0
    assert world.generations(body["request_id"]) == 1
    for _ in range(100):  # the store records the events as published just after they go out
        stored = await world.store.find_by_request_id(body["request_id"])
        if stored is not None and not stored.active:
            break
        await asyncio.sleep(0.01)
    assert stored is not None and stored.active is False and stored.published == len(stored.events)


async def test_a_duplicate_request_republishes_and_generates_nothing(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request()
    await world.send(body)
    await world.finished(body["request_id"])
    before = len(world.kafka.events(body["request_id"]))
    await world.send(body)
    events = world.kafka.events(body["request_id"])
    assert len(events) == before + 1 and events[-1]["event_id"] == events[before - 1]["event_id"]
    assert world.generations(body["request_id"]) == 1


async def test_a_vendor_failure_ends_the_task_with_its_code(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request()
    world.sim.faults.add({"action": "moderation", "prompt_contains": body["request_id"]})
    await world.send(body)
    assert await world.finished(body["request_id"]) == "failed"
    failed = world.kafka.events(body["request_id"])[-1]
    assert failed["error"]["code"] == "content_moderation"


async def test_throttling_is_retried_then_completes(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request()
    rule = {"action": "429", "route": "query", "times": 2, "prompt_contains": body["request_id"]}
    world.sim.faults.add(rule)
    await world.send(body)
    assert await world.finished(body["request_id"]) == "completed"


async def test_a_provider_without_a_key_fails_naming_the_variable(world: World) -> None:
    engine = world.start_engine(aliyun_api_key=None)
    await engine.start()
    body = request("wanx2.1-t2v-turbo")
    await world.send(body)
    assert await world.finished(body["request_id"]) == "failed"
    assert "ALIYUN_API_KEY" in world.kafka.events(body["request_id"])[-1]["error"]["message"]


async def test_an_expired_result_url_fails_as_download_failed(world: World) -> None:
    engine = world.start_engine()
    await engine.start()
    body = request()
    world.sim.faults.add({"action": "expired_url", "route": "download"})
    await world.send(body)
    assert await world.finished(body["request_id"]) == "failed"
    assert world.kafka.events(body["request_id"])[-1]["error"]["code"] == "download_failed"


async def test_a_running_task_stored_by_version_0_1_resumes_and_completes(world: World) -> None:
    engine = world.start_engine()
    provider = engine.ctx.providers["zhipuai"]
    submitted = await provider.submit(
        "old-1", "cogvideox-flash", get_model("cogvideox-flash").parameters(prompt="old [old-1]")
    )
    document = version_0_1_document(
        request_id="old-1",
        status="submitted",
        sequence=2,
        upstream_task_id=submitted.upstream_task_id,
        upstream_status="PROCESSING",
        key_id=submitted.key_id,
        submit_started_at=engine.clock.now(),
        submitted_at=engine.clock.now(),
    )
    world.store._tasks[document["_id"]] = document
    world.store._by_request["old-1"] = document["_id"]
    await engine.start()
    await engine.leases.claim_expired()
    assert await world.finished("old-1") == "completed"
    assert world.generations("old-1") == 1


async def test_an_oss_file_no_configured_account_can_use_is_refused_before_storing(
    world: World,
) -> None:
    engine = world.start_engine(
        aliyun_api_key="sk-one,sk-two", aliyun_key_accounts="a:sk-one;b:sk-two"
    )
    await engine.start()
    parameters = {"img_url": "oss://dashscope-instant/x/cat.png"}
    body = request("wanx2.1-i2v-turbo", parameters=parameters)
    await world.send(body)
    (dead,) = [b for topic, _, b in world.kafka.records if topic == "video.requests.dlq"]
    assert dead["error"]["code"] == "invalid_parameters"
    assert "ALIYUN_OSS_ACCOUNT" in dead["error"]["message"]
    assert await world.store.find_by_request_id(body["request_id"]) is None
    assert world.generations(body["request_id"]) == 0
