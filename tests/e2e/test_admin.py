"""`video-service-admin` against the service as a real process, on the real Kafka broker and
MongoDB-wire server: the installed console script, run as an operator runs it, with the
service's own environment (its database, topics and key). And retention's MongoDB side (index,
guards, the loop) on the real server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from consumers.admin.redrive import REDRIVEN_FROM
from consumers.operations.retention import (
    INDEX_NAME,
    MongoRetentionStore,
    RetentionSweeper,
    _ttl_monitor,
)
from consumers.settings import Settings
from consumers.storage.mongo import MongoTaskStore
from tests.e2e.conftest import KAFKA, MONGO, Deployment, Simulator
from tests.e2e.models import marked
from tests.harness import ROOT, request, send

pytestmark = pytest.mark.integration

SECRET = "e2e-admin-secret-that-is-at-least-32-bytes"
SCRIPT = Path(sys.executable).parent / "video-service-admin"
SLOW = {"queued_s": 300.0, "running_s": 300.0}
FAST = {"queued_s": 0.2, "running_s": 0.5}


async def admin(
    deployment: Deployment,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 90,
) -> tuple[int, str, str]:
    environment = {**os.environ, **deployment.env(**(env or {})), "COLUMNS": "250"}
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), *args, env=environment, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(
        process.communicate(input.encode() if input is not None else b""), timeout
    )
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def words(text: str) -> str:
    return " ".join(text.split())


def token(user: str = "ops", **claims: Any) -> str:
    body = {"sub": user, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


def statuses(deployment: Deployment, request_id: str) -> list[str]:
    return [e["status"] for e in deployment.collector.events(request_id, deployment.topics.status)]


async def wait_status(deployment: Deployment, request_id: str, status: str, timeout: float = 30):
    await deployment.collector.wait_for(
        lambda: status in statuses(deployment, request_id), timeout, f"{request_id} {status}"
    )


async def submit(deployment: Deployment, request_id: str, model: str, **extra: Any) -> None:
    headers = extra.pop("headers", None)
    await send(
        KAFKA,
        deployment.topics.requests,
        [request(request_id, model, marked(model, request_id), **extra)],
        headers=headers,
    )


def test_the_console_script_is_declared_and_installed() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'video-service-admin = "consumers.admin.cli:main"' in text
    assert SCRIPT.exists(), "run `make install`"


# --- task show, task list ----------------------------------------------------------------------


async def test_show_a_task_and_list_tasks_and_stuck_ones(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing=FAST, model_timing={"cogvideox-2": SLOW})
    await deployment.collector.start()
    await deployment.start_instance()
    tag = uuid.uuid4().hex[:6]
    done, stuck = f"done-{tag}", f"stuck-{tag}"
    await submit(deployment, done, "wanx2.1-t2v-turbo", tenant_id="t-1")
    await submit(deployment, stuck, "cogvideox-2", tenant_id="t-2")
    await wait_status(deployment, done, "completed")
    await wait_status(deployment, stuck, "submitted")
    await deployment.settled_tasks(timeout=3)

    code, out, err = await admin(deployment, "task", "show", done)
    assert code == 0, err
    text = words(out)
    video = next(deployment.video_dir.glob("aliyun_*.mp4"))
    for fragment in (f"{done} completed", "accepted", "submitted", "downloading",
                     "completed event: 1 video", str(video), "832x480", "t-1"):  # fmt: skip
        assert fragment in text, fragment
    code, out, _ = await admin(deployment, "task", "show", done, "--json")
    record = json.loads(out)
    assert code == 0 and record["request_id"] == done and record["active"] is False
    history = [e["body"]["status"] for e in record["events"] if e["kind"] == "status"]
    assert history == statuses(deployment, done)
    assert history[0] == "accepted" and history[-1] == "completed"
    assert [e["kind"] for e in record["events"]].count("completed") == 1
    assert record["result"]["videos"][0]["local_path"] == str(video)
    code, out, _ = await admin(deployment, "task", "show", record["_id"])
    assert code == 0 and done in out
    code, _, err = await admin(deployment, "task", "show", f"nothing-{tag}")
    assert code == 4 and "no task" in err

    code, out, _ = await admin(deployment, "task", "list", "--json")
    listed = {t["request_id"]: t for t in json.loads(out)["tasks"]}
    assert set(listed) == {done, stuck}
    code, out, _ = await admin(deployment, "task", "list", "-s", "completed", "--json")
    assert [t["request_id"] for t in json.loads(out)["tasks"]] == [done]
    code, out, _ = await admin(
        deployment, "task", "list", "-m", "cogvideox-2", "--tenant", "t-2", "--json"
    )
    assert [t["request_id"] for t in json.loads(out)["tasks"]] == [stuck]

    await asyncio.sleep(2.5)  # the slow task's status does not change for 300 s
    code, out, _ = await admin(deployment, "task", "list", "--stuck-for", "2s", "--json")
    (row,) = json.loads(out)["tasks"]
    assert row["request_id"] == stuck and row["status"] in ("submitted", "running")
    assert row["unchanged_s"] >= 2 and row["lease_owner"].startswith("instance-0")
    code, out, _ = await admin(deployment, "task", "list", "--stuck-for", "2s")
    assert code == 0 and stuck in out and "stuck for more than 2s" in out
    code, out, _ = await admin(deployment, "task", "list", "--stuck-for", "10m", "--json")
    assert json.loads(out)["tasks"] == []


# --- task cancel -------------------------------------------------------------------------------


async def test_bulk_cancel_by_filter_goes_through_the_running_service(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing=SLOW)
    await deployment.collector.start()
    await deployment.start_instance()
    tag = uuid.uuid4().hex[:6]
    slow = [f"cog-{tag}-{n}" for n in range(3)]
    other = f"wanx-{tag}"
    for request_id in slow:
        await submit(deployment, request_id, "cogvideox-2", tenant_id="t-1")
    await submit(deployment, other, "wanx2.1-t2v-turbo", tenant_id="t-1")
    for request_id in [*slow, other]:
        await wait_status(deployment, request_id, "submitted")

    code, out, _ = await admin(deployment, "task", "cancel", "-m", "cogvideox-2", "--dry-run")
    assert code == 0 and "3 unfinished tasks match" in out and "nothing sent" in out
    code, _, err = await admin(deployment, "task", "cancel", "-m", "cogvideox-2", input="n\n")
    assert code == 1 and "aborted" in err
    await asyncio.sleep(1)
    assert all(statuses(deployment, r)[-1] in ("submitted", "running") for r in slow)

    code, out, err = await admin(
        deployment, "task", "cancel", "-m", "cogvideox-2", "--tenant", "t-1",
        "--reason", "maintenance", input="y\n",
    )  # fmt: skip
    assert code == 0, (out, err)
    assert "sent 3 cancels" in out and "after 3 cancelled" in out
    for request_id in slow:
        event = deployment.collector.events(request_id, deployment.topics.status)[-1]
        assert event["status"] == "cancelled" and "maintenance" in event["error"]["message"]
    assert statuses(deployment, other)[-1] in ("submitted", "running")  # not matched
    code, out, _ = await admin(deployment, "task", "cancel", "-m", "cogvideox-2", "--yes")
    assert code == 0 and "0 unfinished tasks match" in out
    code, out, _ = await admin(deployment, "task", "cancel", "--all", "--yes", "--json")
    body = json.loads(out)
    assert code == 0 and body["sent"] == 1 and body["final"] == {other: "cancelled"}


async def test_bulk_cancel_under_jwt_needs_an_admin_token(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing=SLOW)
    await deployment.collector.start()
    jwt_env = {"AUTH_MODE": "jwt", "AUTH_JWT_SECRET": SECRET}
    await deployment.start_instance(**jwt_env)
    tag = uuid.uuid4().hex[:6]
    mine = {f"u1-{tag}": "u-1", f"u2-{tag}": "u-2"}
    for request_id, user in mine.items():
        bearer = {"authorization": f"Bearer {token(user, tenant_id='t-1')}"}
        await submit(deployment, request_id, "viduq1-text", headers=bearer)
    for request_id in mine:
        await wait_status(deployment, request_id, "submitted")

    code, _, err = await admin(deployment, "task", "cancel", "--all", "--yes", env=jwt_env)
    assert code == 2 and "--token" in err
    user_token = token("u-1", tenant_id="t-1")
    code, _, err = await admin(
        deployment, "task", "cancel", "--all", "--yes", "--token", user_token, env=jwt_env
    )
    assert code == 2 and "scope does not hold video:admin" in err
    # The operator's environment without the key: the claims are read, the service verifies.
    code, out, err = await admin(
        deployment, "task", "cancel", "--tenant", "t-1", "--yes", "--wait-s", "20",
        env={"AUTH_MODE": "jwt", "AUTH_JWT_SECRET": "",
             "VIDEO_ADMIN_TOKEN": token(scope="video:admin")},
    )  # fmt: skip
    assert code == 0, (out, err)
    assert "after 2 cancelled" in out
    assert all(statuses(deployment, r)[-1] == "cancelled" for r in mine)


# --- dlq redrive -------------------------------------------------------------------------------


async def read_topic(topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        records: list[Any] = []
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                return records
            for found in batch.values():
                records.extend(found)
    finally:
        await consumer.stop()


async def test_redrive_dead_letters_after_a_fix(deployment: Deployment, sim: Simulator) -> None:
    await sim.configure(timing=FAST)
    await deployment.collector.start()
    jwt_env = {"AUTH_MODE": "jwt", "AUTH_JWT_SECRET": SECRET}
    await deployment.start_instance(**jwt_env)
    tag = uuid.uuid4().hex[:6]
    fixable, huge, binary = f"fix-{tag}", f"huge-{tag}", f"bin-{tag}"
    topics = deployment.topics
    # Sent without a token (the producer's had expired): `unauthorized` dead letters.
    await send(
        KAFKA,
        topics.requests,
        [request(fixable, "cogvideox-flash", marked("cogvideox-flash", fixable), user_id="u-1")],
        headers={"x-trace": "trace-1", "x-api-key": "never-copied"},
    )
    big = {"request_id": huge, "model": "cogvideox-2", "parameters": {"prompt": "x" * 300_000}}
    await send(KAFKA, topics.requests, [(huge, json.dumps(big).encode())])
    raw = b"\xff\xfe" + binary.encode() + b"\x80 not utf-8"
    await send(KAFKA, topics.requests, [(binary, raw)])
    await deployment.collector.wait_for(
        lambda: len([t for t, _ in deployment.collector.all if t == topics.dlq]) >= 3, 30
    )

    code, out, err = await admin(deployment, "dlq", "redrive", "--dry-run", env=jwt_env)
    text = words(out)
    assert code == 1, (out, err)  # the truncated one is refused
    assert "its value was truncated" in text and "only its producer has the whole request" in text
    assert "3 dead letters selected: 2 would be sent (dry run)" in text
    assert "1 refused" in text

    code, _, err = await admin(deployment, "dlq", "redrive", "--yes", env=jwt_env)
    assert code == 2 and "--token" in err  # under JWT the operator supplies the token
    operator = token("u-1")  # a token of the request's user: the service takes user from it
    code, out, err = await admin(
        deployment, "dlq", "redrive", "--request-id", f"fix-{tag}", "--code", "unauthorized",
        "--token", operator, "--yes", env=jwt_env,
    )  # fmt: skip
    assert code == 0, (out, err)
    assert "1 dead letters selected: 1 sent" in words(out)
    await wait_status(deployment, fixable, "completed")
    accepted = deployment.collector.events(fixable, topics.status)[0]
    assert accepted["status"] == "accepted" and accepted["user_id"] == "u-1"

    # Again, for every dead letter: the fixed one has a task now, the huge one is refused, the
    # binary one goes out as the same bytes (and is rejected again, with its new header).
    code, out, err = await admin(
        deployment, "dlq", "redrive", "--token", token("u-1"), "--yes", "--json", env=jwt_env
    )
    assert code == 1, err
    body = json.loads(out)
    actions = {r["request_id"]: (r["action"], r["reason"]) for r in body["records"]}
    assert actions[fixable] == ("skip", "request_id has a task now (completed)")
    assert actions[huge][0] == "refuse" and "truncated" in actions[huge][1]
    assert actions[binary][0] == "send"
    assert body["summary"]["sent"] == 1

    records = await read_topic(topics.requests)
    redriven = [r for r in records if REDRIVEN_FROM in dict(r.headers)]
    assert len(redriven) == 2
    by_key = {r.key: r for r in redriven}
    fixed = dict(by_key[fixable.encode()].headers)
    assert fixed["x-trace"] == b"trace-1" and "x-api-key" not in fixed
    assert fixed["authorization"] == f"Bearer {operator}".encode()
    assert fixed[REDRIVEN_FROM].decode().startswith(f"{topics.dlq}/")
    assert by_key[binary.encode()].value == raw
    await deployment.collector.wait_for(
        lambda: any(
            REDRIVEN_FROM in e["original"]["headers"] for t, e in deployment.collector.all
            if t == topics.dlq
        ),
        20,
    )  # fmt: skip
    again = next(
        e for t, e in deployment.collector.all
        if t == topics.dlq and REDRIVEN_FROM in e["original"]["headers"]
    )  # fmt: skip
    assert again["original"]["value_encoding"] == "base64"
    assert base64.b64decode(again["original"]["value"]) == raw


# --- retention ---------------------------------------------------------------------------------


async def test_retention_run_deletes_finished_tasks_and_old_videos_only(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing=FAST, model_timing={"cogvideox-2": SLOW})
    await deployment.collector.start()
    await deployment.start_instance()
    tag = uuid.uuid4().hex[:6]
    old, recent, active = f"old-{tag}", f"recent-{tag}", f"active-{tag}"
    await submit(deployment, old, "wanx2.1-t2v-turbo")
    await submit(deployment, recent, "cogvideox-flash")
    await submit(deployment, active, "cogvideox-2")
    await wait_status(deployment, old, "completed")
    await wait_status(deployment, recent, "completed")
    await wait_status(deployment, active, "submitted")
    await asyncio.sleep(0.5)  # the store records that the events reached Kafka

    long_ago = datetime.now(UTC) - timedelta(days=10)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO, tz_aware=True)
    tasks = client[deployment.database]["tasks"]
    try:
        old_doc = await tasks.find_one({"request_id": old})
        assert old_doc is not None and old_doc["active"] is False
        await tasks.update_one({"request_id": old}, {"$set": {"finished_at": long_ago}})
        # An active task is never deleted, even with a finished_at in the past (it has none
        # normally); nor are the files it names.
        named = "zhipuai_20261101_100000_0_aaaabbbb.mp4"
        await tasks.update_one(
            {"request_id": active},
            {"$set": {"finished_at": long_ago, "videos": [
                {"index": 0, "url": "u", "filename": named, "temp_name": ".x.0.part"}]}},
        )  # fmt: skip
        old_video = Path(old_doc["result"]["videos"][0]["local_path"])
        (recent_video,) = [p for p in deployment.video_dir.glob("*.mp4") if p != old_video]
        part = deployment.video_dir / f".{uuid.uuid4()}.0.part"
        part.write_bytes(b"partial")
        (deployment.video_dir / named).write_bytes(b"live")
        stamp = long_ago.timestamp()
        for path in (old_video, part, deployment.video_dir / named):
            os.utime(path, (stamp, stamp))

        env = {"TASK_RETENTION_DAYS": "7", "VIDEO_RETENTION_DAYS": "7"}
        code, out, _ = await admin(deployment, "retention", "run", "--dry-run", env=env)
        text = words(out)
        assert code == 0 and "1 would be deleted (dry run)" in text and old in text
        assert str(old_video) in text and "1 kept: tasks still active name them" in text
        assert await tasks.count_documents({}) == 3 and old_video.exists()

        code, out, _ = await admin(deployment, "retention", "run", "--json", env=env)
        report = json.loads(out)
        assert code == 0 and report["tasks"]["deleted"] == 1
        assert report["videos"]["files"] == [str(old_video)]
        left = sorted([d["request_id"] async for d in tasks.find({}, {"request_id": 1})])
        assert left == sorted([recent, active])
        assert not old_video.exists()
        assert recent_video.exists() and part.exists() and (deployment.video_dir / named).exists()

        # The request_id is de-duplicated only while its task is kept: sent again, it is new.
        first_task_id = old_doc["_id"]
        await submit(deployment, old, "wanx2.1-t2v-turbo")
        await deployment.collector.wait_for(
            lambda: statuses(deployment, old).count("completed") == 2, 30
        )
        again = await tasks.find_one({"request_id": old})
        assert again is not None and again["_id"] != first_task_id
    finally:
        await client.close()


async def test_the_retention_index_and_sweep_on_the_real_server(
    mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path
) -> None:
    assert await _ttl_monitor(mongo_db) is False  # mongo-java-server never expires documents
    now = datetime.now(UTC)
    old = now - timedelta(days=10)
    docs = [
        {"_id": "a", "request_id": "gone", "status": "completed", "active": False,
         "finished_at": old},
        {"_id": "b", "request_id": "recent", "status": "failed", "active": False,
         "finished_at": now},
        {"_id": "c", "request_id": "unpublished", "status": "cancelled", "active": True,
         "finished_at": old, "videos": [{"filename": "zhipuai_x.mp4"}]},
        {"_id": "d", "request_id": "running", "status": "running", "active": True,
         "finished_at": old, "videos": None},
        {"_id": "e", "request_id": "gone-too", "status": "failed", "active": False,
         "finished_at": old},
    ]  # fmt: skip
    await mongo_db["tasks"].insert_many(docs)
    store = MongoRetentionStore(mongo_db)
    assert (await store.now()).tzinfo is not None
    assert await store.active_video_names() == {"zhipuai_x.mp4"}

    settings = Settings(task_retention_days=7, video_dir=str(tmp_path))
    sweeper = RetentionSweeper(store, settings)
    assert await sweeper.ensure_index() == "sweep"
    info = (await mongo_db["tasks"].index_information())[INDEX_NAME]
    assert "expireAfterSeconds" not in info and info["partialFilterExpression"] == {"active": False}
    assert await sweeper.ensure_index() == "sweep"  # unchanged: left alone
    dry = await sweeper.run_once(dry_run=True)
    assert dry.tasks == 2 and await mongo_db["tasks"].count_documents({}) == 5
    report = await sweeper.run_once()
    assert sorted(report.request_ids) == ["gone", "gone-too"]
    left = sorted([d["_id"] async for d in mongo_db["tasks"].find({}, {"_id": 1})])
    assert left == ["b", "c", "d"]

    # Where the server has a TTL monitor: the index expires, and follows the setting.
    ttl_store = MongoRetentionStore(mongo_db, ttl=True)
    assert await ttl_store.ensure_index(7 * 86400, enabled=True) == "ttl"
    info = (await mongo_db["tasks"].index_information())[INDEX_NAME]
    assert info["expireAfterSeconds"] == 7 * 86400
    assert await ttl_store.ensure_index(3 * 86400, enabled=True) == "ttl"
    info = (await mongo_db["tasks"].index_information())[INDEX_NAME]
    assert info["expireAfterSeconds"] == 3 * 86400
    assert await ttl_store.ensure_index(None, enabled=False) == "off"
    assert INDEX_NAME not in await mongo_db["tasks"].index_information()
    assert await ttl_store.ensure_index(None, enabled=False) == "off"
    # Dropped and created afresh, never re-created with other options: the server's catalogue
    # stays sound (mongo-java-server cannot drop a database otherwise).
    await mongo_db.client.drop_database(mongo_db.name)


async def test_the_retention_loop_on_the_service_store(
    mongo_db: AsyncDatabase[dict[str, Any]], tmp_path: Path
) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    await mongo_db["tasks"].insert_one(
        {"_id": "x", "request_id": "x", "status": "completed", "active": False, "finished_at": old}
    )
    store = MongoTaskStore(mongo_db.client, mongo_db.name)
    settings = Settings(task_retention_days=1, retention_interval_s=0.2, video_dir=str(tmp_path))
    sweeper = RetentionSweeper.for_store(store, settings, first_run_after_s=0.1)
    sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while await mongo_db["tasks"].count_documents({}) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await sweeper.stop()
    assert await mongo_db["tasks"].count_documents({}) == 0
    assert INDEX_NAME in await mongo_db["tasks"].index_information()


# --- in the service (once wired into it) -------------------------------------------------------

WIRED_RETENTION = "RetentionSweeper" in (ROOT / "consumers" / "app.py").read_text()
WIRED_SPACE = "wait_for_free_space" in (ROOT / "consumers" / "engine" / "fetch.py").read_text()


@pytest.mark.skipif(not WIRED_RETENTION, reason="the retention loop is not started by the app yet")
async def test_the_service_sweeps_finished_tasks_and_keeps_active_ones(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing=FAST, model_timing={"cogvideox-2": SLOW})
    await deployment.collector.start()
    # About 2.6 s of retention, swept every second (mongo-java-server: by the sweep alone).
    await deployment.start_instance(TASK_RETENTION_DAYS="0.00003", RETENTION_INTERVAL_S="1")
    tag = uuid.uuid4().hex[:6]
    done, active = f"done-{tag}", f"active-{tag}"
    await submit(deployment, done, "wanx2.1-t2v-turbo")
    await submit(deployment, active, "cogvideox-2")
    await wait_status(deployment, done, "completed")
    await wait_status(deployment, active, "submitted")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = {t["request_id"] for t in await deployment.tasks()}
        if done not in left:
            break
        await asyncio.sleep(0.3)
    assert left == {active}
    assert next(deployment.video_dir.glob("aliyun_*.mp4")).exists()  # videos: their own setting


@pytest.mark.skipif(not WIRED_SPACE, reason="the free-space guard is not in the download step yet")
async def test_downloads_wait_for_free_space_rather_than_fail(
    deployment: Deployment, sim: Simulator
) -> None:
    await sim.configure(timing=FAST)
    await deployment.collector.start()
    full = await deployment.start_instance(VIDEO_DIR_MIN_FREE_BYTES=str(2**62))
    request_id = f"space-{uuid.uuid4().hex[:6]}"
    await submit(deployment, request_id, "wanx2.1-t2v-turbo")
    await wait_status(deployment, request_id, "downloading")
    await asyncio.sleep(3)
    assert statuses(deployment, request_id)[-1] == "downloading"
    assert not list(deployment.video_dir.glob("*.mp4"))
    assert "below VIDEO_DIR_MIN_FREE_BYTES" in full.log_tail(400)
    # Space comes back (here: an instance with a lower threshold takes the task over).
    full.kill()
    await deployment.start_instance(VIDEO_DIR_MIN_FREE_BYTES="0")
    await wait_status(deployment, request_id, "completed", timeout=40)
    assert statuses(deployment, request_id).count("completed") == 1
    assert "failed" not in statuses(deployment, request_id)
