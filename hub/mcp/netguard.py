"""Keep the hub's connections to team-registered MCP servers off internal addresses (SSRF).

Every request is resolved, checked against a `NetworkPolicy` and then sent to the very address
that was checked (the URL's host is replaced by the IP; Host header and TLS name stay the
original), so a DNS answer that changes between check and connect (rebinding) cannot slip by.
"""

import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "ALLOWED_NETWORKS_SETTING",
    "MAX_MESSAGE_BYTES",
    "AddressRefusedError",
    "GuardedResolver",
    "GuardedTransport",
    "IPAddress",
    "IPNetwork",
    "MessageTooLargeError",
    "NetworkPolicy",
    "check_url_syntax",
    "guarded_client",
    "normalise_ip",
    "parse_ip_literal",
    "resolve",
    "resolve_checked",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_NETWORKS_SETTING = "SWITCHBOARD_MCP_ALLOWED_NETWORKS"
MAX_URL_LENGTH = 2000
DEFAULT_PORTS = {"http": 80, "https": 443}
# The MCP SDK's create_mcp_http_client defaults: 30 s, with 300 s to read a held-open stream.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, read=300.0)

_METADATA = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle...
        "169.254.170.2",  # AWS ECS task credentials
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (legacy); `is_global` on Python 3.11
        "fd00:ec2::254",  # AWS over IPv6
        "fd20:ce::254",  # GCP over IPv6
    )
)
_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
# Not global, though Python 3.11's `is_global` says so: IETF protocol assignments, IPv6
# site-local, the IPv6 documentation prefix of 2024.
_SPECIAL = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "fec0::/10", "3fff::/20"))
# What inet_aton may read as an IPv4 address: 127.1, 0x7f000001, 2130706433, 0177.0.0.1.
_NUMERIC_IPV4 = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


# The largest message the hub reads from an MCP server (an SSE event, or a whole body).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class MessageTooLargeError(httpx.ReadError):
    """A server sent a message over MAX_MESSAGE_BYTES; str(error) says so to a person."""


class AddressRefusedError(ValueError):
    """str(error) is a message for a person: what was refused and what to do. `public` says
    the same without the addresses a name resolved to (for members; the full one is for the
    log and admins)."""

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or message


