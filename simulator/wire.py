"""Request plumbing both vendors share: bearer tokens, JSON bodies, counting, time strings."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from simulator.stats import Stats

Endpoint = Callable[[Request], Awaitable[Response]]
BEIJING = timezone(timedelta(hours=8))
NOT_JSON = object()  # what `json_body` gives for a body that does not parse


def bearer(request: Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, "" for another scheme, None when absent."""
    header = request.headers.get("authorization")
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return NOT_JSON


def counted(
    stats: Stats, vendor: str | Callable[[Request], str], route: str, endpoint: Endpoint
) -> Endpoint:
    """Wrap an endpoint so every answer (or dropped connection) is counted."""

    async def wrapper(request: Request) -> Response:
        name = vendor if isinstance(vendor, str) else vendor(request)
        try:
            response = await endpoint(request)
        except ConnectionResetError:
            stats.record(name, route, "reset")
            raise
        stats.record(name, route, getattr(response, "label", response.status_code))
        return response

    return wrapper


def dashscope_time(epoch: float) -> str:
    """`YYYY-MM-DD HH:mm:ss.SSS`, Beijing local time, no zone (§1.6)."""
    moment = datetime.fromtimestamp(epoch, BEIJING)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
