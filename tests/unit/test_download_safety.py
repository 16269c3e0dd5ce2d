"""Where downloads may go (consumers.media.hosts, consumers.media.download).

Subdomains of an allowed entry: https on port 443, every resolved address public, fetched at the
checked address (no second resolution), every redirect hop checked again. Hosts listed exactly:
as given. The MockTransport sees the request as sent: the IP in the URL, the name in `Host`.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consumers.media.download import DownloadError, download_video
from consumers.media.hosts import (
    HostRefused,
    ResolveFailed,
    host_allowed,
    is_public,
    public_addresses,
    system_resolve,
)
from providers.aliyun.client import DashScopeProvider
from providers.zhipuai.client import BigModelProvider
from tests.unit.test_download import DATA, FINAL, TEMP, Handler, ok, serving

URL = "https://bucket.oss-cn-beijing.aliyuncs.com/out/v.mp4?Expires=1&Signature=s3cret"
NAME = "bucket.oss-cn-beijing.aliyuncs.com"
A, B = "47.95.0.10", "2408:4000::10"  # public IPv4 and IPv6 addresses
DEFAULTS = (*DashScopeProvider.result_host_suffixes, *BigModelProvider.result_host_suffixes)


class Resolver:
    """A stand-in DNS: answers by name, `then` after the first answer (a rebinding attacker)."""

    def __init__(self, answers: dict[str, list[str]], then: list[str] | None = None) -> None:
        self.answers = answers
        self.then = then
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        assert port == 443
        if self.then is not None and host in self.calls:
            return self.then
        self.calls.append(host)
        if host not in self.answers:
            raise ResolveFailed(f"{host} does not resolve")
        return self.answers[host]


async def download(
    handler: Handler,
    video_dir: Path,
    resolver: Any,
    url: str = URL,
    allowed: tuple[str, ...] = (".aliyuncs.com",),
) -> tuple[list[httpx.Request], Any]:
    """(requests seen, VideoFile or DownloadError)."""
    seen: list[httpx.Request] = []
    async with serving(handler, seen) as client:
        try:
            result: Any = await download_video(
                client,
                url,
                video_dir=video_dir,
                filename=FINAL,
                temp_name=TEMP,
                max_bytes=10 * len(DATA),
                allowed_hosts=allowed,
                resolve=resolver,
            )
        except DownloadError as exc:
            assert "s3cret" not in exc.message
            assert not (video_dir / FINAL).exists() and not (video_dir / TEMP).exists()
            result = exc
    return seen, result


# --- addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("47.95.0.10", True),
        ("8.8.8.8", True),
        ("2408:4000::10", True),
        ("2606:4700::1111", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("0.0.0.0", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.100.100.200", False),  # Alibaba Cloud metadata, in the shared CGNAT range
        ("100.64.0.1", False),
        ("224.0.0.1", False),  # multicast (is_global alone says True)
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("192.0.2.1", False),  # documentation
        ("198.18.0.1", False),  # benchmarking
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("ff02::1", False),  # multicast
        ("::ffff:10.0.0.1", False),  # IPv4-mapped private
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("2002:0a00:0001::1", False),  # 6to4 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
        ("2001:db8::1", False),  # documentation
        ("not an address", False),
    ],
)
def test_is_public(address: str, public: bool) -> None:
    assert is_public(address) is public


async def test_the_system_resolver_is_used_and_checked() -> None:
    addresses = await system_resolve("localhost", 443)
    assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses)
    with pytest.raises(HostRefused, match="not a public address"):
        await public_addresses("localhost", 443)
    with pytest.raises(ResolveFailed):
        await system_resolve("no-such-host.invalid", 443)


# --- refused before any request -------------------------------------------------------------------


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["100.100.100.200"],
        ["::1"],
        ["::ffff:192.168.0.1"],
        [A, "192.168.0.1"],  # one bad address is enough
        [B, "fd00::1"],
    ],
    ids=str,
)
async def test_a_subdomain_with_a_non_public_address_is_refused(
    tmp_path: Path, addresses: list[str]
) -> None:
    seen, error = await download(ok, tmp_path, Resolver({NAME: addresses}))
    assert isinstance(error, DownloadError)
    assert seen == []
    assert not error.transient and not error.expired
    assert "not a public address" in error.message
    bad = next(a for a in addresses if a not in (A, B))
    assert bad in error.message


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://bucket.oss-cn-beijing.aliyuncs.com/v.mp4", "only https"),
        ("https://bucket.oss-cn-beijing.aliyuncs.com:8443/v.mp4", "default port"),
        ("https://bucket.oss-cn-beijing-internal.aliyuncs.com/v.mp4", "-internal"),
        ("https://aliyuncs.com/v.mp4", "not allowed"),  # ".aliyuncs.com": subdomains only
    ],
)
async def test_scheme_port_and_internal_names_are_refused(
    tmp_path: Path, url: str, why: str
) -> None:
    resolver = Resolver({})
    seen, error = await download(ok, tmp_path, resolver, url=url)
    assert isinstance(error, DownloadError) and why in error.message
    assert seen == [] and resolver.calls == []
    assert not error.transient


@pytest.mark.parametrize("answers", [{}, {NAME: []}], ids=["nxdomain", "no-address"])
async def test_a_name_that_does_not_resolve_is_transient(
    tmp_path: Path, answers: dict[str, list[str]]
) -> None:
    seen, error = await download(ok, tmp_path, Resolver(answers))
    assert isinstance(error, DownloadError) and error.transient
    assert seen == [] and NAME in error.message


async def test_a_resolver_that_hangs_is_bounded(tmp_path: Path) -> None:
    async def hangs(host: str, port: int) -> list[str]:
        await asyncio.sleep(3600)
        return []

    async with serving(ok) as client:
        with pytest.raises(DownloadError) as caught:
            await download_video(
                client,
                URL,
                video_dir=tmp_path,
                filename=FINAL,
                temp_name=TEMP,
                max_bytes=10 * len(DATA),
                allowed_hosts=[".aliyuncs.com"],
                timeout=0.05,
                resolve=hangs,
            )
    assert caught.value.transient and "did not resolve" in caught.value.message


# --- fetched at the checked address ---------------------------------------------------------------


async def test_the_checked_address_is_the_one_connected_to(tmp_path: Path) -> None:
    # A rebinding resolver: public on the first answer, loopback afterwards. There is no second
    # question: the request goes to the address that was checked.
    resolver = Resolver({NAME: [A]}, then=["127.0.0.1"])
    seen, video = await download(ok, tmp_path, resolver)
    assert video.size_bytes == len(DATA)
    assert resolver.calls == [NAME]
    (request,) = seen
    assert request.url.host == A and request.url.scheme == "https" and request.url.port is None
    assert request.url.path == "/out/v.mp4" and b"Signature=s3cret" in request.url.query
    assert request.headers["host"] == NAME
    assert request.extensions["sni_hostname"] == NAME  # the certificate is checked for the name
    assert request.headers["connection"] == "close"  # never reused for another name


async def test_the_next_checked_address_is_tried_when_one_does_not_connect(
    tmp_path: Path,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == B:
            raise httpx.ConnectError("network unreachable")
        return ok(request)

    seen, video = await download(handler, tmp_path, Resolver({NAME: [B, A]}))
    assert video.size_bytes == len(DATA)
    assert [r.url.host for r in seen] == [B, A]


async def test_when_no_address_connects_the_error_is_transient(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    seen, error = await download(handler, tmp_path, Resolver({NAME: [A, B]}))
    assert isinstance(error, DownloadError) and error.transient
    assert [r.url.host for r in seen] == [A, B]


async def test_a_host_listed_exactly_is_fetched_as_given(tmp_path: Path) -> None:
    # The in-process tests' `sim.test`, the e2e tests' `127.0.0.1`: any scheme, port, address.
    resolver = Resolver({})
    seen, video = await download(
        ok, tmp_path, resolver, url="http://sim.test:8900/results/1.mp4?x=1", allowed=("sim.test",)
    )
    assert video.size_bytes == len(DATA)
    assert resolver.calls == []
    assert str(seen[0].url) == "http://sim.test:8900/results/1.mp4?x=1"
    assert "sni_hostname" not in seen[0].extensions


# --- redirects: every hop checked again ----------------------------------------------------------


def redirect_to(location: str) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["host"] == NAME:
            return httpx.Response(302, headers={"location": location})
        return ok(request)

    return handler


@pytest.mark.parametrize(
    ("location", "answers", "why"),
    [
        ("http://bucket.oss-cn-beijing.aliyuncs.com/v.mp4", {}, "only https"),  # https -> http
        ("https://other.oss-cn-beijing.aliyuncs.com:8443/v.mp4", {}, "default port"),
        ("https://b.oss-cn-beijing-internal.aliyuncs.com/v.mp4", {}, "-internal"),
        ("https://evil.aliyuncs.com/v.mp4", {"evil.aliyuncs.com": ["10.0.0.5"]}, "10.0.0.5"),
        ("http://127.0.0.1:2375/containers", {}, "DOWNLOAD_ALLOWED_HOSTS"),
    ],
)
async def test_a_redirect_is_checked_like_the_first_url(
    tmp_path: Path, location: str, answers: dict[str, list[str]], why: str
) -> None:
    seen, error = await download(redirect_to(location), tmp_path, Resolver({NAME: [A], **answers}))
    assert isinstance(error, DownloadError) and why in error.message
    assert not error.transient
    assert [r.headers["host"] for r in seen] == [NAME]  # the refused hop got no request


async def test_a_good_redirect_is_resolved_and_pinned_too(tmp_path: Path) -> None:
    other = "other.oss-cn-beijing.aliyuncs.com"
    resolver = Resolver({NAME: [A], other: [B]})
    seen, video = await download(redirect_to(f"https://{other}/v.mp4"), tmp_path, resolver)
    assert video.size_bytes == len(DATA)
    assert resolver.calls == [NAME, other]
    assert [(r.url.host, r.headers["host"]) for r in seen] == [(A, NAME), (B, other)]


async def test_a_relative_redirect_keeps_the_name(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/out/v.mp4":
            return httpx.Response(302, headers={"location": "/moved/v.mp4"})
        return ok(request)

    resolver = Resolver({NAME: [A]})
    seen, video = await download(handler, tmp_path, resolver)
    assert video.size_bytes == len(DATA)
    assert [(r.url.host, r.headers["host"], r.url.path) for r in seen] == [
        (A, NAME, "/out/v.mp4"),
        (A, NAME, "/moved/v.mp4"),
    ]


# --- the default allow-list ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        # The result hosts the vendors' docs show, and others seen in the wild.
        ("https://dashscope-result-wlcb.oss-cn-wulanchabu.aliyuncs.com/x.mp4?Expires=1", True),
        ("https://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/x.mp4", True),
        ("https://dashscope-result-sh.oss-accelerate.aliyuncs.com/x.mp4", True),
        ("https://dashscope-result-sgp.oss-ap-southeast-1.aliyuncs.com/x.mp4", True),
        ("https://sfile.chatglm.cn/testpath/video/0e89d8bf_0.mp4", True),
        ("https://aigc-files.bigmodel.cn/api/cogvideo/5796cab0_0.mp4", True),
        # Not: internal endpoints, plain http, other ports, the bare domains, other domains.
        ("https://dashscope-result-bj.oss-cn-beijing-internal.aliyuncs.com/x.mp4", False),
        ("https://oss-cn-beijing-internal.aliyuncs.com/x.mp4", False),
        ("http://dashscope-result-bj.oss-cn-beijing.aliyuncs.com/x.mp4", False),
        ("https://sfile.chatglm.cn:8443/x.mp4", False),
        ("https://aliyuncs.com/x.mp4", False),
        ("https://bigmodel.cn/x.mp4", False),
        ("https://evil.example/x.mp4", False),
        ("http://100.100.100.200/latest/meta-data/", False),
    ],
)
def test_the_default_allow_list(url: str, allowed: bool) -> None:
    assert host_allowed(url, DEFAULTS) is allowed


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://a.example.com/v.mp4", True),
        ("https://example.com/v.mp4", False),
        ("http://a.example.com/v.mp4", False),
    ],
)
def test_a_star_entry_means_subdomains_only(url: str, allowed: bool) -> None:
    assert host_allowed(url, ["*.example.com"]) is allowed


# --- the mechanism: TLS verified for the name while connecting to the address ----------------


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with a certificate for video.example.test, client context trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "video.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("video.example.test")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


@pytest.fixture
async def tls_server(tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]) -> AsyncIterator[int]:
    hosts: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        hosts.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls_pair[0])
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_sni_hostname_makes_httpx_verify_the_name_at_the_ip(
    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext], tls_server: int
) -> None:
    """What pinning relies on: httpx connects to the IP in the URL and verifies the server's
    certificate for `sni_hostname`, not for the IP."""
    url = f"https://127.0.0.1:{tls_server}/v.mp4"
    async with httpx.AsyncClient(verify=tls_pair[1], trust_env=False) as client:
        response = await client.get(
            url,
            headers={"Host": "video.example.test"},
            extensions={"sni_hostname": "video.example.test"},
        )
        assert response.status_code == 200 and response.text == "ok"
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate|hostname"):
            await client.get(url, extensions={"sni_hostname": "other.example.test"})
        with pytest.raises(httpx.ConnectError, match=r"(?i)certificate|IP address"):
            await client.get(url)  # without it: verified for 127.0.0.1, which it is not
