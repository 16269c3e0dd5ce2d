"""Sending one `HttpRequest` with httpx, and mapping httpx's exceptions to `ProviderError`.

Nothing above `providers/` ever sees an `httpx` exception. What matters for a submit is whether
the vendor can have created a task: when the request never left (no connection, no free
connection in the pool) it certainly did not (`submit_not_taken`); once the request was sent, a
timeout or a dropped connection leaves the outcome unknown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from providers.base import HttpRequest, ProviderError
from schemas.errors import ErrorCode

# Raised before any byte of the request reached the vendor.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status_code: int
    headers: Mapping[str, str]
    body: Any  # the parsed JSON, or None when the body is not JSON


async def send(client: httpx.AsyncClient, request: HttpRequest, vendor: str) -> HttpResponse:
    try:
        response = await client.request(
            request.method, request.path, headers=dict(request.headers), json=request.json
        )
    except _NOT_SENT as exc:
        raise ProviderError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"{vendor} could not be reached ({type(exc).__name__}: {exc})",
            transient=True,
            submit_not_taken=True,
        ) from exc
    except httpx.RequestError as exc:  # sent, but no complete answer
        raise ProviderError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"{vendor} did not answer ({type(exc).__name__}: {str(exc) or 'no detail'}); "
            "the request may have been processed",
            transient=True,
        ) from exc
    return HttpResponse(response.status_code, response.headers, _json(response))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
