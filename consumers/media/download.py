"""Saving a finished video from the vendor into VIDEO_DIR.

The body is streamed to a temporary name in constant memory, hashed as it arrives, checked (size
limit, Content-Length, MP4 signature, then a video: `consumers.media.mp4.check_video`) and
renamed to its final name only when whole and synced: a file under its final name is always
complete (contract, "Completed event"). Only the fsync, the probe and the rename leave the
event loop; 64 KiB writes and hash updates stay on it.

Where from: each URL, the first and every redirect hop, passes `consumers.media.hosts` (the
DOWNLOAD_ALLOWED_HOSTS rules) before a byte is sent. A host trusted as listed exactly is fetched
as given. A checked host (a subdomain of an entry: https, port 443, public addresses only) is
resolved here with the event loop's getaddrinfo, every address is checked, and the request goes
to a checked address itself: the URL's host is replaced by that IP, while the `Host` header and
the TLS server name (httpx's `sni_hostname` extension) keep the real name, so the certificate is
still verified for the name. No second resolution happens between the check and the connection,
so DNS rebinding cannot switch the address. Such requests carry `Connection: close`, so a
connection verified for one name is never reused for another name on the same address. The
addresses are tried in order until one connects. Caveat: when the process has an HTTP proxy
configured (HTTPS_PROXY), the proxy connects on our behalf; it is asked for the checked IP too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from consumers.media.hosts import (
    HostRefused,
    ResolveFailed,
    Resolver,
    Target,
    public_addresses,
    system_resolve,
    target,
)
from consumers.media.hosts import where as _where
from consumers.media.mp4 import Mp4Info, NotAVideoError, NotMp4Error, check_video, is_mp4_signature

CONTENT_TYPE = "video/mp4"
CHUNK_BYTES = 64 * 1024
MAX_REDIRECTS = 5
_EXPIRED_STATUSES = frozenset({403, 404, 410})  # how object stores answer an expired signed URL
_TRANSIENT_STATUSES = frozenset({408, 425, 429})  # and every 5xx


class DownloadError(Exception):
    """A download that did not give a checked video.

    `transient`: the same URL may work later (5xx, 429, timeouts, connection errors, a truncated
    body, a local write error). `expired`: the URL is gone (403/404/410), retrying cannot help.
    Neither: the answer itself is unacceptable (host, scheme, port or address not allowed, too
    large, not a video).
    """

    def __init__(self, message: str, *, transient: bool = False, expired: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.expired = expired


@dataclass(frozen=True)
class VideoFile:
    """The contract's `videos[]` fields that come from the file (the caller adds index, url and
    cover_image_url)."""

    local_path: str  # absolute
    filename: str
    size_bytes: int
    sha256: str  # hex
    content_type: str
    duration: float | None
    width: int | None
    height: int | None


async def download_video(
    client: httpx.AsyncClient,
    url: str,
    *,
    video_dir: Path,
    filename: str,
    temp_name: str,
    max_bytes: int,
    allowed_hosts: Sequence[str],
    timeout: float = 60.0,  # noqa: ASYNC109 - httpx's per-wait timeout, not a deadline
    resolve: Resolver = system_resolve,
) -> VideoFile:
    """Download `url` to `video_dir/filename` through `video_dir/temp_name`.

    `timeout` bounds connecting and each wait for data, not the whole transfer: the task's own
    deadline bounds that (by cancelling this coroutine, which removes the temporary file).
    Redirects are followed here, each hop checked against `allowed_hosts` (see the module
    docstring); `resolve` finds a checked host's addresses. Raises DownloadError; ValueError for
    a file name that is not a plain name (a caller bug).
    """
    _check_name(filename)
    _check_name(temp_name)
    if filename == temp_name:
        raise ValueError("filename and temp_name must differ")
    try:
        first = target(url, allowed_hosts)
    except HostRefused as exc:
        raise DownloadError(exc.message) from None
    final = video_dir / filename
    part = _Part(video_dir / temp_name)
    try:
        # A stat on the event loop, like the chunk writes: cheaper than a worker thread.
        if not video_dir.is_dir():  # noqa: ASYNC240
            await asyncio.to_thread(video_dir.mkdir, parents=True, exist_ok=True)
        await _fetch(client, first, part, max_bytes, allowed_hosts, timeout, resolve)
        part.finishing = True
        info = await asyncio.to_thread(part.finish, final)
    except BaseException as exc:
        if not part.finishing:  # once finishing, the worker thread cleans up after itself
            part.discard()
        if isinstance(exc, NotAVideoError | NotMp4Error):
            raise DownloadError(
                f"the download from {_where(url)} is not a playable MP4 video: {exc}"
            ) from exc
        if isinstance(exc, DownloadError) or not isinstance(
            exc, httpx.HTTPError | httpx.InvalidURL | OSError
        ):
            raise
        raise _classify(exc, url, part.path) from exc
    return _video_file(final, part.size, part.sha.hexdigest(), info)


async def existing_video(video_dir: Path, filename: str) -> VideoFile | None:
    """The video already saved under its final name (a crash after the rename but before the task
    recorded completion), re-hashed and probed; None when absent or not an MP4."""
    _check_name(filename)
    path = video_dir / filename
    # The usual case, answered by a stat on the event loop rather than in a worker thread.
    if not os.path.exists(path):  # noqa: ASYNC240
        return None
    return await asyncio.to_thread(_inspect, path)


def remove_file(video_dir: Path, name: str) -> None:
    """Remove a download's file, temporary or final, if any (its task ended without a video)."""
    _check_name(name)
    with suppress(OSError):
        (video_dir / name).unlink()


