"""AUTH_MODE=jwt end to end: tokens on requests and cancels."""

from __future__ import annotations

import json
import os
import time
import uuid

import jwt
import pytest

from tests.e2e.conftest import KAFKA, Deployment, Simulator
from tests.e2e.models import marked
from tests.harness import request, send

pytestmark = pytest.mark.integration

SECRET = "e2e-secret-that-is-at-least-32-bytes"


def bearer(user: str, tenant: str) -> dict[str, str]:
    claims = {"sub": user, "tenant_id": tenant, "exp": int(time.time()) + 300}
    return {"authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


async def test_tokens_identify_requesters_and_guard_cancels(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing={"queued_s": 30.0, "running_s": 30.0})
    await deployment.collector.start()
    await deployment.start_instance(AUTH_MODE="jwt", AUTH_JWT_SECRET=SECRET)
    anonymous, mine = f"anon-{uuid.uuid4().hex[:6]}", f"mine-{uuid.uuid4().hex[:6]}"
    await send(
        KAFKA, deployment.topics.requests, [request(anonymous, "cogvideox-2", {"prompt": "x"})]
    )
    model = "wanx2.1-t2v-turbo"
    await send(
        KAFKA,
        deployment.topics.requests,
        [request(mine, model, marked(model, mine))],
        headers=bearer("u-1", "t-1"),
    )
    collector = deployment.collector
    await collector.wait_for(lambda: collector.events(anonymous, deployment.topics.dlq), 20)
    (dead,) = collector.events(anonymous, deployment.topics.dlq)
    assert dead["error"]["code"] == "unauthorized"
    assert "authorization" not in {k.lower() for k in dead["original"]["headers"]}

    await collector.wait_for(
        lambda: "submitted" in [e["status"] for e in collector.events(mine)], 20
    )
    accepted = collector.events(mine, deployment.topics.status)[0]
    assert (accepted["user_id"], accepted["tenant_id"]) == ("u-1", "t-1")

    cancel = json.dumps({"request_id": mine}).encode()
    await send(KAFKA, deployment.topics.cancel, [(mine, cancel)], headers=bearer("u-2", "t-1"))
    await send(KAFKA, deployment.topics.cancel, [(mine, cancel)], headers=bearer("u-1", "t-1"))
    await collector.wait_for(
        lambda: "cancelled" in [e["status"] for e in collector.events(mine)], 20
    )
    # The stranger's cancel came first on the same partition and was refused: one cancel only.
    distinct = {e["event_id"]: e for e in collector.events(mine, deployment.topics.status)}
    assert [e["status"] for e in distinct.values()] == ["accepted", "submitted", "cancelled"]
    assert "refused" in deployment.instances[0].log_tail(200)


async def test_the_service_connects_over_sasl_scram(deployment: Deployment, sim: Simulator) -> None:
    await deployment.collector.start()
    sasl_port = os.environ.get("KAFKA_SASL_PORT", "9094")
    await deployment.start_instance(
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{sasl_port}",
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="alice",
        KAFKA_SASL_PASSWORD="alice-secret",
    )
    request_id = f"sasl-{uuid.uuid4().hex[:6]}"
    await send(
        KAFKA, deployment.topics.requests, [request(request_id, "viduq1-text", {"prompt": "x"})]
    )
    collector = deployment.collector
    await collector.wait_for(lambda: collector.events(request_id, deployment.topics.completed), 30)
    assert "alice-secret" not in deployment.instances[0].log_tail(500)
