"""The aiohttp transport against real sockets: what each failure means for a submit.

A submit may be sent again only when it never left (`submit_not_taken`); every failure after
the request was written must read as "sent, outcome unknown", or a dropped answer would pay for
the video twice. httpx-aiohttp alone maps a dropped connection to `ConnectTimeout` ("never
sent"): these tests fail without our mapping.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from providers.base import HttpRequest, ProviderError
from providers.http import send
from providers.transport import aiohttp_transport

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TIMEOUT = httpx.Timeout(0.5)


@asynccontextmanager
async def vendor(
    serve: Serve, connections: int = 10, timeout: httpx.Timeout = TIMEOUT
) -> AsyncIterator[httpx.AsyncClient]:
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = aiohttp_transport(httpx.Limits(max_connections=connections))
    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", transport=transport, timeout=timeout
    )
    async with server:
        yield client
        await client.aclose()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return head, await reader.readexactly(length)


def submit() -> HttpRequest:
    return HttpRequest("POST", "/submit", {"Authorization": "Bearer k"}, {"prompt": "a cat"})


async def failure(client: httpx.AsyncClient) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await send(client, submit(), "vendor")
    return caught.value


async def test_an_answer_comes_back_with_the_request_as_sent() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        body = b'{"id": "t-1"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()

    async with vendor(serve) as client:
        response = await send(client, submit(), "vendor")
    assert response.status_code == 200 and response.body == {"id": "t-1"}
    head, body = seen[0]
    assert head.startswith(b"POST /submit HTTP/1.1") and b"authorization: bearer k" in head.lower()
    assert json.loads(body) == {"prompt": "a cat"}


async def test_a_refused_connection_was_never_sent() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = aiohttp_transport(httpx.Limits(max_connections=1))
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", transport=transport
    ) as client:
        error = await failure(client)
    assert error.transient and error.submit_not_taken


async def test_a_connection_dropped_after_the_request_leaves_the_outcome_unknown() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()  # the vendor may have created the task

    async with vendor(serve) as client:
        error = await failure(client)
    assert error.transient and not error.submit_not_taken
    assert "may have been processed" in error.message


async def test_no_answer_in_time_leaves_the_outcome_unknown() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with vendor(serve) as client:
        error = await failure(client)
    assert error.transient and not error.submit_not_taken


async def test_a_body_cut_short_leaves_the_outcome_unknown() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id": ')
        await writer.drain()
        writer.close()

    async with vendor(serve) as client:
        error = await failure(client)
    assert error.transient and not error.submit_not_taken


async def test_no_free_connection_in_time_was_never_sent() -> None:
    release = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await release.wait()  # holds the only connection

    # Answers may take 2 s; a free connection must come within 0.3 s.
    async with vendor(serve, connections=1, timeout=httpx.Timeout(2.0, pool=0.3)) as client:
        first = asyncio.create_task(send(client, HttpRequest("GET", "/slow", {}, None), "vendor"))
        await asyncio.sleep(0.1)
        error = await failure(client)
        release.set()
        first.cancel()
    assert error.transient and error.submit_not_taken


async def test_a_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        seen.append(head.split(b"\r\n")[0])
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with (
        server,
        httpx.AsyncClient(
            base_url="http://vendor.test", transport=aiohttp_transport(httpx.Limits())
        ) as client,
    ):
        response = await send(client, HttpRequest("GET", "/tasks/1", {}, None), "vendor")
    assert response.status_code == 200
    assert seen == [b"GET http://vendor.test/tasks/1 HTTP/1.1"]
