"""The optional object-storage sink: checked videos uploaded to S3-compatible storage (AWS S3,
Alibaba Cloud OSS, MinIO), so that consumers on other hosts can fetch them.

Configured by environment (a `.env` file is read too); it is on when `OBJECT_STORE_BUCKET` is
set:

- `OBJECT_STORE_BUCKET` (unset: no upload): the bucket.
- `OBJECT_STORE_URL` (default: AWS S3 of the region): the endpoint, e.g.
  `https://oss-cn-beijing.aliyuncs.com` or `http://minio:9000`.
- `OBJECT_STORE_ACCESS_KEY`, `OBJECT_STORE_SECRET_KEY` (unset: the AWS default chain).
- `OBJECT_STORE_REGION` (`us-east-1`): the signing region (OSS: e.g. `oss-cn-beijing`).
- `OBJECT_STORE_ADDRESSING` (`auto`): `path` (MinIO), `virtual` (OSS requires it) or `auto`.
- `OBJECT_STORE_PREFIX` (`videos/`): the key is the prefix and the video's file name.
- `OBJECT_STORE_URL_TTL_S` (`86400`): lifetime of the presigned GET URL (1 s to 7 days).
- `OBJECT_STORE_PUBLIC_URL` (unset): base URL of a public bucket or CDN; `object_url` is then it
  plus the key, and does not expire.
- `OBJECT_STORE_PART_BYTES` (`16777216`, at least 5 MiB): larger files go multipart in parts of
  this size.
- `OBJECT_STORE_MAX_ATTEMPTS` (`4`): attempts of a whole upload (botocore also retries each
  request).
- `DELETE_LOCAL_AFTER_UPLOAD` (`false`): remove the local file once uploaded.

The client library is aiobotocore, an optional dependency: `pip install 'video-service[s3]'`.

An upload streams the file: one part (`OBJECT_STORE_PART_BYTES`) in memory at most, each part
sent with its Content-MD5 so the store checks it, the file's sha256 kept as object metadata
(`x-amz-meta-sha256`), and the stored object's size and sha256 checked afterwards. An object
already under the key with the same size and sha256 is not sent again (a retried task). A
failed attempt is retried with backoff (a failed multipart upload is aborted first); after the
last one `ObjectStoreError` names the storage and the cause.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from schemas.events import utc_timestamp

log = logging.getLogger("video.objects")

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_URL_TTL_S = 7 * 24 * 3600  # SigV4 presigned URLs live at most 7 days
_TRUE = {"1", "true", "yes", "on"}

# S3 error codes worth another attempt; any 5xx is too.
_TRANSIENT_CODES = {
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
}


class ObjectStoreError(Exception):
    """An upload that did not succeed; the message names the storage and the cause."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """Where an uploaded video is: the completed event's `object_key`, `object_url` and
    `object_url_expires_at` (None for a public URL, which does not expire)."""

    object_key: str
    object_url: str
    object_url_expires_at: str | None


@dataclass(frozen=True, slots=True)
class ObjectStoreSettings:
    bucket: str
    endpoint_url: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    addressing: str = "auto"
    prefix: str = "videos/"
    url_ttl_s: int = 86400
    public_url: str | None = None
    part_bytes: int = 16 * 1024 * 1024
    max_attempts: int = 4
    delete_local_after_upload: bool = False
    retry_base_s: float = 0.5  # backoff between attempts: base * 2^n, at most 8 s
    request_attempts: int = 3  # botocore's own attempts per request (standard mode)

    def __post_init__(self) -> None:
        if self.addressing not in ("auto", "path", "virtual"):
            raise ValueError("OBJECT_STORE_ADDRESSING must be auto, path or virtual")
        if not 1 <= self.url_ttl_s <= MAX_URL_TTL_S:
            raise ValueError(f"OBJECT_STORE_URL_TTL_S must be 1 to {MAX_URL_TTL_S}")
        if self.part_bytes < MIN_PART_BYTES:
            raise ValueError(f"OBJECT_STORE_PART_BYTES must be at least {MIN_PART_BYTES}")
        if self.max_attempts < 1:
            raise ValueError("OBJECT_STORE_MAX_ATTEMPTS must be at least 1")
        if (self.access_key is None) != (self.secret_key is None):
            raise ValueError(
                "set both OBJECT_STORE_ACCESS_KEY and OBJECT_STORE_SECRET_KEY, or neither"
            )

    @property
    def storage(self) -> str:
        """The storage as messages name it (no credentials)."""
        return f"object storage bucket {self.bucket!r} at {self.endpoint_url or 'AWS S3'}"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
    ) -> ObjectStoreSettings | None:
        """The settings from the environment (over `.env`), or None when the sink is off."""
        values: dict[str, str] = {}
        if dotenv is not None and dotenv.is_file():
            from dotenv import dotenv_values

            values.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        values.update(os.environ if env is None else env)

        def get(name: str) -> str | None:
            value = values.get(name, "").strip()
            return value or None

        bucket = get("OBJECT_STORE_BUCKET")
        if bucket is None:
            return None
        defaults = cls(bucket=bucket)
        return cls(
            bucket=bucket,
            endpoint_url=get("OBJECT_STORE_URL"),
            access_key=get("OBJECT_STORE_ACCESS_KEY"),
            secret_key=get("OBJECT_STORE_SECRET_KEY"),
            region=get("OBJECT_STORE_REGION") or defaults.region,
            addressing=(get("OBJECT_STORE_ADDRESSING") or defaults.addressing).lower(),
            prefix=get("OBJECT_STORE_PREFIX") or defaults.prefix,
            url_ttl_s=int(get("OBJECT_STORE_URL_TTL_S") or defaults.url_ttl_s),
            public_url=get("OBJECT_STORE_PUBLIC_URL"),
            part_bytes=int(get("OBJECT_STORE_PART_BYTES") or defaults.part_bytes),
            max_attempts=int(get("OBJECT_STORE_MAX_ATTEMPTS") or defaults.max_attempts),
            delete_local_after_upload=(get("DELETE_LOCAL_AFTER_UPLOAD") or "").lower() in _TRUE,
        )


class ObjectSink:
    """Uploads videos to one bucket. `async with ObjectSink(settings) as sink: ...`, or
    `start()` / `close()`; one instance serves every upload of the process."""

    def __init__(self, settings: ObjectStoreSettings) -> None:
        self.settings = settings
        self._stack: AsyncExitStack | None = None
        self._client: Any = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ObjectSink | None:
        settings = ObjectStoreSettings.from_env(env)
        return cls(settings) if settings is not None else None

    async def start(self) -> None:
        if self._client is not None:
            return
        try:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session
        except ImportError:
            raise ObjectStoreError(
                "OBJECT_STORE_BUCKET is set but aiobotocore is not installed: "
                "pip install 'video-service[s3]'"
            ) from None
        s = self.settings
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": s.addressing},
            retries={"max_attempts": s.request_attempts, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            # Newer botocore adds CRC checksums by default, which some S3-compatible stores
            # (OSS, older MinIO) refuse; Content-MD5 is sent explicitly instead.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        stack = AsyncExitStack()
        self._client = await stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=s.endpoint_url,
                region_name=s.region,
                aws_access_key_id=s.access_key,
                aws_secret_access_key=s.secret_key,
                config=config,
            )
        )
        self._stack = stack

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack, self._client = None, None

    async def __aenter__(self) -> ObjectSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def key_for(self, filename: str) -> str:
        """The object key of a video file: the prefix and its name."""
        return f"{self.settings.prefix}{filename}"

    async def upload(self, path: Path, key: str, sha256: str, size: int) -> StoredObject:
        """Upload `path` (whose checked `sha256` and `size` are known) under `key` and return
        where it is. Raises ObjectStoreError after the last attempt, or at once for what no
        attempt can change (the file does not match, access denied, no such bucket)."""
        if self._client is None:
            await self.start()
        s = self.settings
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._upload_once(path, key, sha256, size)
                return await self._locate(key)
            except asyncio.CancelledError:
                raise
            except _Permanent as exc:
                raise ObjectStoreError(f"upload of {key} to {s.storage} failed: {exc}") from None
            except Exception as exc:
                cause = _describe(exc)
                if not _transient(exc) or attempt >= s.max_attempts:
                    raise ObjectStoreError(
                        f"upload of {key} to {s.storage} failed after {attempt} "
                        f"attempt{'s' if attempt > 1 else ''}: {cause}"
                    ) from None
                delay = min(8.0, s.retry_base_s * 2 ** (attempt - 1))
                log.warning(
                    "upload of %s to %s failed (attempt %d of %d), again in %.1f s: %s",
                    key, s.storage, attempt, s.max_attempts, delay, cause,
                )  # fmt: skip
                await asyncio.sleep(delay)

    async def _upload_once(self, path: Path, key: str, sha256: str, size: int) -> None:
        actual = await asyncio.to_thread(lambda: path.stat().st_size)
        if actual != size:
            raise _Permanent(f"{path.name} has {actual} bytes, not the {size} checked")
        if await self._matches(key, sha256, size):
            log.info("%s is already in %s with the same content", key, self.settings.storage)
            return
        if size <= self.settings.part_bytes:
            await self._put(path, key, sha256, size)
        else:
            await self._multipart(path, key, sha256, size)
        if not await self._matches(key, sha256, size):
            raise _Permanent(f"the stored object {key} does not have the size and sha256 sent")

    async def _put(self, path: Path, key: str, sha256: str, size: int) -> None:
        md5 = await asyncio.to_thread(_file_md5, path)
        with path.open("rb") as body:  # streamed by the HTTP client, not read here
            await self._client.put_object(
                Bucket=self.settings.bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ContentMD5=md5,
                ContentType="video/mp4",
                Metadata={"sha256": sha256},
            )

    async def _multipart(self, path: Path, key: str, sha256: str, size: int) -> None:
        bucket, part_bytes = self.settings.bucket, self.settings.part_bytes
        created = await self._client.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType="video/mp4", Metadata={"sha256": sha256}
        )
        upload_id = created["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            with path.open("rb") as file:
                number = 0
                while True:
                    chunk = await asyncio.to_thread(_read, file, part_bytes)
                    if not chunk:
                        break
                    number += 1
                    answer = await self._client.upload_part(
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                        ContentMD5=_md5(chunk),
                    )
                    parts.append({"ETag": answer["ETag"], "PartNumber": number})
                    del chunk
            await self._client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            try:
                await asyncio.shield(
                    self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
                )
            except Exception as exc:  # the bucket's lifecycle rule must clean it up then
                log.warning("aborting the multipart upload of %s failed: %s", key, _describe(exc))
            raise

    async def _matches(self, key: str, sha256: str, size: int) -> bool:
        """Whether `key` holds an object of this size and sha256 (its metadata)."""
        try:
            head = await self._client.head_object(Bucket=self.settings.bucket, Key=key)
        except Exception as exc:
            if _status(exc) == 404:
                return False
            raise
        return bool(
            head.get("ContentLength") == size
            and (head.get("Metadata") or {}).get("sha256") == sha256
        )

    async def _locate(self, key: str) -> StoredObject:
        s = self.settings
        if s.public_url:
            return StoredObject(key, f"{s.public_url.rstrip('/')}/{key}", None)
        expires = datetime.now(UTC) + timedelta(seconds=s.url_ttl_s)
        url = await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": s.bucket, "Key": key}, ExpiresIn=s.url_ttl_s
        )
        return StoredObject(key, url, utc_timestamp(expires))

    async def ping(self) -> bool:
        """Whether the bucket answers (for a readiness check)."""
        try:
            if self._client is None:
                await self.start()
            await self._client.head_bucket(Bucket=self.settings.bucket)
            return True
        except Exception:
            return False


class _Permanent(Exception):
    """A failure no further attempt can change."""


def _read(file: BinaryIO, size: int) -> bytes:
    return file.read(size)


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


def _code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _transient(exc: BaseException) -> bool:
    """Worth another attempt: throttling, 5xx, timeouts and broken connections."""
    status, code = _status(exc), _code(exc)
    if status is not None or code is not None:
        return (status or 0) >= 500 or code in _TRANSIENT_CODES
    return True  # no answer from the store: connection refused or reset, timeouts


def _describe(exc: BaseException) -> str:
    code, status = _code(exc), _status(exc)
    if code is not None:
        return f"{code} (HTTP {status})" if status else code
    return f"{type(exc).__name__}: {exc}"