async def _fetch(
    client: httpx.AsyncClient,
    hop: Target,
    part: _Part,
    max_bytes: int,
    allowed_hosts: Sequence[str],
    http_timeout: float,
    resolve: Resolver,
) -> None:
    for _ in range(MAX_REDIRECTS + 1):
        # Redirects are never left to the client: a redirect to an internal host is the same
        # SSRF as a direct link to it.
        async with _get(client, hop, http_timeout, resolve) as response:
            if response.is_redirect:
                location = hop.url.join(response.headers["location"])
                try:
                    hop = target(location, allowed_hosts)
                except HostRefused as exc:
                    raise DownloadError(
                        f"redirected to {_where(location)}: {exc.message}"
                    ) from None
                continue
            if response.status_code != 200:
                raise _status_error(response, hop.url)
            await _receive(response, part, max_bytes, hop.url)
            return
    raise DownloadError(f"more than {MAX_REDIRECTS} redirects from {_where(hop.url)}")


@asynccontextmanager
async def _get(
    client: httpx.AsyncClient, hop: Target, http_timeout: float, resolve: Resolver
) -> AsyncIterator[httpx.Response]:
    """GET one hop, streamed: as given, or (checked hosts) at a checked address of its host."""
    headers = {"Accept-Encoding": "identity"}
    if not hop.checked:
        requests = [client.build_request("GET", hop.url, headers=headers, timeout=http_timeout)]
    else:
        headers |= {"Host": hop.host, "Connection": "close"}
        requests = [
            client.build_request(
                "GET",
                hop.url.copy_with(host=address),
                headers=headers,
                timeout=http_timeout,
                extensions={"sni_hostname": hop.host},
            )
            for address in await _addresses(hop, resolve, http_timeout)
        ]
    for i, request in enumerate(requests):
        try:
            response = await client.send(request, stream=True, follow_redirects=False)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            if i == len(requests) - 1:
                raise
            continue  # the next checked address
        try:
            yield response
        finally:
            await response.aclose()
        return


async def _addresses(hop: Target, resolve: Resolver, http_timeout: float) -> list[str]:
    try:
        async with asyncio.timeout(http_timeout):
            return await public_addresses(hop.host, 443, resolve)
    except HostRefused as exc:
        raise DownloadError(f"{_where(hop.url)}: {exc.message}") from None
    except (ResolveFailed, TimeoutError) as exc:
        detail = str(exc) or f"{hop.host} did not resolve within {http_timeout} s"
        raise DownloadError(
            f"cannot download from {_where(hop.url)}: {detail}", transient=True
        ) from None


async def _receive(response: httpx.Response, part: _Part, max_bytes: int, url: httpx.URL) -> None:
    declared = _content_length(response)
    if declared is not None and declared > max_bytes:
        raise DownloadError(f"the video is {declared} bytes, over MAX_VIDEO_BYTES ({max_bytes})")
    part.open()
    head = b""
    async for chunk in response.aiter_bytes(CHUNK_BYTES):
        if part.size + len(chunk) > max_bytes:
            raise DownloadError(f"the video is over MAX_VIDEO_BYTES ({max_bytes} bytes)")
        if len(head) < 8:  # give up at once on an error page served with 200
            head = (head + chunk)[:8]
            if len(head) == 8 and not is_mp4_signature(head):
                raise _not_mp4(response, url)
        part.write(chunk)
        # A fast link can keep the socket buffer full so reads never wait: let the other
        # downloads and consumers run between chunks anyway.
        await asyncio.sleep(0)
    # httpx normally raises on a short body itself; this also covers transports that do not.
    # Content-Length counts the bytes on the wire, which differ only when the server encoded
    # the body although we asked for identity.
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    received = response.num_bytes_downloaded if encoded else part.size
    if declared is not None and received != declared:
        raise DownloadError(
            f"the download from {_where(url)} is incomplete: "
            f"{received} bytes received, {declared} announced by Content-Length",
            transient=True,
        )
    if not is_mp4_signature(head):
        raise _not_mp4(response, url)


