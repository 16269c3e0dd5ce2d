"""The result file host: signed, expiring URLs to real MP4 files, and a cover image.

URLs look like OSS signed URLs (`?Expires=<epoch>&OSSAccessKeyId=…&Signature=…`) for both
vendors; errors are OSS-style XML. Download faults (see faults.py) apply to the video only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from simulator import media
from simulator.connection import DroppedConnection, TruncatedResponse
from simulator.context import Sim
from simulator.errors import oss_error
from simulator.faults import ANSWERS, DOWNLOADS, FaultRule
from simulator.state import Task
from simulator.wire import counted

# OSS answers these for its own failures; a 429 is not OSS-like but lets throttling be tested.
OSS_CODES = {
    "403": "AccessDenied",
    "429": "Throttling",
    "500": "InternalError",
    "503": "ServiceUnavailable",
    "504": "GatewayTimeout",
}
HTML_PAGE = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>\n"


def result_urls(sim: Sim, request: Request, task: Task) -> tuple[str, str]:
    """Absolute video and cover URLs on this simulator's own host."""
    base = str(request.base_url)
    return _signed(sim, base, task, f"{task.task_id}.mp4"), _signed(
        sim, base, task, f"{task.task_id}_cover.png"
    )


def _signature(sim: Sim, name: str, expires: str) -> str:
    return hmac.new(sim.secret, f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def _signed(sim: Sim, base: str, task: Task, name: str) -> str:
    expires = str(int(task.ended + sim.config.url_ttl_s))
    signature = _signature(sim, name, expires)
    return f"{base}results/{name}?Expires={expires}&OSSAccessKeyId=simulator&Signature={signature}"


def routes(sim: Sim) -> list[Route]:
    host = ResultHost(sim)
    video = counted(sim.stats, host.vendor_of, "download", host.video)
    return [
        Route("/results/{task_id}_cover.png", host.cover, methods=["GET"]),
        Route("/results/{task_id}.mp4", video, methods=["GET"]),
        Route("/media/{name}", image, methods=["GET"]),
    ]


async def image(request: Request) -> Response:
    """The file server of the test images (media/): what a request's image URLs may name."""
    name = request.path_params["name"]
    content = media.read_image(name)
    if content is None:
        return oss_error(404, "NoSuchKey", "The specified key does not exist.")
    return Response(content, media_type=media.image_type(name))


class ResultHost:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim

    def vendor_of(self, request: Request) -> str:
        task = self.sim.tasks.find(request.path_params["task_id"])
        return task.vendor if task is not None else "unknown"

    def _check(self, request: Request, name: str) -> Task | Response:
        """The task behind a URL, or the 403/404 the storage host would give."""
        task = self.sim.tasks.find(request.path_params["task_id"])
        if task is None or not task.has_result(self.sim.clock.now()):
            return oss_error(404, "NoSuchKey", "The specified key does not exist.")
        expires = request.query_params.get("Expires", "")
        given = request.query_params.get("Signature", "")
        if not hmac.compare_digest(given, _signature(self.sim, name, expires)):
            return oss_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
        if task.url_expired or self.sim.clock.now() > int(expires):
            return oss_error(403, "AccessDenied", "Request has expired.")
        return task

    async def cover(self, request: Request) -> Response:
        checked = self._check(request, f"{request.path_params['task_id']}_cover.png")
        if isinstance(checked, Response):
            return checked
        return Response(media.read(media.COVER), media_type="image/png")

    async def video(self, request: Request) -> Response:
        checked = self._check(request, f"{request.path_params['task_id']}.mp4")
        if isinstance(checked, Response):
            return checked
        task = checked
        faults = self.sim.faults
        context = (task.vendor, "download", task.model, task.prompt)
        if (delay := faults.take({"delay"}, *context)) is not None:
            await asyncio.sleep(delay.seconds or 0)
        if (rule := faults.take(ANSWERS | DOWNLOADS, *context)) is not None:
            return self._misbehave(rule, task)
        return self._stream(media.read(media.choose(task.output).name), 0.0)

    def _misbehave(self, rule: FaultRule, task: Task) -> Response:
        data = media.read(media.choose(task.output).name)
        if rule.action == "reset":
            return DroppedConnection()
        if rule.action == "expired_url":
            return oss_error(403, "AccessDenied", "Request has expired.")
        if rule.action == "truncate":
            return TruncatedResponse(data[: len(data) // 2], len(data), "video/mp4")
        if rule.action == "not_mp4":
            return Response(HTML_PAGE, media_type=rule.content_type or "text/html; charset=utf-8")
        if rule.action == "slow_download":
            return self._stream(data, rule.seconds or 0.0)
        code = rule.code or OSS_CODES.get(rule.action, "InternalError")
        status = int(rule.action) if rule.action.isdigit() else 500
        return oss_error(status, code, rule.message or code)

    def _stream(self, data: bytes, seconds: float) -> Response:
        """Stream in chunks; `seconds` spreads the body over that long (slow_download)."""
        size = self.sim.config.chunk_bytes if not seconds else max(1, len(data) // 20)
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        pause = seconds / len(chunks)

        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks:
                if pause:
                    await asyncio.sleep(pause)
                yield chunk

        headers = {"content-length": str(len(data))}
        return StreamingResponse(body(), media_type="video/mp4", headers=headers)
