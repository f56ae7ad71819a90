"""The HTTP client through a forward proxy: the request forms, refusals, what is still vetted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness.proxy import ForwardProxy
from harness.receiver import Receiver
from harness.tls import make_tls_files

from bridge.config.proxy import ProxyUrl, parse_proxy_url
from bridge.delivery.attempt import describe_error
from bridge.delivery.client import Client, ConnectFailed, ParsedUrl
from bridge.delivery.proxy import ProxyAnswerError, ProxyRefused, connect_request, parse_answer
from bridge.policy.urls import AddressPolicy, UrlRefused

NAMES = {"hooks.example.com": ["93.184.215.14"], "inward.example.com": ["10.1.2.3"]}


async def _table(host: str, _port: int) -> list[str]:
    """A resolver answering from NAMES (an IP literal resolves to itself), else failing."""
    if ":" in host or host[0].isdigit():
        return [host]
    if host not in NAMES:
        raise OSError(-2, "Name or service not known")
    return NAMES[host]


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    server = ForwardProxy(deny={"denied.example.com"})
    await server.start()
    yield server
    await server.stop()


def _client(proxy: ProxyUrl) -> Client:
    return Client(AddressPolicy(), max_idle=4, resolve=_table, proxy=proxy)


async def _post(client: Client, url: str, vetted: bool = False) -> int:
    head = await client.post(url, b"{}", {"X-A": "1"}, vetted=vetted, timeout_s=5)
    return head.status


def test_a_forwarded_request_is_in_absolute_form_with_the_proxy_credentials() -> None:
    proxy = parse_proxy_url("http://u:p@proxy:3128")
    head = ParsedUrl("http://hooks.example.com/h?x=1").request(b"{}", {}, proxy)[0]
    assert head.startswith(b"POST http://hooks.example.com/h?x=1 HTTP/1.1\r\n")
    assert b"\r\nHost: hooks.example.com\r\n" in head
    assert b"\r\nProxy-Authorization: Basic dTpw\r\n" in head
    direct = ParsedUrl("https://u2:p2@hooks.example.com:8443/h").request(b"{}", {})[0]
    assert direct.startswith(b"POST /h HTTP/1.1\r\nHost: hooks.example.com:8443\r\n")
    assert b"Proxy-Authorization" not in direct


def test_connect_names_the_target_and_carries_the_credentials() -> None:
    proxy = parse_proxy_url("http://u:p@proxy:3128")
    assert connect_request(proxy, "[::1]:443") == (
        b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n"
    )
    bare = parse_proxy_url("http://proxy:3128")
    assert connect_request(bare, "h:443") == b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"


@pytest.mark.parametrize(
    ("head", "answer"),
    [
        (b"HTTP/1.1 200 Connection established\r\n\r\n", (200, "Connection established")),
        (b"HTTP/1.0 200\r\n\r\n", (200, "")),
        (
            b"HTTP/1.1 407 Proxy Authentication Required\r\nX: y\r\n\r\n",
            (407, "Proxy Authentication Required"),
        ),
        (b"HTTP/1.1 403 \xffbad\r\n\r\n", (403, "\ufffdbad")),
    ],
)
def test_the_answer_to_connect(head: bytes, answer: tuple[int, str]) -> None:
    assert parse_answer(head) == answer


@pytest.mark.parametrize("head", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/2 200\r\n\r\n", b""])
def test_an_unreadable_answer_to_connect(head: bytes) -> None:
    with pytest.raises(ProxyAnswerError):
        parse_answer(head)


async def test_http_goes_through_the_proxy(proxy: ForwardProxy, receiver: Receiver) -> None:
    client = _client(parse_proxy_url(proxy.url()))
    assert await _post(client, receiver.url("/a")) == 200
    assert await _post(client, receiver.url("/b")) == 200
    client.close()
    assert [p.target for p in proxy.forwarded()] == [receiver.url("/a"), receiver.url("/b")]
    assert all(r.peer_port in proxy.upstream_ports for r in receiver.received())
    assert proxy.connections == 1


async def test_a_refused_connect_names_the_proxy(proxy: ForwardProxy) -> None:
    client = _client(parse_proxy_url(proxy.url()))
    with pytest.raises(ProxyRefused) as refused:
        await _post(client, "https://denied.example.com/h")
    client.close()
    assert describe_error(refused.value) == (
        f"proxy 127.0.0.1:{proxy.port} refused CONNECT denied.example.com:443: 403 Forbidden"
    )


async def test_a_proxy_that_is_down_is_named() -> None:
    client = _client(parse_proxy_url("http://127.0.0.1:9"))
    with pytest.raises(ConnectFailed) as failed:
        await _post(client, "http://hooks.example.com/h")
    assert describe_error(failed.value) == "connection refused (proxy 127.0.0.1:9)"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/h", "10.0.0.1: private address"),
        ("https://[::ffff:127.0.0.1]/h", "loopback address"),
        ("http://inward.example.com/h", "inward.example.com: resolves to private address"),
    ],
)
async def test_vetted_urls_are_judged_before_the_proxy_sees_them(
    proxy: ForwardProxy, url: str, reason: str
) -> None:
    client = _client(parse_proxy_url(proxy.url()))
    with pytest.raises(UrlRefused, match=reason):
        await _post(client, url, vetted=True)
    assert proxy.seen == []


async def test_a_name_this_host_cannot_resolve_is_left_to_the_proxy(proxy: ForwardProxy) -> None:
    client = _client(parse_proxy_url(proxy.url()))
    with pytest.raises(ProxyRefused):
        await _post(client, "https://denied.example.com/h", vetted=True)
    assert [p.target for p in proxy.tunnels()] == ["denied.example.com:443"]


async def test_tls_inside_the_tunnel_is_checked_against_the_target_name(
    proxy: ForwardProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = make_tls_files(tmp_path)
    receiver = Receiver(tls=files.server_context())
    await receiver.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(files.ca))
        trusting = _client(parse_proxy_url(proxy.url()))
        assert await _post(trusting, receiver.url("/t", host="localhost")) == 200
        monkeypatch.setenv("SSL_CERT_FILE", str(files.other_ca))
        distrusting = _client(parse_proxy_url(proxy.url()))
        with pytest.raises(ConnectFailed) as failed:
            await _post(distrusting, receiver.url("/t", host="localhost"))
    finally:
        await receiver.stop()
    assert (
        describe_error(failed.value)
        == f"tls: certificate verify failed (localhost:{receiver.port})"
    )
    assert receiver.count() == 1
