"""The MCP network guard: address rules, odd host spellings, and real HTTP on 127.0.0.1."""

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from hub.mcp import netguard
from hub.mcp.netguard import (
    ALLOWED_NETWORKS_SETTING,
    AddressRefusedError,
    GuardedTransport,
    IPAddress,
    NetworkPolicy,
    check_url_syntax,
    guarded_client,
    resolve_checked,
)
from tests.support.servers import ThreadedServer

METADATA_URL = "http://169.254.169.254/latest/meta-data/"
NOBODY = NetworkPolicy()
LOOPBACK = NetworkPolicy.from_strings(["127.0.0.0/8", "::1/128"])
EVERYTHING = NetworkPolicy.from_strings(["0.0.0.0/0", "::/0"])

METADATA_SPELLINGS = [
    "169.254.169.254",
    "169.254.43518",
    "0xa9fea9fe",
    "2852039166",
    "0251.0376.0251.0376",
    "0251.0376.43518",
    "[::ffff:169.254.169.254]",
    "[::ffff:a9fe:a9fe]",
    "::ffff:a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",  # NAT64
    "2002:a9fe:a9fe::1",  # 6to4
    "::a9fe:a9fe",  # IPv4-compatible
    "fd00:ec2::254",
    "100.100.100.200",
    "169.254.170.2",
]
LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.1",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "[::ffff:127.0.0.1]",
    "localhost",
]


# --- address rules -----------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("host", METADATA_SPELLINGS)
@pytest.mark.parametrize("policy", [NOBODY, NetworkPolicy.from_strings(["169.254.0.0/16"])])
async def test_every_spelling_of_a_metadata_address_is_refused_even_when_link_local_is_allowed(
    host: str, policy: NetworkPolicy
) -> None:
    with pytest.raises(AddressRefusedError, match="cloud metadata address") as refused:
        await resolve_checked(host, 80, policy)
    assert host in str(refused.value)
    assert "never" in str(refused.value)


@pytest.mark.anyio
@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_every_spelling_of_loopback_is_refused_and_says_how_to_allow_it(host: str) -> None:
    with pytest.raises(AddressRefusedError, match="loopback address") as refused:
        await resolve_checked(host, 80, NOBODY)
    message = str(refused.value)
    assert host in message
    assert "127.0.0.1" in message
    assert ALLOWED_NETWORKS_SETTING in message


@pytest.mark.anyio
@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
async def test_loopback_spellings_pass_when_loopback_is_allowed_and_give_the_plain_address(
    host: str,
) -> None:
    expected = {"localhost": {"127.0.0.1", "::1"}, "[::ffff:127.0.0.1]": {"::ffff:7f00:1"}}
    assert await resolve_checked(host, 80, LOOPBACK) in expected.get(host, {"127.0.0.1"})


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1%1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
    ],
)
def test_link_local_unspecified_multicast_and_broadcast_are_refused_whatever_is_allowed(
    address: str, reason: str
) -> None:
    with pytest.raises(AddressRefusedError, match=reason):
        EVERYTHING.check_ip(ipaddress.ip_address(address), host="server")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("::1", "loopback"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "not globally routable"),
        ("198.18.0.1", "not globally routable"),
        ("fec0::1", "not globally routable"),
        ("2001:db8::1", "not globally routable"),
    ],
)
def test_internal_addresses_are_refused_unless_an_allowed_network_holds_them(
    address: str, reason: str
) -> None:
    ip = ipaddress.ip_address(address)
    with pytest.raises(AddressRefusedError, match=reason) as refused:
        NOBODY.check_ip(ip, host="mcp.example.org")
    assert f"mcp.example.org resolves to {address}" in str(refused.value)
    assert ALLOWED_NETWORKS_SETTING in str(refused.value)
    NetworkPolicy((ipaddress.ip_network(f"{address}/{ip.max_prefixlen}"),)).check_ip(ip, host="x")
    EVERYTHING.check_ip(ip, host="mcp.example.org")


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed_without_any_allowed_networks(address: str) -> None:
    NOBODY.check_ip(ipaddress.ip_address(address), host="public.example.org")


@pytest.mark.anyio
async def test_a_public_name_with_one_metadata_address_among_its_answers_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def rebinding_dns(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("169.254.169.254")]

    monkeypatch.setattr(netguard, "resolve", rebinding_dns)
    with pytest.raises(AddressRefusedError, match="cloud metadata") as refused:
        await resolve_checked("mcp.example.org", 443, EVERYTHING)
    assert "mcp.example.org resolves to 169.254.169.254" in str(refused.value)


def test_allowed_networks_are_read_from_cidr_strings_and_blanks_are_skipped() -> None:
    policy = NetworkPolicy.from_strings([" 10.0.0.0/8", "", "fd00::/8 "])
    assert policy.allowed_networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
    )


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "intranet", "10.0.0.1/8"])
def test_a_bad_allowed_network_is_rejected_with_the_setting_and_the_value(cidr: str) -> None:
    with pytest.raises(ValueError, match=ALLOWED_NETWORKS_SETTING) as rejected:
        NetworkPolicy.from_strings([cidr])
    assert repr(cidr) in str(rejected.value)