class _Part:
    """The temporary file of one download attempt."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: BinaryIO | None = None
        self.ino: int | None = None
        self.sha = hashlib.sha256()
        self.size = 0
        self.finishing = False

    def open(self) -> None:
        # A fresh inode per attempt, not a truncation: should a stalled earlier attempt (another
        # instance that lost the task) still be writing, it keeps its own unlinked file and
        # fails the ownership check in `finish` instead of mixing bytes into ours.
        with suppress(FileNotFoundError):
            self.path.unlink()
        self.file = open(self.path, "x+b")  # closed in finish or discard
        self.ino = os.fstat(self.file.fileno()).st_ino

    def write(self, chunk: bytes) -> None:
        assert self.file is not None
        self.file.write(chunk)
        self.sha.update(chunk)
        self.size += len(chunk)

    def finish(self, final: Path) -> Mp4Info:
        """Sync, probe and rename (in a worker thread)."""
        assert self.file is not None
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            info = check_video(self.file)
            self.file.close()
            if not self._ours():
                raise DownloadError(
                    f"{self.path.name} was replaced by another download", transient=True
                )
            os.replace(self.path, final)
        except BaseException:
            self.discard()
            raise
        _fsync_dir(final.parent)
        return info

    def discard(self) -> None:
        """Close and remove the temporary file: ours, or a stale one when we never made ours."""
        if self.file is not None:
            self.file.close()
        with suppress(OSError):
            if self.ino is None or self._ours():
                self.path.unlink()

    def _ours(self) -> bool:
        try:
            return self.path.stat().st_ino == self.ino
        except FileNotFoundError:
            return False


def _inspect(path: Path) -> VideoFile | None:
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    with f:
        try:
            info = check_video(f)
        except (NotMp4Error, NotAVideoError):
            return None
        f.seek(0)
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        size = os.fstat(f.fileno()).st_size
    return _video_file(path, size, digest, info)


def _video_file(path: Path, size: int, digest: str, info: Mp4Info) -> VideoFile:
    return VideoFile(
        local_path=os.path.abspath(path),
        filename=path.name,
        size_bytes=size,
        sha256=digest,
        content_type=CONTENT_TYPE,
        duration=info.duration,
        width=info.width,
        height=info.height,
    )


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable. Best effort: some filesystems refuse fsync on a directory.
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _status_error(response: httpx.Response, url: httpx.URL) -> DownloadError:
    code = response.status_code
    where = _where(url)
    if code in _EXPIRED_STATUSES:
        return DownloadError(
            f"the video link has expired or is gone: HTTP {code} from {where}", expired=True
        )
    if code >= 500 or code in _TRANSIENT_STATUSES:
        return DownloadError(f"HTTP {code} from {where}", transient=True)
    return DownloadError(f"unexpected HTTP {code} from {where}")


def _not_mp4(response: httpx.Response, url: httpx.URL) -> DownloadError:
    kind = response.headers.get("content-type", "no content type")
    return DownloadError(f"the download from {_where(url)} is not an MP4 file ({kind})")


def _classify(exc: BaseException, url: str, temp: Path) -> DownloadError:
    if isinstance(exc, OSError):  # disk full and the like: may pass
        return DownloadError(f"cannot write {temp}: {exc.strerror or exc}", transient=True)
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return DownloadError(f"timed out downloading from {_where(url)} ({detail})", transient=True)
    if isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol):
        # Connection refused or reset, or the body cut short ("peer closed connection ...").
        return DownloadError(f"downloading from {_where(url)} failed: {detail}", transient=True)
    return DownloadError(f"downloading from {_where(url)} failed: {detail}")


def _content_length(response: httpx.Response) -> int | None:
    try:
        value = int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None
    return value if value >= 0 else None


def _check_name(name: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"not a plain file name: {name!r}")
