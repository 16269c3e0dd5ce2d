"""Where the service may download from: DOWNLOAD_ALLOWED_HOSTS, and the address rules.

The entries (comma-separated, case-insensitive; a trailing dot and IPv6 brackets are ignored):

- `name` or an IP address: a host *equal* to it is trusted as the operator named it on purpose
  (e.g. `127.0.0.1` for the local simulator): any scheme (http or https), any port, any address.
  A *subdomain* of a name is checked (below). An IP address or `localhost` matches only itself.
- `.name` (leading dot, or `*.name`): subdomains only, all checked; `name` itself is not
  allowed. The providers' defaults have this form (`.aliyuncs.com`, `.chatglm.cn`,
  `.bigmodel.cn`), so none of their hosts is ever trusted unchecked.

A checked host must be reached over https on the default port (443), must have no label ending
in `-internal` (Alibaba Cloud's VPC-internal endpoints such as
`oss-cn-beijing-internal.aliyuncs.com`; list one exactly if you really mean it), and every address
it resolves to (the event loop's `getaddrinfo`) must be public: not private, loopback,
link-local, multicast, reserved, unspecified, shared (CGNAT, 100.64.0.0/10), documentation or
benchmarking space, nor an IPv6 address that embeds such an IPv4 one (IPv4-mapped, NAT64
`64:ff9b::/96`, 6to4) or a Teredo tunnel. One bad address refuses the host: a resolver that mixes
a public and an internal address is treated as hostile. The caller then connects to one of the
checked addresses itself (see `consumers.media.download`), so a second resolution (DNS
rebinding) cannot swap the address between the check and the connection.

Every URL is parsed by httpx, the parser that makes the connection, so the check and the request
agree on the host (no userinfo tricks: a URL with credentials is refused outright).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
SETTING = "DOWNLOAD_ALLOWED_HOSTS"

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class HostRefused(Exception):
    """The URL may not be fetched; the message says why (no query string in it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ResolveFailed(Exception):
    """The host's name did not resolve (may pass: DNS trouble)."""


@dataclass(frozen=True)
class Target:
    """A URL allowed by the list. `checked`: it must be fetched over a checked public address
    (see `public_addresses`); otherwise it is fetched as given."""

    url: httpx.URL
    host: str  # lower case, IDNA (xn--) form, no trailing dot
    checked: bool


def where(url: str | httpx.URL) -> str:
    """scheme://host[:port]/path of a URL: signed result URLs carry credentials in the query."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "an invalid URL"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


def target(url: str | httpx.URL, allowed: Sequence[str]) -> Target:
    """What the allow-list says of `url`: a Target, or HostRefused naming the reason."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise HostRefused("an invalid URL is not allowed") from None
    if parsed.scheme not in ("http", "https") or parsed.userinfo:
        raise HostRefused(f"downloads from {where(parsed)} are not allowed ({SETTING})")
    host = parsed.raw_host.decode("ascii").rstrip(".").lower()  # IDNA hosts come as xn--
    if not host:
        raise HostRefused(f"downloads from {where(parsed)} are not allowed ({SETTING})")
    match = _match(host, allowed)
    if match is None:
        raise HostRefused(f"downloads from {where(parsed)} are not allowed ({SETTING})")
    if match == "exact":
        return Target(parsed, host, checked=False)
    rule = f"{host} is allowed as a subdomain of a {SETTING} entry, so"
    if parsed.scheme != "https":
        raise HostRefused(f"{where(parsed)}: {rule} only https may be used")
    if parsed.port is not None:  # httpx drops the scheme's default port
        raise HostRefused(f"{where(parsed)}: {rule} only the default port (443) may be used")
    if any(label.endswith("-internal") for label in host.split(".")):
        raise HostRefused(f"{where(parsed)}: {rule} its -internal endpoints are not allowed")
    return Target(parsed, host, checked=True)


def host_allowed(url: str, allowed: Sequence[str]) -> bool:
    """Whether `url` passes the list's rules (the address check aside)."""
    try:
        target(url, allowed)
    except HostRefused:
        return False
    return True


def _match(host: str, allowed: Sequence[str]) -> str | None:
    """'exact', 'subdomain' or None."""
    host_is_ip = _is_ip(host)
    found = None
    for raw in allowed:
        entry = raw.strip().lower().rstrip(".").strip("[]").removeprefix("*")
        subdomains_only = entry.startswith(".")
        entry = entry.lstrip(".")
        if not entry:
            continue
        if host == entry and not subdomains_only:
            return "exact"
        exact_only = host_is_ip or _is_ip(entry) or entry == "localhost"
        if not exact_only and host.endswith("." + entry):
            found = "subdomain"
    return found


async def system_resolve(host: str, port: int) -> list[str]:
    """The host's addresses, by the event loop's getaddrinfo (in its executor)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ResolveFailed(f"{host} does not resolve: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def public_addresses(host: str, port: int, resolve: Resolver = system_resolve) -> list[str]:
    """Every address `host` resolves to, all checked public (HostRefused if one is not;
    ResolveFailed if there are none)."""
    addresses = await resolve(host, port)
    if not addresses:
        raise ResolveFailed(f"{host} resolves to no address")
    for address in addresses:
        if not is_public(address):
            raise HostRefused(
                f"{host} resolves to {address}, which is not a public address "
                f"({SETTING} allows only public addresses for subdomains of its entries)"
            )
    return addresses


def is_public(address: str) -> bool:
    """Whether an IP address is globally reachable unicast (see the module docstring)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(str(ip.ipv4_mapped))
        if ip in _NAT64:
            return is_public(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)))
        if ip.sixtofour is not None and not is_public(str(ip.sixtofour)):
            return False
        if ip.teredo is not None:
            return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
