"""The object-storage sink against a real S3-compatible server: moto's, started by the test in a
thread (it needs no Kafka or MongoDB, so it runs in the in-process tier)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from consumers.media.objects import ObjectSink, ObjectStoreError, ObjectStoreSettings
from tests.harness import free_port

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def settings(url: str, bucket: str, **changes: Any) -> ObjectStoreSettings:
    values: dict[str, Any] = {
        "bucket": bucket,
        "endpoint_url": url,
        "access_key": "test-key",
        "secret_key": "test-secret",
        "addressing": "path",
        "part_bytes": 5 * MiB,
        "retry_base_s": 0.01,
        "url_ttl_s": 600,
    }
    values.update(changes)
    return ObjectStoreSettings(**values)


@pytest.fixture
async def sink(moto_url: str) -> AsyncIterator[ObjectSink]:
    bucket = f"videos-{os.urandom(4).hex()}"
    async with ObjectSink(settings(moto_url, bucket)) as sink:
        await sink._client.create_bucket(Bucket=bucket)
        yield sink


def video(tmp_path: Path, size: int) -> tuple[Path, str]:
    path = tmp_path / f"aliyun_20261130_120000_0_{os.urandom(4).hex()}.mp4"
    data = os.urandom(size)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


async def fetch(url: str) -> bytes:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
        response.raise_for_status()
        return response.content


async def test_upload_gives_a_working_time_limited_url(sink: ObjectSink, tmp_path: Path) -> None:
    path, sha256 = video(tmp_path, 300_000)
    key = sink.key_for(path.name)
    stored = await sink.upload(path, key, sha256, path.stat().st_size)
    assert stored.object_key == key == f"videos/{path.name}"
    body = await fetch(stored.object_url)
    assert len(body) == path.stat().st_size and hashlib.sha256(body).hexdigest() == sha256
    assert stored.object_url_expires_at is not None
    expires = datetime.fromisoformat(stored.object_url_expires_at.replace("Z", "+00:00"))
    assert 590 < (expires - datetime.now(UTC)).total_seconds() <= 600
    head = await sink._client.head_object(Bucket=sink.settings.bucket, Key=key)
    assert head["Metadata"]["sha256"] == sha256 and head["ContentType"] == "video/mp4"


async def test_a_large_file_goes_multipart_part_by_part(sink: ObjectSink, tmp_path: Path) -> None:
    path, sha256 = video(tmp_path, 11 * MiB)
    key = sink.key_for(path.name)
    stored = await sink.upload(path, key, sha256, 11 * MiB)
    head = await sink._client.head_object(Bucket=sink.settings.bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 1 MiB
    assert hashlib.sha256(await fetch(stored.object_url)).hexdigest() == sha256


async def test_the_same_content_is_not_sent_twice(sink: ObjectSink, tmp_path: Path) -> None:
    path, sha256 = video(tmp_path, 1000)
    key = sink.key_for(path.name)
    await sink.upload(path, key, sha256, 1000)
    sent: list[str] = []
    original = sink._put

    async def counting(*args: Any) -> None:
        sent.append("put")
        await original(*args)

    sink._put = counting  # type: ignore[method-assign,assignment]
    again = await sink.upload(path, key, sha256, 1000)
    assert sent == [] and again.object_key == key
    other, other_sha = video(tmp_path, 1000)  # different content under the same key: sent
    await sink.upload(other, key, other_sha, 1000)
    assert sent == ["put"]


async def test_a_transient_failure_is_retried(sink: ObjectSink, tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    path, sha256 = video(tmp_path, 11 * MiB)
    original, calls = sink._client.upload_part, []

    async def flaky(**kwargs: Any) -> Any:
        calls.append(kwargs["PartNumber"])
        if len(calls) == 2:  # the second part of the first attempt
            error = {
                "Error": {"Code": "InternalError"},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            }
            raise ClientError(error, "UploadPart")
        return await original(**kwargs)

    sink._client.upload_part = flaky
    stored = await sink.upload(path, sink.key_for(path.name), sha256, 11 * MiB)
    assert calls == [1, 2, 1, 2, 3]  # the failed upload was aborted and started again
    assert hashlib.sha256(await fetch(stored.object_url)).hexdigest() == sha256
    uploads = await sink._client.list_multipart_uploads(Bucket=sink.settings.bucket)
    assert not uploads.get("Uploads")  # nothing left half-done


async def serve_errors(requests: list[str]) -> tuple[asyncio.Server, str]:
    """An S3 endpoint that knows no object (HEAD: 404) and answers every other request
    503 SlowDown."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        requests.append(head.split(b" ", 2)[0].decode())
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")), 0,
        )  # fmt: skip
        if length and b"100-continue" not in head.lower():  # else: answered before the body
            await reader.readexactly(length)
        if requests[-1] == "HEAD":
            writer.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        else:
            body = b"<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"
            writer.write(
                b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                + f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def test_an_upload_that_keeps_failing_is_retried_then_raises(tmp_path: Path) -> None:
    requests: list[str] = []
    server, url = await serve_errors(requests)
    path, sha256 = video(tmp_path, 1000)
    try:
        async with ObjectSink(settings(url, "vids", max_attempts=3, request_attempts=2)) as sink:
            with pytest.raises(ObjectStoreError) as caught:
                await sink.upload(path, "videos/a.mp4", sha256, 1000)
    finally:
        server.close()
    message = str(caught.value)
    assert "object storage bucket 'vids' at http://127.0.0.1:" in message
    assert "failed after 3 attempts: SlowDown (HTTP 503)" in message
    # Three attempts, each a HEAD (is it there already?) and a PUT that botocore retried too.
    assert requests.count("HEAD") == 3 and requests.count("PUT") >= 3 * 2
    assert requests[0] == "HEAD" and requests[1] == "PUT"


async def test_what_no_attempt_can_change_fails_at_once(moto_url: str, tmp_path: Path) -> None:
    path, sha256 = video(tmp_path, 1000)
    async with ObjectSink(settings(moto_url, "no-such-bucket", max_attempts=5)) as sink:
        with pytest.raises(ObjectStoreError, match=r"after 1 attempt: NoSuchBucket"):
            await sink.upload(path, "videos/a.mp4", sha256, 1000)
        with pytest.raises(ObjectStoreError, match="has 1000 bytes, not the 999 checked"):
            await sink.upload(path, "videos/a.mp4", sha256, 999)
        assert not await sink.ping()


async def test_a_public_url_does_not_expire(moto_url: str, tmp_path: Path) -> None:
    bucket = f"public-{os.urandom(4).hex()}"
    public = f"{moto_url}/{bucket}"
    async with ObjectSink(settings(moto_url, bucket, public_url=public + "/")) as sink:
        await sink._client.create_bucket(Bucket=bucket)
        assert await sink.ping()
        path, sha256 = video(tmp_path, 1000)
        stored = await sink.upload(path, "videos/p.mp4", sha256, 1000)
    assert stored.object_url == f"{public}/videos/p.mp4"
    assert stored.object_url_expires_at is None


def test_settings_from_the_environment(tmp_path: Path) -> None:
    assert ObjectStoreSettings.from_env({}, dotenv=None) is None
    env = {
        "OBJECT_STORE_URL": "https://oss-cn-beijing.aliyuncs.com",
        "OBJECT_STORE_BUCKET": "videos",
        "OBJECT_STORE_ACCESS_KEY": "ak",
        "OBJECT_STORE_SECRET_KEY": "sk",
        "OBJECT_STORE_REGION": "oss-cn-beijing",
        "OBJECT_STORE_ADDRESSING": "virtual",
        "OBJECT_STORE_URL_TTL_S": "3600",
        "DELETE_LOCAL_AFTER_UPLOAD": "true",
    }
    s = ObjectStoreSettings.from_env(env, dotenv=None)
    assert s is not None
    assert (s.endpoint_url, s.bucket, s.region, s.addressing, s.url_ttl_s) == (
        "https://oss-cn-beijing.aliyuncs.com", "videos", "oss-cn-beijing", "virtual", 3600,
    )  # fmt: skip
    assert s.delete_local_after_upload and s.prefix == "videos/"
    assert "sk" not in repr(s) and "ak" not in repr(s)
    assert not ObjectStoreSettings.from_env(
        {"OBJECT_STORE_BUCKET": "b"}, dotenv=None
    ).delete_local_after_upload  # type: ignore[union-attr]
    dotenv = tmp_path / ".env"
    dotenv.write_text("OBJECT_STORE_BUCKET=from-dotenv\n")
    from_file = ObjectStoreSettings.from_env({}, dotenv=dotenv)
    assert from_file is not None and from_file.bucket == "from-dotenv"
    bad_values = [
        {"OBJECT_STORE_URL_TTL_S": "0"},
        {"OBJECT_STORE_PART_BYTES": "1024"},
        {"OBJECT_STORE_ADDRESSING": "sideways"},
        {"OBJECT_STORE_ACCESS_KEY": "only"},
    ]
    for bad in bad_values:
        with pytest.raises(ValueError):
            ObjectStoreSettings.from_env({"OBJECT_STORE_BUCKET": "b", **bad}, dotenv=None)


async def test_without_aiobotocore_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "aiobotocore.session", None)
    sink = ObjectSink(ObjectStoreSettings(bucket="b"))
    with pytest.raises(ObjectStoreError, match=r"video-service\[s3\]"):
        await sink.start()
