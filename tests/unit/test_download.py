"""Downloading videos: httpx.MockTransport serves the bytes; a real socket server covers what a
mock transport cannot fake (a body cut short on the wire).

Result hosts (subdomains of an allowed entry) are resolved and fetched at a checked public
address: here a stand-in resolver gives PUBLIC, so requests reach the mock transport with that
IP in the URL and the host name in the `Host` header (tests/unit/test_download_safety.py covers
the address rules themselves)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from consumers.media.download import (
    DownloadError,
    VideoFile,
    download_video,
    existing_video,
    remove_file,
)
from consumers.media.hosts import host_allowed
from providers.transport import aiohttp_transport

ROOT = Path(__file__).resolve().parents[2]
DATA = (ROOT / "simulator" / "media" / "landscape_720p_5s.mp4").read_bytes()
URL = "https://bucket.oss-cn-beijing.aliyuncs.com/out/v.mp4?Expires=1&Signature=s3cret"
ALLOWED = ["aliyuncs.com", "bigmodel.cn"]
FINAL = "aliyun_20261127_200858_0_a1b2c3d4.mp4"
TEMP = ".task-1.0.part"
PUBLIC = "47.95.0.10"  # an Alibaba Cloud address: what the stand-in resolver answers


async def resolve_public(host: str, port: int) -> list[str]:
    return [PUBLIC]


Handler = Callable[[httpx.Request], Any]


def serving(handler: Handler, seen: list[httpx.Request] | None = None) -> httpx.AsyncClient:
    async def record(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        response = handler(request)
        return await response if asyncio.iscoroutine(response) else response

    return httpx.AsyncClient(transport=httpx.MockTransport(record))


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "video/mp4"}, content=DATA)


async def fetch(
    client: httpx.AsyncClient, video_dir: Path, url: str = URL, **kwargs: Any
) -> VideoFile:
    options: dict[str, Any] = {
        "max_bytes": 10 * len(DATA),
        "allowed_hosts": ALLOWED,
        "resolve": resolve_public,
    }
    options.update(kwargs)
    return await download_video(
        client, url, video_dir=video_dir, filename=FINAL, temp_name=TEMP, **options
    )


async def fails(client: httpx.AsyncClient, video_dir: Path, **kwargs: Any) -> DownloadError:
    with pytest.raises(DownloadError) as caught:
        await fetch(client, video_dir, **kwargs)
    assert not (video_dir / FINAL).exists()
    assert not (video_dir / TEMP).exists()
    assert "s3cret" not in caught.value.message  # signed URLs stay out of messages
    return caught.value


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


# --- success ----------------------------------------------------------------------------------


async def test_download_saves_a_checked_file_under_its_final_name(tmp_path: Path) -> None:
    video_dir = tmp_path / "data" / "videos"  # created when missing
    seen: list[httpx.Request] = []
    async with serving(ok, seen) as client:
        video = await fetch(client, video_dir)
    final = video_dir / FINAL
    assert video == VideoFile(
        local_path=str(final),
        filename=FINAL,
        size_bytes=len(DATA),
        sha256=hashlib.sha256(DATA).hexdigest(),
        content_type="video/mp4",
        duration=5.0,
        width=1280,
        height=720,
    )
    assert Path(video.local_path).is_absolute()
    assert final.read_bytes() == DATA
    assert names(video_dir) == [FINAL]  # temp file gone
    assert seen[0].headers["accept-encoding"] == "identity"
    assert seen[0].url.host == PUBLIC  # the checked address, not a second resolution
    assert seen[0].headers["host"] == "bucket.oss-cn-beijing.aliyuncs.com"
    assert seen[0].extensions["sni_hostname"] == "bucket.oss-cn-beijing.aliyuncs.com"


async def test_streamed_body_without_content_length(tmp_path: Path) -> None:
    def streamed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks(DATA[:10], DATA[10:70_000], DATA[70_000:]))

    async with serving(streamed) as client:
        video = await fetch(client, tmp_path)
    assert video.sha256 == hashlib.sha256(DATA).hexdigest()
    assert (tmp_path / FINAL).read_bytes() == DATA


async def test_a_stale_temp_file_from_a_crashed_attempt_is_replaced(tmp_path: Path) -> None:
    (tmp_path / TEMP).write_bytes(b"half of an earlier attempt" * 1000)
    async with serving(ok) as client:
        await fetch(client, tmp_path)
    assert (tmp_path / FINAL).read_bytes() == DATA
    assert not (tmp_path / TEMP).exists()


async def test_redirect_within_allowed_hosts_is_followed(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == "open.bigmodel.cn":
            return httpx.Response(302, headers={"location": "https://cdn.bigmodel.cn/v.mp4"})
        return ok(request)

    async with serving(handler) as client:
        video = await fetch(client, tmp_path, url="https://open.bigmodel.cn/r/1")
    assert video.size_bytes == len(DATA)


# --- refused before or while downloading -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v.mp4",
        "http://aliyuncs.com@evil.example/v.mp4",
        "https://aliyuncs.com.evil.example/v.mp4",
        "https://evilaliyuncs.com/v.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
    ],
)
async def test_host_not_allowed_makes_no_request(tmp_path: Path, url: str) -> None:
    seen: list[httpx.Request] = []
    async with serving(ok, seen) as client:
        error = await fails(client, tmp_path / "videos", url=url)
    assert seen == []
    assert not error.transient and not error.expired
    assert "DOWNLOAD_ALLOWED_HOSTS" in error.message
    assert not (tmp_path / "videos").exists()


async def test_redirect_to_a_host_not_allowed_is_not_followed(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "http://127.0.0.1:2375/containers"})

    async with serving(handler, seen) as client:
        error = await fails(client, tmp_path)
    assert [r.headers["host"] for r in seen] == ["bucket.oss-cn-beijing.aliyuncs.com"]
    assert not error.transient
    assert "127.0.0.1" in error.message


async def test_too_many_redirects(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": URL})

    async with serving(handler) as client:
        error = await fails(client, tmp_path)
    assert "redirects" in error.message and not error.transient


async def test_too_large_by_content_length_reads_no_body(tmp_path: Path) -> None:
    body_read = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal body_read
        body_read = True
        yield DATA

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": str(len(DATA))}, content=body())

    async with serving(handler) as client:
        error = await fails(client, tmp_path, max_bytes=len(DATA) - 1)
    assert not error.transient and not error.expired
    assert "MAX_VIDEO_BYTES" in error.message
    assert not body_read


async def test_too_large_while_streaming_stops_an_endless_body(tmp_path: Path) -> None:
    async def endless() -> AsyncIterator[bytes]:
        yield DATA[:65536]
        while True:
            yield bytes(65536)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())  # no Content-Length

    async with serving(handler) as client:
        error = await fails(client, tmp_path, max_bytes=1_000_000)
    assert not error.transient and "MAX_VIDEO_BYTES" in error.message


async def test_exactly_max_bytes_is_accepted(tmp_path: Path) -> None:
    async with serving(ok) as client:
        video = await fetch(client, tmp_path, max_bytes=len(DATA))
    assert video.size_bytes == len(DATA)


async def test_truncated_body_is_transient(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-length": str(len(DATA) + 1000)}, content=DATA)

    async with serving(handler) as client:
        error = await fails(client, tmp_path)
    assert error.transient and not error.expired
    assert "Content-Length" in error.message


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
@pytest.mark.parametrize("sent", [len(DATA), len(DATA) // 2, 0])
async def test_real_http_server(tmp_path: Path, sent: int, transport: str) -> None:
    # Announces the whole file, sends `sent` bytes of it, closes: httpx sees the short body.
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {len(DATA)}\r\n\r\n"
        writer.write(head.encode() + DATA[:sent])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/v.mp4"
    chosen = aiohttp_transport(httpx.Limits()) if transport == "aiohttp" else None
    async with server, httpx.AsyncClient(trust_env=False, transport=chosen) as client:
        if sent == len(DATA):
            video = await fetch(client, tmp_path, url=url, allowed_hosts=["127.0.0.1"])
            assert video.sha256 == hashlib.sha256(DATA).hexdigest()
            return
        error = await fails(client, tmp_path, url=url, allowed_hosts=["127.0.0.1"])
    assert error.transient and not error.expired


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_gone_link_is_expired(tmp_path: Path, status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="<Error><Code>AccessDenied</Code></Error>")

    async with serving(handler) as client:
        error = await fails(client, tmp_path)
    assert error.expired and not error.transient
    assert str(status) in error.message


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 408])
async def test_server_trouble_is_transient(tmp_path: Path, status: int) -> None:
    async with serving(lambda request: httpx.Response(status)) as client:
        error = await fails(client, tmp_path)
    assert error.transient and not error.expired


@pytest.mark.parametrize("status", [400, 401, 206, 204])
async def test_other_statuses_are_final(tmp_path: Path, status: int) -> None:
    async with serving(lambda request: httpx.Response(status)) as client:
        error = await fails(client, tmp_path)
    assert not error.transient and not error.expired


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout(""),
        httpx.RemoteProtocolError("peer closed connection"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_network_errors_are_transient(tmp_path: Path, exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    async with serving(handler) as client:
        error = await fails(client, tmp_path)
    assert error.transient and not error.expired
    assert isinstance(error.__cause__, httpx.TransportError)


@pytest.mark.parametrize(
    "body",
    [b"<!DOCTYPE html><html><body>Service busy</body></html>", b"", b"\0\0\0\x18fty"],
    ids=["html", "empty", "short"],
)
async def test_not_an_mp4_is_final(tmp_path: Path, body: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/html"}, content=body)

    async with serving(handler) as client:
        error = await fails(client, tmp_path)
    assert not error.transient and not error.expired
    assert "not an MP4" in error.message


@pytest.mark.parametrize(
    "body",
    [
        DATA[:32] + bytes(68),  # the signature and nothing else: 100 bytes, no moov
        DATA[:32] + DATA[DATA.index(b"mdat") - 4 :],  # ftyp and the samples, moov cut out
    ],
    ids=["signature-only", "no-moov"],
)
async def test_an_mp4_without_a_video_is_final(tmp_path: Path, body: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "video/mp4"}, content=body)

    async with serving(handler) as client:
        error = await fails(client, tmp_path)
    assert not error.transient and not error.expired
    assert "not a playable MP4 video" in error.message and "moov" in error.message
    assert names(tmp_path) == []


async def test_an_existing_file_without_a_video_is_ignored(tmp_path: Path) -> None:
    (tmp_path / FINAL).write_bytes(DATA[:32] + bytes(68))
    assert await existing_video(tmp_path, FINAL) is None


async def test_cancelled_download_leaves_no_temp_file(tmp_path: Path) -> None:
    started = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield DATA[:65536]
        started.set()
        await asyncio.sleep(3600)
        yield DATA[65536:]

    async with serving(lambda request: httpx.Response(200, content=stalls())) as client:
        task = asyncio.create_task(fetch(client, tmp_path))
        await asyncio.wait_for(started.wait(), 5)
        await asyncio.sleep(0.05)
        assert (tmp_path / TEMP).exists()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert names(tmp_path) == []


async def test_temp_file_taken_over_by_another_download(tmp_path: Path) -> None:
    # Another instance (that took the task over) recreates the same temp name mid-download:
    # ours must neither rename its file nor delete it.
    async def body() -> AsyncIterator[bytes]:
        yield DATA[:65536]
        (tmp_path / TEMP).unlink()
        (tmp_path / TEMP).write_bytes(b"the other download")
        yield DATA[65536:]

    async with serving(lambda request: httpx.Response(200, content=body())) as client:
        with pytest.raises(DownloadError) as caught:
            await fetch(client, tmp_path)
    assert caught.value.transient
    assert not (tmp_path / FINAL).exists()
    assert (tmp_path / TEMP).read_bytes() == b"the other download"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b.mp4", "../x.mp4"])
async def test_names_must_be_plain(tmp_path: Path, name: str) -> None:
    async with serving(ok) as client:
        with pytest.raises(ValueError):
            await download_video(
                client,
                URL,
                video_dir=tmp_path,
                filename=name,
                temp_name=TEMP,
                max_bytes=len(DATA),
                allowed_hosts=ALLOWED,
            )


# --- after a crash ------------------------------------------------------------------------------


async def test_existing_video_after_a_crash(tmp_path: Path) -> None:
    assert await existing_video(tmp_path, FINAL) is None
    async with serving(ok) as client:
        downloaded = await fetch(client, tmp_path)
    assert await existing_video(tmp_path, FINAL) == downloaded


async def test_existing_file_that_is_not_an_mp4_is_ignored(tmp_path: Path) -> None:
    (tmp_path / FINAL).write_bytes(b"<html>")
    assert await existing_video(tmp_path, FINAL) is None


def test_remove_file(tmp_path: Path) -> None:
    (tmp_path / TEMP).write_bytes(b"partial")
    remove_file(tmp_path, TEMP)
    assert not (tmp_path / TEMP).exists()
    remove_file(tmp_path, TEMP)  # already gone: fine
    remove_file(tmp_path / "missing-dir", TEMP)


# --- host_allowed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://aliyuncs.com/v.mp4", True),
        ("https://dashscope-result.oss-cn-beijing.aliyuncs.com/v.mp4?x=1", True),
        ("https://A.OSS.ALIYUNCS.COM./v.mp4", True),  # case and trailing dot
        ("http://a.oss.aliyuncs.com/v.mp4", False),  # a subdomain: https only
        ("https://cdn.bigmodel.cn:8443/v.mp4", False),  # a subdomain: the default port only
        ("https://cdn.bigmodel.cn:443/v.mp4", True),
        ("https://bigmodel.cn/v.mp4", False),  # ".bigmodel.cn": subdomains only
        ("http://aliyuncs.com:8080/v.mp4", True),  # listed exactly: any scheme and port
        ("https://oss-cn-beijing-internal.aliyuncs.com/v.mp4", False),
        ("https://b.oss-cn-beijing-internal.aliyuncs.com/v.mp4", False),
        ("https://evilaliyuncs.com/v.mp4", False),
        ("https://aliyuncs.com.evil.com/v.mp4", False),
        ("http://aliyuncs.com@evil.com/", False),  # userinfo trick: the host is evil.com
        ("http://user:pw@x.aliyuncs.com/", False),  # no credentials in video URLs at all
        ("http://evil.com\\@aliyuncs.com/", False),
        ("ftp://x.aliyuncs.com/v.mp4", False),
        ("//x.aliyuncs.com/v.mp4", False),
        ("not a url", False),
        ("http:///v.mp4", False),
        ("http://127.0.0.1:8000/v.mp4", True),
        ("http://10.127.0.0.1/v.mp4", False),  # a domain suffix must not match inside an IP
        ("http://127.0.0.2/v.mp4", False),
        ("http://localhost:8000/v.mp4", True),
        ("http://evil.localhost/v.mp4", False),  # resolves to loopback on many systems
        ("http://[::1]:8000/v.mp4", True),
    ],
)
def test_host_allowed(url: str, allowed: bool) -> None:
    suffixes = ["aliyuncs.com", ".bigmodel.cn", "127.0.0.1", "localhost", "[::1]", " "]
    assert host_allowed(url, suffixes) is allowed


def test_no_allowed_hosts_allows_nothing() -> None:
    assert not host_allowed(URL, [])
