"""The SSRF guard: address classes, URL syntax, and refusal inside a real aiohttp session.

Only loopback is ever connected to. Names are answered by a fake resolver, and sessions
that could reach a non-loopback address use a socket factory that never makes a socket.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.connector import AddrInfoType

from bridge.urlpolicy import (
    MAX_URL_LENGTH,
    AddressPolicy,
    UrlRefused,
    VettingResolver,
    check_url,
    forbidden_reason,
    parse_networks,
    refused_from,
)

DEFAULT_POLICY = AddressPolicy()

# --- forbidden_reason -------------------------------------------------------------------

FORBIDDEN = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("fec0::1", "private"),
    ("64:ff9b:1::a00:1", "private"),
    ("169.254.0.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.255", "cgnat"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.1", "documentation"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("2001:2::1", "benchmarking"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.1", "reserved"),
    ("192.88.99.1", "reserved"),
    ("100::1", "reserved"),
    ("2001::1", "reserved"),  # Teredo
    ("::102:304", "reserved"),  # IPv4-compatible ::1.2.3.4
    ("5f00::1", "reserved"),
    ("4000::1", "reserved"),  # outside global unicast 2000::/3
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    # IPv4-mapped, NAT64 and 6to4 forms are judged by the IPv4 address inside.
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("64:ff9b::a00:1", "private"),
    ("64:ff9b::7f00:1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("2002:a00:1::", "private"),
    ("2002:7f00:1::1", "loopback"),
    ("2002:a9fe:a9fe::", "metadata"),
]

# Data only: none of these is ever connected to.
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
def test_forbidden_reason(address: str, reason: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


# --- check_url --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "require_https"),
    [
        ("https://example.com/hooks/greenlight", True),
        ("http://example.com:8080/x?y=1#z", False),
        ("https://user:hunter2@example.com/", True),
        ("HTTPS://Example.COM/", True),
        ("https://example.com./", True),
        ("https://bücher.example/", True),
        ("http://1e100.net/", False),
        # Syntax only: the address policy is the resolver's and socket factory's job.
        ("http://127.0.0.1:9/", False),
        ("http://[::1]:9/", False),
        ("http://[::ffff:127.0.0.1]/", False),
        ("https://example.com/" + "a" * (MAX_URL_LENGTH - 20), True),
    ],
)
def test_check_url_accepts(url: str, require_https: bool) -> None:
    check_url(url, require_https=require_https)


@pytest.mark.parametrize(
    ("url", "require_https", "reason"),
    [
        ("ftp://example.com/", False, "URL scheme 'ftp' is not http or https"),
        ("file:///etc/passwd", False, "URL scheme 'file' is not http or https"),
        ("example.com/hook", False, "URL scheme '' is not http or https"),
        ("http:///path", False, "URL has no host"),
        ("http://example.com/", True, "example.com: https is required"),
        ("http://user:hunter2@example.com/", True, "example.com: https is required"),
        ("http://exa mple.com/", False, "URL contains whitespace or control characters"),
        ("http://example.com/\r\nX-Injected: 1", False, "URL contains whitespace"),
        ("\thttp://example.com/", False, "URL contains whitespace"),
        ("http://example.com/\x00", False, "URL contains whitespace or control characters"),
        ("http://example.com/\u00a0", False, "URL contains whitespace"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, False, "characters long, over 2048"),
        ("http://[::1/", False, "URL cannot be parsed"),
        ("http://user:hunter2@[::1/", False, "URL cannot be parsed"),
        ("http://[]@/", False, "URL cannot be parsed"),  # found by hypothesis: yarl IndexError
        ("http://user:hunter2@[::1]@/", False, "URL cannot be parsed"),
        ("http://example.com:99999/", False, "URL cannot be parsed"),
        ("http://example.com:port/", False, "URL cannot be parsed"),
        ("http://127.1/", False, "127.1: not a canonical IP address"),
        ("http://user:hunter2@127.1/", False, "127.1: not a canonical IP address"),
        ("http://2130706433/", False, "2130706433: not a canonical IP address"),
        ("http://0x7f.1/", False, "0x7f.1: not a canonical IP address"),
        ("http://0177.0.0.1/", False, "0177.0.0.1: not a canonical IP address"),
        ("http://example.123/", False, "example.123: not a canonical IP address"),
        ("http://[fe80::1%25eth0]/", False, "zone ids are not allowed"),
    ],
)
def test_check_url_refuses(url: str, require_https: bool, reason: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        check_url(url, require_https=require_https)
    assert reason in refused.value.reason
    assert "hunter2" not in refused.value.reason
    assert "\n" not in refused.value.reason


def test_check_url_reason_stays_short_for_long_hosts() -> None:
    host = "a" * 60 + "." + "b" * 60 + ".123"
    with pytest.raises(UrlRefused) as refused:
        check_url(f"http://{host}/", require_https=False)
    assert len(refused.value.reason) < 150


# --- UrlRefused and refused_from --------------------------------------------------------


def test_url_refused_is_an_oserror_with_its_reason() -> None:
    refused = UrlRefused("h: loopback address")
    assert isinstance(refused, OSError)
    assert refused.reason == str(refused) == refused.strerror == "h: loopback address"


def _raised_from(cause: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        return outer


def _raised_during(context: Exception) -> Exception:
    try:
        try:
            raise context
        except Exception:
            raise RuntimeError("while handling") from None
    except RuntimeError as outer:
        return outer


REFUSED = UrlRefused("x: private address")


@pytest.mark.parametrize(
    ("exc", "found"),
    [
        (REFUSED, REFUSED),
        (_raised_from(REFUSED), REFUSED),
        (_raised_during(REFUSED), REFUSED),
        (_raised_from(_raised_from(REFUSED)), REFUSED),
        (ExceptionGroup("many", [ValueError("v"), _raised_from(REFUSED)]), REFUSED),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), None),
        (_raised_from(OSError("plain")), None),
        (ValueError("unrelated"), None),
    ],
)
def test_refused_from(exc: BaseException, found: UrlRefused | None) -> None:
    assert refused_from(exc) is found


def test_refused_from_survives_cycles() -> None:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__context__, second.__context__ = second, first
    assert refused_from(first) is None


# --- VettingResolver and vetting_socket_factory, called directly -----------------------


def _result(name: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=name, host=address, port=port, family=family, proto=0, flags=0)


class FakeResolver(AbstractResolver):
    """Answers from a table, or from a list of tables for successive lookups of a name."""

    def __init__(self, answers: Mapping[str, Sequence[Sequence[str]]]) -> None:
        self._answers = answers
        self.lookups: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = self._answers[host]
        answer = answers[min(self.lookups.count(host), len(answers) - 1)]
        self.lookups.append(host)
        return [_result(host, address, port) for address in answer]

    async def close(self) -> None:
        self.closed = True


def fake(name: str, *addresses: str) -> FakeResolver:
    return FakeResolver({name: [addresses]})


async def test_resolver_returns_exactly_the_vetted_addresses() -> None:
    resolver = VettingResolver(DEFAULT_POLICY, fake("public.test", "8.8.8.8", "2606:4700::1111"))
    results = await resolver.resolve("public.test", 443, socket.AF_UNSPEC)
    assert results == [
        _result("public.test", "8.8.8.8", 443),
        _result("public.test", "2606:4700::1111", 443),
    ]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
async def test_resolver_refuses_every_forbidden_class(address: str, reason: str) -> None:
    resolver = VettingResolver(DEFAULT_POLICY, fake("rebind.test", "8.8.8.8", address))
    with pytest.raises(UrlRefused) as refused:
        await resolver.resolve("rebind.test", 443)
    assert refused.value.reason.startswith(f"rebind.test: resolves to {reason} address ")


async def test_resolver_refuses_unreadable_answers() -> None:
    resolver = VettingResolver(DEFAULT_POLICY, fake("odd.test", "not-an-address"))
    with pytest.raises(UrlRefused, match="unreadable"):
        await resolver.resolve("odd.test", 443)


async def test_resolver_closes_its_inner_resolver() -> None:
    inner = fake("public.test", "8.8.8.8")
    await VettingResolver(DEFAULT_POLICY, inner).close()
    assert inner.closed


def _addr_info(address: str, port: int = 443) -> AddrInfoType:
    if ":" in address:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
def test_socket_factory_refuses_every_forbidden_class(address: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        DEFAULT_POLICY.socket_factory(_addr_info(address))
    assert refused.value.reason == f"{address}: {reason} address"


def test_socket_factory_makes_an_unconnected_socket_for_public_addresses() -> None:
    with DEFAULT_POLICY.socket_factory(_addr_info("8.8.8.8")) as sock:
        assert sock.family == socket.AF_INET
        with pytest.raises(OSError, match=r"."):
            sock.getpeername()  # never connected


# --- AddressPolicy with WEBHOOK_ALLOWED_CIDRS --------------------------------------------


@pytest.mark.parametrize(
    ("cidrs", "address", "reason"),
    [
        (["10.1.0.0/16"], "10.1.2.3", None),
        (["10.1.0.0/16"], "10.2.0.1", "private"),
        (["10.1.0.0/16"], "::ffff:10.1.2.3", None),  # the mapped form reaches 10.1.2.3
        (["10.1.0.0/16"], "64:ff9b::a01:203", None),  # so does NAT64
        (["10.1.0.0/16"], "2002:a01:203::1", None),  # and 6to4
        (["10.1.0.0/16"], "::ffff:169.254.169.254", "metadata"),
        (["127.0.0.1"], "127.0.0.1", None),
        (["127.0.0.1"], "127.0.0.2", "loopback"),
        (["127.0.0.1"], "::1", "loopback"),
        (["::1"], "::1", None),
        (["fd00:1::/64"], "fd00:1::5", None),
        (["fd00:1::/64"], "fd00:2::5", "private"),
        (["169.254.169.254/32"], "169.254.169.254", None),  # the operator's explicit choice
        ([], "8.8.8.8", None),
    ],
)
def test_allowed_cidrs_lift_the_ban_for_their_addresses_only(
    cidrs: list[str], address: str, reason: str | None
) -> None:
    assert AddressPolicy(cidrs).reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize("cidr", ["banana", "10.0.0.1/8", "10.0.0.0/33", "::1/129", ""])
def test_parse_networks_names_the_bad_entry(cidr: str) -> None:
    with pytest.raises(ValueError, match="is not a CIDR network"):
        parse_networks([cidr])


async def test_allowed_cidrs_apply_to_every_resolved_address() -> None:
    policy = AddressPolicy(["10.1.0.0/16"])
    allowed = VettingResolver(policy, fake("internal.test", "10.1.0.7"))
    assert [r["host"] for r in await allowed.resolve("internal.test", 443)] == ["10.1.0.7"]
    mixed = VettingResolver(policy, fake("mixed.test", "10.1.0.7", "10.2.0.7"))
    with pytest.raises(UrlRefused, match=r"mixed.test: resolves to private address 10.2.0.7"):
        await mixed.resolve("mixed.test", 443)


def test_allowed_cidrs_apply_to_ip_literals() -> None:
    policy = AddressPolicy(["192.168.7.0/24"])
    with policy.socket_factory(_addr_info("192.168.7.9")) as sock:
        assert sock.family == socket.AF_INET
    with pytest.raises(UrlRefused, match=r"192.168.8.9: private address"):
        policy.socket_factory(_addr_info("192.168.8.9"))


# --- inside a real aiohttp session ------------------------------------------------------


@dataclass
class Receiver:
    port: int
    hits: list[str] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """An aiohttp server on 127.0.0.1 that counts what reaches it."""

    async def handle(request: web.Request) -> web.Response:
        found.hits.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found = Receiver(port=runner.addresses[0][1])
    yield found
    await runner.cleanup()


class NeverConnects:
    """Socket factory for tests: records the address aiohttp would call, makes no socket."""

    def __init__(self) -> None:
        self.addresses: list[str] = []

    def __call__(self, addr_info: AddrInfoType) -> socket.socket:
        self.addresses.append(str(addr_info[4][0]))
        raise OSError(errno.ENETUNREACH, "test never connects outside loopback")


TIMEOUT = aiohttp.ClientTimeout(total=10)


async def _post(connector: aiohttp.TCPConnector, url: str) -> aiohttp.ClientError:
    """POST through a fresh session and return the client error it must raise."""
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        return await _post_in(session, url)


async def _post_in(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientError:
    with pytest.raises(aiohttp.ClientError) as raised:
        async with session.post(url, data=b"{}"):
            pass
    return raised.value


def vetted(
    inner: AbstractResolver | None = None, policy: AddressPolicy = DEFAULT_POLICY
) -> aiohttp.TCPConnector:
    return aiohttp.TCPConnector(
        resolver=VettingResolver(policy, inner), socket_factory=policy.socket_factory
    )


async def test_the_receiver_is_reachable_without_the_guard(receiver: Receiver) -> None:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(f"http://127.0.0.1:{receiver.port}/", data=b"{}") as response,
    ):
        assert response.status == 200
    assert receiver.hits == ["/"]


async def test_ip_literal_is_refused_by_the_socket_factory(receiver: Receiver) -> None:
    error = await _post(vetted(), f"http://127.0.0.1:{receiver.port}/")
    assert isinstance(error, aiohttp.ClientConnectorError)
    assert not isinstance(error, aiohttp.ClientConnectorDNSError)
    refused = refused_from(error)
    assert refused is not None
    assert refused.reason == "127.0.0.1: loopback address"
    assert error.os_error is refused
    assert receiver.hits == []


async def test_ipv6_literal_is_refused_before_connecting() -> None:
    error = await _post(vetted(), "http://[::1]:9/")
    refused = refused_from(error)
    assert refused is not None
    assert refused.reason == "::1: loopback address"


async def test_localhost_is_refused_by_the_resolver(receiver: Receiver) -> None:
    # The real ThreadedResolver: localhost comes from the hosts file, no network.
    error = await _post(vetted(), f"http://localhost:{receiver.port}/")
    assert isinstance(error, aiohttp.ClientConnectorDNSError)
    refused = refused_from(error)
    assert refused is not None
    assert refused.reason.startswith("localhost: resolves to loopback address ")
    assert error.os_error is refused
    assert receiver.hits == []


def _resolver_guarded(inner: AbstractResolver) -> tuple[aiohttp.TCPConnector, NeverConnects]:
    never = NeverConnects()
    connector = aiohttp.TCPConnector(
        resolver=VettingResolver(DEFAULT_POLICY, inner), socket_factory=never, use_dns_cache=False
    )
    return connector, never


REBIND_ADDRESSES = [
    "10.0.0.1",
    "169.254.169.254",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",
    "2002:a00:1::",
    "100.64.0.1",
    "224.0.0.1",
    "fe80::1",
    "::",
    "0.0.0.0",
    "192.0.2.1",
    "198.18.0.1",
    "240.0.0.1",
    "255.255.255.255",
]


@pytest.mark.parametrize(
    "addresses",
    [*([address] for address in REBIND_ADDRESSES), ["8.8.8.8", "10.0.0.1"], REBIND_ADDRESSES],
)
async def test_forbidden_names_are_refused_in_the_resolver(addresses: list[str]) -> None:
    inner = fake("rebind.test", *addresses)
    connector, never = _resolver_guarded(inner)
    error = await _post(connector, "https://rebind.test/hook")
    assert isinstance(error, aiohttp.ClientConnectorDNSError)
    refused = refused_from(error)
    assert refused is not None
    assert refused.reason.startswith("rebind.test: resolves to ")
    assert inner.lookups == ["rebind.test"]
    assert never.addresses == []  # refused before any socket was asked for


async def test_aiohttp_calls_exactly_the_vetted_addresses() -> None:
    connector, never = _resolver_guarded(fake("public.test", "8.8.8.8", "2606:4700::1111"))
    error = await _post(connector, "http://public.test/hook")
    assert refused_from(error) is None  # a plain connection error stays one
    assert sorted(never.addresses) == ["2606:4700::1111", "8.8.8.8"]


async def test_a_rebinding_answer_is_refused_not_called() -> None:
    inner = FakeResolver({"rebind.test": [["8.8.8.8"], ["127.0.0.1"]]})
    connector, never = _resolver_guarded(inner)
    async with aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
        errors = [await _post_in(session, "http://rebind.test/") for _ in range(2)]
    assert refused_from(errors[0]) is None
    refused = refused_from(errors[1])
    assert refused is not None
    assert refused.reason == "rebind.test: resolves to loopback address 127.0.0.1"
    assert never.addresses == ["8.8.8.8"]


async def test_a_plain_connection_error_is_not_a_refusal() -> None:
    with socket.socket() as probe:  # bound, never listening, then closed: nothing answers
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await _post(aiohttp.TCPConnector(), f"http://127.0.0.1:{port}/")
    assert isinstance(error, aiohttp.ClientConnectorError)
    assert refused_from(error) is None


async def test_allowed_loopback_cidr_reaches_the_receiver(receiver: Receiver) -> None:
    connector = vetted(policy=AddressPolicy(["127.0.0.0/8"]))
    async with (
        aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session,
        session.post(f"http://127.0.0.1:{receiver.port}/", data=b"{}") as response,
    ):
        assert response.status == 200
    assert receiver.hits == ["/"]


async def test_localhost_is_refused_while_any_of_its_addresses_is_not_allowed(
    receiver: Receiver,
) -> None:
    # localhost may also resolve to ::1: allowing only 127.0.0.0/8 is then not enough.
    inner = fake("localhost", "127.0.0.1", "::1")
    error = await _post(
        vetted(inner, AddressPolicy(["127.0.0.0/8"])), f"http://localhost:{receiver.port}/"
    )
    refused = refused_from(error)
    assert refused is not None
    assert refused.reason == "localhost: resolves to loopback address ::1"
    assert receiver.hits == []