# --- URL syntax ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http://user:pw@host/", "user name or password"),
        ("http:///nohost", "no host"),
        ("http://0251.0376.0251.0376/", "not a valid URL"),  # httpx: "Invalid IPv4 address"
        ("https://example.org/" + "a" * 2000, "at most 2000"),
    ],
)
def test_urls_that_are_not_plain_http_to_a_host_are_refused(url: str, reason: str) -> None:
    with pytest.raises(AddressRefusedError, match=reason) as refused:
        check_url_syntax(url)
    assert "pw" not in str(refused.value)


def test_a_plain_https_url_is_parsed() -> None:
    assert check_url_syntax("https://mcp.example.org:8443/mcp").port == 8443


# --- real HTTP on 127.0.0.1 ----------------------------------------------------------------


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"host": request.headers["host"], "team": request.headers.get("x-team")})


async def _jump(request: Request) -> RedirectResponse:
    return RedirectResponse(METADATA_URL, status_code=307)


APP = Starlette(routes=[Route("/ok", _echo), Route("/jump", _jump)])


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer(APP) as running:
        yield running


@pytest.mark.anyio
async def test_an_allowed_loopback_server_is_reached_with_its_original_host_header(
    server: ThreadedServer,
) -> None:
    factory = partial(guarded_client, LOOPBACK)  # as the MCP SDK's httpx_client_factory
    async with factory(headers={"X-Team": "blue"}, timeout=httpx.Timeout(5.0), auth=None) as c:
        by_name = await c.get(f"http://localhost:{server.port}/ok")
        by_short_form = await c.get(f"http://127.1:{server.port}/ok")
    assert by_name.status_code == 200
    assert by_name.json() == {"host": f"localhost:{server.port}", "team": "blue"}
    assert by_short_form.json()["host"] == f"127.1:{server.port}"


@pytest.mark.anyio
async def test_a_redirect_to_the_metadata_address_is_refused_before_connecting(
    server: ThreadedServer,
) -> None:
    async with guarded_client(LOOPBACK, timeout=httpx.Timeout(10.0)) as client:
        jump = await client.get(f"{server.base_url}/jump")
        assert jump.status_code == 307
        with anyio.fail_after(2), pytest.raises(AddressRefusedError, match="cloud metadata"):
            await client.get(jump.headers["location"])
        with anyio.fail_after(2), pytest.raises(AddressRefusedError, match="cloud metadata"):
            await client.get(f"{server.base_url}/jump", follow_redirects=True)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "host",
    ["0xa9fea9fe", "2852039166", "169.254.43518", "0251.0376.43518", "[::ffff:a9fe:a9fe]"],
)
async def test_the_client_refuses_metadata_spellings_that_httpx_lets_through(host: str) -> None:
    async with guarded_client(EVERYTHING) as client:
        with anyio.fail_after(2), pytest.raises(AddressRefusedError, match="cloud metadata"):
            await client.get(f"http://{host}/latest/meta-data/")


@pytest.mark.anyio
async def test_with_no_allowed_networks_the_loopback_server_is_refused(
    server: ThreadedServer,
) -> None:
    async with guarded_client(NOBODY) as client:
        with pytest.raises(AddressRefusedError, match="loopback address"):
            await client.get(f"{server.base_url}/ok")


@pytest.mark.anyio
async def test_each_request_is_resolved_again_and_sent_to_the_address_that_was_checked(
    server: ThreadedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["127.0.0.1", "169.254.169.254"])

    async def rebinding_dns(host: str, port: int) -> list[IPAddress]:
        assert host == "mcp.rebind.test"
        return [ipaddress.ip_address(next(answers))]

    monkeypatch.setattr(netguard, "resolve", rebinding_dns)
    url = f"http://mcp.rebind.test:{server.port}/ok"
    async with guarded_client(LOOPBACK) as client:
        first = await client.get(url)  # only reachable because the checked IP is used
        assert first.json()["host"] == f"mcp.rebind.test:{server.port}"
        with pytest.raises(AddressRefusedError, match="cloud metadata"):
            await client.get(url)


def _localhost_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the name `localhost` only (no IP address in it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.anyio
async def test_https_is_pinned_to_the_address_but_verified_against_the_name(
    tmp_path: Path,
) -> None:
    cert_path, key_path = _localhost_certificate(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert_path))
    tls = {"ssl_certfile": str(cert_path), "ssl_keyfile": str(key_path)}
    with ThreadedServer(APP, **tls) as server:
        transport = GuardedTransport(LOOPBACK, verify=trust)
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(f"https://localhost:{server.port}/ok")
        assert response.json()["host"] == f"localhost:{server.port}"
        # The control: the certificate does not name 127.0.0.1, so without SNI it would fail.
        async with httpx.AsyncClient(verify=trust) as plain:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await plain.get(f"https://127.0.0.1:{server.port}/ok")
