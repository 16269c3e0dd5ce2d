"""Where production fails, end to end against the strict simulator: submits whose answer is lost,
media checked before paying, `oss://` inputs, and videos uploaded for other hosts."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import KAFKA, Deployment, Simulator
from tests.harness import free_port, request, send

pytestmark = pytest.mark.integration

IMAGE = "https://example.com/cat.png"


def rid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


async def run(deployment: Deployment, *messages: tuple[str, bytes], **env: str) -> None:
    await deployment.collector.start()
    await deployment.start_instance(SUBMIT_RESOLVE_AFTER_S="1", **env)
    await send(KAFKA, deployment.topics.requests, list(messages))


async def ended(deployment: Deployment, request_id: str) -> dict[str, Any]:
    collector, topic = deployment.collector, deployment.topics.status

    def terminal() -> list[dict[str, Any]]:
        return [
            e
            for e in collector.events(request_id, topic)
            if e["status"] in ("completed", "failed", "cancelled")
        ]

    await collector.wait_for(lambda: bool(terminal()), timeout=60, what=f"the end of {request_id}")
    return terminal()[0]


async def test_a_dashscope_task_created_behind_a_500_is_found_and_adopted(
    deployment: Deployment, sim: Simulator
) -> None:
    request_id = rid("lost-ds")
    await sim.fault(
        action="500", route="submit", stage="after", times=1, prompt_contains=request_id
    )
    parameters = {"prompt": f"a cat [{request_id}]"}
    await run(deployment, request(request_id, "wanx2.1-t2v-turbo", parameters))
    assert (await ended(deployment, request_id))["status"] == "completed"
    assert await sim.generations(prompt_contains=f"[{request_id}]") == 1


async def test_a_bigmodel_submit_behind_a_500_is_never_paid_twice(
    deployment: Deployment, sim: Simulator
) -> None:
    created, refused = rid("lost-bm"), rid("lost-bm")
    await sim.fault(action="500", route="submit", stage="after", times=1, prompt_contains=created)
    await sim.fault(action="500", route="submit", stage="before", times=1, prompt_contains=refused)
    await run(
        deployment,
        request(created, "cogvideox-flash", {"prompt": f"a cat [{created}]"}),
        request(refused, "cogvideox-flash", {"prompt": f"a cat [{refused}]"}),
    )
    # Sent again with the same request id: BigModel refuses a second task (1231).
    failed = await ended(deployment, created)
    assert failed["status"] == "failed" and failed["error"]["upstream_code"] == "1231"
    assert (await ended(deployment, refused))["status"] == "completed"
    for request_id in (created, refused):
        assert await sim.generations(prompt_contains=f"[{request_id}]") == 1


async def test_media_is_checked_before_paying(deployment: Deployment, sim: Simulator) -> None:
    huge, missing = rid("huge"), rid("missing")
    # Over the 700 KiB a data: URI may have, yet within one Kafka message.
    data_uri = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + bytes(560_000)).decode()
    await run(
        deployment,
        request(huge, "cogvideox-flash", {"prompt": "x", "image_url": data_uri}),
        request(
            missing, "cogvideox-flash", {"prompt": "x", "image_url": "https://example.com/gone.png"}
        ),
    )
    collector = deployment.collector
    await collector.wait_for(
        lambda: bool(collector.events(huge, deployment.topics.dlq)), what="a dead letter"
    )
    (dead,) = collector.events(huge, deployment.topics.dlq)
    assert dead["error"]["code"] == "invalid_parameters" and "image_url" in dead["error"]["message"]
    # A URL the service cannot see into is the vendor's to refuse: a task that fails clearly.
    refused = await ended(deployment, missing)
    assert refused["status"] == "failed" and refused["error"]["code"] == "upstream_rejected"
    assert await sim.generations(prompt_contains=huge) == 0


async def test_an_oss_file_of_the_account_is_used(deployment: Deployment, sim: Simulator) -> None:
    request_id = rid("oss")
    # Both of the deployment's DashScope keys are one account (the service's default too).
    await sim.configure(accounts={"main": ["sk-test-one", "sk-test-two"]})
    response = await sim.control.post(
        "/_sim/uploads",
        json={"api_key": "sk-test-one", "model": "wanx2.1-i2v-turbo", "file": "cat.png"},
    )
    response.raise_for_status()
    parameters = {"prompt": f"the cat [{request_id}]", "img_url": response.json()["url"]}
    await run(deployment, request(request_id, "wanx2.1-i2v-turbo", parameters))
    assert (await ended(deployment, request_id))["status"] == "completed"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


async def test_videos_are_uploaded_for_other_hosts(
    deployment: Deployment, sim: Simulator, moto_url: str
) -> None:
    bucket = f"videos-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient() as client:  # moto accepts an unsigned bucket creation
        (await client.put(f"{moto_url}/{bucket}")).raise_for_status()
    request_id = rid("s3")
    await run(
        deployment,
        request(request_id, "cogvideox-flash", {"prompt": f"a cat [{request_id}]"}),
        OBJECT_STORE_BUCKET=bucket,
        OBJECT_STORE_URL=moto_url,
        OBJECT_STORE_ACCESS_KEY="test-key",
        OBJECT_STORE_SECRET_KEY="test-secret",
        OBJECT_STORE_ADDRESSING="path",
    )
    assert (await ended(deployment, request_id))["status"] == "completed"
    collector, topic = deployment.collector, deployment.topics.completed
    await collector.wait_for(lambda: bool(collector.events(request_id, topic)), what="completed")
    (completed,) = collector.events(request_id, topic)
    video = completed["result"]["videos"][0]
    async with httpx.AsyncClient() as client:
        fetched = await client.get(video["object_url"])
    assert fetched.status_code == 200 and len(fetched.content) == video["size_bytes"]
    assert hashlib.sha256(fetched.content).hexdigest() == video["sha256"]
    assert video["object_key"].endswith(video["filename"])
