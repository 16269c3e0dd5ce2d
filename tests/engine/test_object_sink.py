"""Videos other hosts can fetch: the engine uploads each checked video to an S3-compatible store
(moto's server, started by the test) and the completed event says where it is."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from consumers.media.objects import ObjectSink
from tests.engine.harness import World, request
from tests.unit.test_objects import moto_url, settings

__all__ = ["moto_url"]  # the module-scoped moto server fixture


@pytest.fixture
async def bucket(moto_url: str) -> AsyncIterator[str]:
    name = f"videos-{os.urandom(4).hex()}"
    async with ObjectSink(settings(moto_url, name)) as admin:
        await admin._client.create_bucket(Bucket=name)
    yield name


async def sink(moto_url: str, bucket: str, **changes: Any) -> ObjectSink:
    objects = ObjectSink(settings(moto_url, bucket, **changes))
    await objects.start()
    return objects


async def test_the_completed_event_points_at_the_uploaded_video(
    world: World, moto_url: str, bucket: str
) -> None:
    objects = await sink(moto_url, bucket)
    engine = world.start_engine(objects=objects)
    await engine.start()
    body = request()
    await world.send(body)
    assert await world.finished(body["request_id"]) == "completed"
    (completed,) = world.kafka.events(body["request_id"], "video.completed")
    video = completed["result"]["videos"][0]
    assert video["object_key"] == f"videos/{video['filename']}"
    assert video["object_url_expires_at"]
    async with httpx.AsyncClient() as client:
        fetched = (await client.get(video["object_url"])).content
    assert len(fetched) == video["size_bytes"]
    assert hashlib.sha256(fetched).hexdigest() == video["sha256"]
    assert Path(video["local_path"]).exists(), "the local copy stays unless asked otherwise"
    await objects.close()


async def test_the_local_copy_goes_only_when_asked(
    world: World, moto_url: str, bucket: str
) -> None:
    objects = await sink(moto_url, bucket, delete_local_after_upload=True)
    engine = world.start_engine(objects=objects)
    await engine.start()
    body = request()
    await world.send(body)
    assert await world.finished(body["request_id"]) == "completed"
    (completed,) = world.kafka.events(body["request_id"], "video.completed")
    local = Path(completed["result"]["videos"][0]["local_path"])
    # Removed once the task is recorded complete (just after its events go out).
    await world.until(lambda: not local.exists(), timeout=2, what="the local copy removed")
    await objects.close()


async def test_an_upload_that_fails_ends_the_task_naming_the_storage(
    world: World, moto_url: str
) -> None:
    objects = await sink(moto_url, "no-such-bucket", max_attempts=2)
    engine = world.start_engine(objects=objects)
    await engine.start()
    body = request()
    await world.send(body)
    assert await world.finished(body["request_id"], timeout=20) == "failed"
    error = world.kafka.events(body["request_id"])[-1]["error"]
    assert error["code"] == "download_failed" and "no-such-bucket" in error["message"]
    assert not list((world.tmp_path / "videos").glob("*.mp4")), "a failed task keeps no file"
    await objects.close()
