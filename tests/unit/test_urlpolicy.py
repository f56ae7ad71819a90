"""The SSRF guard: address classes, URL syntax, and refusal by the bridge's own HTTP client.

The address tables are pure. The client tests run `bridge.delivery.client.Client` with a fake
`resolve` (a table of name -> answers) or the system resolver for IP literals and localhost,
against a loopback receiver. Every connection the client tries is seen on the event loop,
and only loopback ones are let through: nothing else is ever connected to.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import pytest
from harness.receiver import Receiver

from bridge.delivery.attempt import AttemptResult, Request, Sender
from bridge.delivery.client import Client, ConnectFailed, Resolve
from bridge.delivery.http1 import Head
from bridge.policy.urls import (
    MAX_URL_LENGTH,
    AddressPolicy,
    UrlRefused,
    check_url,
    forbidden_reason,
    parse_networks,
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
        # Syntax only: which addresses may be called is AddressPolicy's job.
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


# --- UrlRefused -------------------------------------------------------------------------


def test_url_refused_carries_its_reason() -> None:
    refused = UrlRefused("h: loopback address")
    assert refused.reason == str(refused) == "h: loopback address"
    assert not isinstance(refused, OSError)  # never taken for a failed connect


# --- AddressPolicy.vet_all: a name's answers, pure ----------------------------------------


def test_vet_all_returns_exactly_the_vetted_addresses_once_each() -> None:
    answers = ["8.8.8.8", "2606:4700::1111", "8.8.8.8"]
    assert DEFAULT_POLICY.vet_all("public.test", answers) == ["8.8.8.8", "2606:4700::1111"]


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
def test_one_forbidden_answer_refuses_the_name(address: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        DEFAULT_POLICY.vet_all("rebind.test", ["8.8.8.8", address])
    assert refused.value.reason.startswith(f"rebind.test: resolves to {reason} address ")


@pytest.mark.parametrize(("address", "reason"), FORBIDDEN)
def test_ip_literals_are_refused_by_their_class(address: str, reason: str) -> None:
    # An IP literal resolves to itself; the reason then names it once.
    with pytest.raises(UrlRefused) as refused:
        DEFAULT_POLICY.vet_all(address, [address])
    assert refused.value.reason == f"{address}: {reason} address"


def test_unreadable_answers_are_refused() -> None:
    with pytest.raises(UrlRefused, match=r"odd.test: resolved to an unreadable address"):
        DEFAULT_POLICY.vet_all("odd.test", ["not-an-address"])


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


def test_allowed_cidrs_apply_to_every_resolved_address() -> None:
    policy = AddressPolicy(["10.1.0.0/16"])
    assert policy.vet_all("internal.test", ["10.1.0.7"]) == ["10.1.0.7"]
    with pytest.raises(UrlRefused, match=r"mixed.test: resolves to private address 10.2.0.7"):
        policy.vet_all("mixed.test", ["10.1.0.7", "10.2.0.7"])


def test_allowed_cidrs_apply_to_ip_literals() -> None:
    policy = AddressPolicy(["192.168.7.0/24"])
    assert policy.vet_all("192.168.7.9", ["192.168.7.9"]) == ["192.168.7.9"]
    with pytest.raises(UrlRefused, match=r"^192.168.8.9: private address$"):
        policy.vet_all("192.168.8.9", ["192.168.8.9"])


# --- in the bridge's HTTP client, against a loopback receiver ------------------------------

LOOPBACK_ONLY = AddressPolicy(["127.0.0.1/32"])  # lets one loopback address be called
TIMEOUT_S = 10.0


class FakeDns:
    """A `resolve` answering from a table; successive lookups of a name take successive
    answers, the last one repeating. Unknown names fail as the system resolver's do."""

    def __init__(self, answers: Mapping[str, Sequence[Sequence[str]]]) -> None:
        self._answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self._answers.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(answers[min(self.lookups.count(host), len(answers)) - 1])


def dns(name: str, *addresses: str) -> FakeDns:
    return FakeDns({name: [addresses]})


Attempts = list[tuple[str, int]]  # every (host, port) the client tried to connect to