def normalise_ip(ip: IPAddress) -> IPAddress:
    """The IPv4 address `ip` embeds (mapped, compatible, NAT64 or 6to4), else `ip` itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or 1 < int(ip) < 2**32:  # 64:ff9b::a.b.c.d, or IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a numeric host names, read as the C resolver reads it; None for a name.

    Besides dotted quads and IPv6 (with or without brackets) this takes every form inet_aton
    and so getaddrinfo accept (127.1, 0x7f000001, 2130706433, octal 0251.0376.0251.0376).
    """
    text = host.removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not _NUMERIC_IPV4.fullmatch(text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def _never_allowed(ip: IPAddress) -> str | None:
    if ip in _METADATA:
        return "a cloud metadata"
    if ip.is_link_local:
        return "a link-local"
    if ip.is_unspecified or ip in _THIS_NETWORK:
        return "an unspecified"
    if ip.is_multicast:
        return "a multicast"
    return "the broadcast" if ip == _BROADCAST else None


def _internal(ip: IPAddress) -> str | None:
    if ip.is_loopback:
        return "a loopback"
    if ip in _SHARED:
        return "a carrier-grade NAT (100.64.0.0/10)"
    if any(ip in network for network in _PRIVATE):
        return "a private"
    if ip.is_reserved:
        return "a reserved"
    if not ip.is_global or any(ip in network for network in _SPECIAL):
        return "a special-purpose, not globally routable,"
    return None


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Which internal networks the hub may reach; public addresses are always allowed."""

    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_strings(cls, cidrs: Iterable[str]) -> "NetworkPolicy":
        networks: list[IPNetwork] = []
        for text in (c.strip() for c in cidrs):
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text))
            except ValueError as exc:
                raise ValueError(
                    f"{ALLOWED_NETWORKS_SETTING}: {text!r} is not a network in CIDR form such "
                    f"as 10.0.0.0/8 or fd00::/8 ({exc})"
                ) from exc
        return cls(tuple(networks))

    def allows(self, ip: IPAddress) -> bool:
        return any(ip in network for network in self.allowed_networks)

    def check_ip(self, ip: IPAddress, *, host: str) -> None:
        """Raise `AddressRefusedError` unless the hub may connect to `ip`, which `host` named."""
        address = normalise_ip(ip)
        shown = str(ip) if address == ip else f"{ip} (IPv4 {address})"
        subject = host if host == shown else f"{host} resolves to {shown}, which"
        # What a name resolves to stays in the log: it maps the internal network.
        named = parse_ip_literal(host) is None
        if reason := _never_allowed(address):
            advice = (
                "the hub never connects to these. Register the MCP server by an address it "
                "can be reached at instead."
            )
            raise AddressRefusedError(
                f"{subject} is {reason} address; {advice}",
                public=f"{host} resolves to {reason} address; {advice}" if named else None,
            )
        reason = _internal(address)
        if reason and not (self.allows(ip) or self.allows(address)):
            outside = f"{reason} address outside the networks the hub may reach"
            allow = (
                "If the MCP server is meant to be internal, an admin can allow it with "
                f"{ALLOWED_NETWORKS_SETTING}, a comma-separated list of CIDRs"
            )
            raise AddressRefusedError(
                f"{subject} is {outside}. {allow} (e.g. {address}/{address.max_prefixlen}).",
                public=f"{host} resolves to {outside}. {allow}." if named else None,
            )


def check_url_syntax(url: str) -> httpx.URL:
    """Parse an MCP server URL: http(s), a host, no user:password@, at most 2000 characters."""
    if len(url) > MAX_URL_LENGTH:
        raise AddressRefusedError(
            f"The MCP server URL has {len(url)} characters; at most {MAX_URL_LENGTH} are allowed."
        )
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:  # idna.IDNAError is a ValueError
        raise AddressRefusedError(f"The MCP server URL is not a valid URL: {exc}.") from exc
    if parsed.scheme not in DEFAULT_PORTS:
        raise AddressRefusedError(
            f"The MCP server URL must start with http:// or https://, not {parsed.scheme or '?'}:."
        )
    if not parsed.host:
        raise AddressRefusedError("The MCP server URL has no host; use https://host[:port]/path.")
    if parsed.userinfo:
        raise AddressRefusedError(
            "The MCP server URL contains a user name or password (user:pass@host); remove it "
            "and give credentials as a header instead."
        )
    return parsed


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host`, in its order (OSError if none)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(sockaddr[0]) for *_, sockaddr in infos]


async def resolve_checked(host: str, port: int, policy: NetworkPolicy) -> str:
    """The address to connect to for `host`, once every address it resolves to passes `policy`.

    Numeric hosts are read without DNS. Raises `AddressRefusedError`, or OSError when `host`
    does not resolve.
    """
    literal = parse_ip_literal(host)
    addresses = [literal] if literal is not None else await resolve(host, port)
    if not addresses:
        raise OSError(f"{host} resolved to no address")
    for address in addresses:
        policy.check_ip(address, host=host)
    return str(addresses[0])


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks the destination of every request, each redirect hop included, and pins it."""

    def __init__(
        self,
        policy: NetworkPolicy,
        *,
        on_too_large: Callable[[MessageTooLargeError], None] | None = None,
        **transport_kwargs: Any,
    ) -> None:
        self._policy = policy
        # Told when a response passes MAX_MESSAGE_BYTES: the MCP SDK only logs a failed SSE
        # stream and its caller would wait for its time-out.
        self._on_too_large = on_too_large
        self._transport_kwargs = transport_kwargs
        # One pool per original origin: pooled by IP alone, a TLS connection made for one name
        # could carry requests for another name on the same address.
        self._transports: dict[tuple[str, str, int], httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.raw_host.decode("ascii")
        if url.scheme not in DEFAULT_PORTS or not host:
            raise AddressRefusedError(f"Only http(s) URLs with a host are allowed ({url.scheme}).")
        port = url.port or DEFAULT_PORTS[url.scheme]
        try:
            ip = await resolve_checked(host, port, self._policy)
        except OSError as exc:
            raise httpx.ConnectError(f"Could not resolve {host}: {exc}", request=request) from exc
        headers = request.headers.copy()
        headers.setdefault("Host", url.netloc.decode("ascii"))
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=ip),
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )
        key = (url.scheme, host, port)
        if key not in self._transports:
            self._transports[key] = httpx.AsyncHTTPTransport(**self._transport_kwargs)
        response = await self._transports[key].handle_async_request(pinned)
        events = response.headers.get("content-type", "").lower().startswith("text/event-stream")
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(
            response.stream, events=events, url=str(url), on_too_large=self._on_too_large
        )
        return response

    async def aclose(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            await transport.aclose()


class _CappedStream(httpx.AsyncByteStream):
    """A response body that fails once one message passes MAX_MESSAGE_BYTES: an event of an
    SSE stream (which may run for a long time), else the whole body."""

    def __init__(
        self,
        stream: httpx.AsyncByteStream,
        *,
        events: bool,
        url: str,
        on_too_large: Callable[[MessageTooLargeError], None] | None,
    ) -> None:
        self._stream = stream
        self._events = events
        self._url = url
        self._on_too_large = on_too_large

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._stream:
            # Bytes since the last blank line (an event's end); a break split over two chunks
            # is missed, which only counts a little more.
            end = max(chunk.rfind(b"\n\n"), chunk.rfind(b"\r\n\r\n")) if self._events else -1
            size = len(chunk) - end if end >= 0 else size + len(chunk)
            if size > MAX_MESSAGE_BYTES:
                error = MessageTooLargeError(
                    f"{self._url} sent a message over {MAX_MESSAGE_BYTES // 2**20} MiB; the hub "
                    "reads none larger"
                )
                if self._on_too_large is not None:
                    self._on_too_large(error)
                raise error
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver for the hub: a name resolves only to addresses the policy allows.

    aiohttp asks it at every new connection when its DNS cache is off, and connects to the
    address it returns while TLS and Host keep the name. aiohttp does not ask for a host that
    is an address literal: check those with `NetworkPolicy.check_ip` before connecting.
    """

    def __init__(self, policy: NetworkPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = await resolve_checked(host, port, self._policy)
        ip = ipaddress.ip_address(address)
        kind = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(hostname=host, host=address, port=port, family=kind, proto=0, flags=flags)
        ]

    async def close(self) -> None:
        return None


def guarded_client(
    policy: NetworkPolicy,
    *,
    headers: dict[str, str] | None = None,
    timeout: httpx.Timeout | None = None,
    auth: httpx.Auth | None = None,
    on_too_large: Callable[[MessageTooLargeError], None] | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient that only reaches what `policy` allows and follows no redirects itself.

    trust_env is off: no proxy or .netrc from the environment.
    """
    return httpx.AsyncClient(
        headers=headers,
        timeout=timeout or DEFAULT_TIMEOUT,
        auth=auth,
        follow_redirects=False,
        trust_env=False,
        transport=GuardedTransport(policy, on_too_large=on_too_large),
    )