@pytest.fixture
async def attempts(monkeypatch: pytest.MonkeyPatch) -> Attempts:
    """Records each connection attempt on the running loop; refuses any but loopback."""
    loop = asyncio.get_running_loop()
    connect = loop.create_connection
    seen: Attempts = []

    async def recording(factory: Any, host: str, port: int, **options: Any) -> Any:
        seen.append((host, port))
        if not ipaddress.ip_address(host).is_loopback:  # a name fails here too: no lookup
            raise OSError(errno.ENETUNREACH, "this test never connects outside loopback")
        return await connect(factory, host, port, **options)

    monkeypatch.setattr(loop, "create_connection", recording)
    return seen


MakeClient = Callable[..., Client]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """`make_client(policy, resolve)` builds a Client; all are closed at teardown."""
    made: list[Client] = []

    def make(policy: AddressPolicy = DEFAULT_POLICY, resolve: Resolve | None = None) -> Client:
        made.append(Client(policy, max_idle=4, resolve=resolve))
        return made[-1]

    yield make
    for client in made:
        client.close()


async def post(client: Client, url: str, *, vetted: bool = True) -> Head:
    headers = {"Content-Type": "application/json"}
    return await client.post(url, b"{}", headers, vetted=vetted, timeout_s=TIMEOUT_S)


async def refusal(client: Client, url: str) -> str:
    with pytest.raises(UrlRefused) as refused:
        await post(client, url)
    return refused.value.reason


async def test_the_receiver_is_reachable_without_the_guard(
    make_client: MakeClient, receiver: Receiver, attempts: Attempts
) -> None:
    assert await post(make_client(), receiver.url("/hook"), vetted=False) == Head(200, None)
    assert receiver.count("/hook") == 1
    assert attempts == [("127.0.0.1", receiver.port)]


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]"])
async def test_ip_literals_are_refused_before_connecting(
    make_client: MakeClient, receiver: Receiver, attempts: Attempts, host: str
) -> None:
    # The system resolver: an IP literal goes through it and is vetted like any answer.
    reason = await refusal(make_client(), f"http://{host}:{receiver.port}/hook")
    assert reason == f"{host.strip('[]')}: loopback address"
    assert receiver.count() == 0
    assert attempts == []


async def test_localhost_is_refused_by_the_system_resolver(
    make_client: MakeClient, receiver: Receiver, attempts: Attempts
) -> None:
    # localhost comes from the hosts file: no network.
    reason = await refusal(make_client(), f"http://localhost:{receiver.port}/hook")
    assert reason.startswith("localhost: resolves to loopback address ")
    assert receiver.count() == 0
    assert attempts == []


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
    [*([address] for address in REBIND_ADDRESSES), ["127.0.0.1", "10.0.0.1"], REBIND_ADDRESSES],
)
async def test_forbidden_names_are_refused_before_any_connection(
    make_client: MakeClient, receiver: Receiver, attempts: Attempts, addresses: list[str]
) -> None:
    # 127.0.0.1 is allowed here: a guard that picked the allowed answer would hit the receiver.
    resolve = dns("rebind.test", *addresses)
    client = make_client(LOOPBACK_ONLY, resolve)
    reason = await refusal(client, f"http://rebind.test:{receiver.port}/hook")
    assert reason.startswith("rebind.test: resolves to ")
    assert resolve.lookups == ["rebind.test"]
    assert attempts == []
    assert receiver.count() == 0


async def test_the_client_connects_to_exactly_the_vetted_addresses(
    make_client: MakeClient, receiver: Receiver, attempts: Attempts
) -> None:
    resolve = dns("hooks.test", "127.0.0.1", "127.0.0.1")
    client = make_client(LOOPBACK_ONLY, resolve)
    assert await post(client, f"http://hooks.test:{receiver.port}/hook") == Head(200, None)
    assert attempts == [("127.0.0.1", receiver.port)]
    [request] = receiver.received("/hook")
    assert request.headers["Host"] == f"hooks.test:{receiver.port}"  # the name, not the address


def rebinding_dns() -> FakeDns:
    """Allowed (under LOOPBACK_ONLY) at the first lookup, private from the second on."""
    return FakeDns({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})


async def test_a_rebinding_answer_is_refused_not_called(
    make_client: MakeClient, receiver: Receiver, attempts: Attempts
) -> None:
    receiver.reply("/hook", 200, headers={"Connection": "close"})  # the next POST reconnects
    resolve = rebinding_dns()
    client = make_client(LOOPBACK_ONLY, resolve)
    url = f"http://rebind.test:{receiver.port}/hook"
    assert await post(client, url) == Head(200, None)
    assert await refusal(client, url) == "rebind.test: resolves to private address 10.0.0.1"
    assert resolve.lookups == ["rebind.test", "rebind.test"]
    assert attempts == [("127.0.0.1", receiver.port)]
    assert receiver.count("/hook") == 1


async def test_a_kept_alive_connection_returns_to_its_vetted_address_without_a_lookup(
    make_client: MakeClient, receiver: Receiver, attempts: Attempts
) -> None:
    resolve = rebinding_dns()
    client = make_client(LOOPBACK_ONLY, resolve)
    url = f"http://rebind.test:{receiver.port}/hook"
    for _ in range(2):
        assert await post(client, url) == Head(200, None)
    assert resolve.lookups == ["rebind.test"]
    assert attempts == [("127.0.0.1", receiver.port)]
    assert receiver.count("/hook") == 2


async def test_allowed_loopback_cidr_reaches_the_receiver(
    make_client: MakeClient, receiver: Receiver, attempts: Attempts
) -> None:
    client = make_client(AddressPolicy(["127.0.0.0/8"]))  # the system resolver
    assert await post(client, receiver.url("/hook")) == Head(200, None)
    assert receiver.count("/hook") == 1
    assert attempts == [("127.0.0.1", receiver.port)]


async def test_localhost_is_refused_while_any_of_its_addresses_is_not_allowed(
    make_client: MakeClient, receiver: Receiver, attempts: Attempts
) -> None:
    # localhost may also resolve to ::1: allowing only 127.0.0.0/8 is then not enough.
    client = make_client(AddressPolicy(["127.0.0.0/8"]), dns("localhost", "127.0.0.1", "::1"))
    reason = await refusal(client, f"http://localhost:{receiver.port}/hook")
    assert reason == "localhost: resolves to loopback address ::1"
    assert receiver.count() == 0
    assert attempts == []


def closed_port() -> int:
    with socket.socket() as probe:  # bound, never listening, then closed: nothing answers
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",  # the system resolver
        "hooks.test",
        "nowhere.test",  # the lookup itself fails
    ],
)
async def test_a_plain_connection_error_is_not_a_refusal(
    make_client: MakeClient, attempts: Attempts, host: str
) -> None:
    resolve = None if host == "127.0.0.1" else dns("hooks.test", "127.0.0.1")
    port = closed_port()
    with pytest.raises(ConnectFailed) as failure:
        await post(make_client(LOOPBACK_ONLY, resolve), f"http://{host}:{port}/hook")
    assert (failure.value.host, failure.value.port) == (host, port)
    assert attempts == ([] if host == "nowhere.test" else [("127.0.0.1", port)])


async def deliver_to_closed_port(allow_private_urls: bool) -> tuple[AttemptResult, int]:
    sender = Sender(
        timeout_s=TIMEOUT_S, pool_size=4, allow_private_urls=allow_private_urls, require_https=False
    )
    port = closed_port()
    result = await sender.post(Request(f"http://127.0.0.1:{port}/hook", b"{}", {}, False))
    await sender.close()
    return result, port


async def test_the_sender_reports_a_refusal_as_blocked(attempts: Attempts) -> None:
    result, _port = await deliver_to_closed_port(allow_private_urls=False)
    assert (result.outcome, result.message) == ("blocked", "127.0.0.1: loopback address")
    assert attempts == []


async def test_the_sender_reports_a_closed_port_as_a_connection_error(
    attempts: Attempts,
) -> None:
    result, port = await deliver_to_closed_port(allow_private_urls=True)
    assert result.outcome == "connection_error"
    assert result.message.endswith(f"(127.0.0.1:{port})")  # its start depends on the loop
    assert attempts == [("127.0.0.1", port)]
