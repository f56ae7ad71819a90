"""Deliveries through the egress proxy (WEBHOOK_PROXY_URL): the CONNECT tunnel and refusals.

An http:// target is asked of the proxy in absolute form on a keep-alive connection to it
(`bridge.delivery.client`). An https:// target gets a connection of its own: CONNECT
host:port to the proxy, then TLS with the target inside the tunnel (SNI and certificate
checked against the target's name), then requests as on a direct connection; one tunnel per
connection, reused while it lives. `Proxy-Authorization` goes to the proxy only: on the
CONNECT request or a forwarded http request, never inside a tunnel.

A proxy that says no (a CONNECT answered other than 2xx, or 407 to a forwarded request) fails
the attempt with ProxyRefused, naming the proxy by host:port, never its credentials.
"""

from __future__ import annotations

import asyncio
import re
import ssl

from bridge.config.proxy import ProxyUrl
from bridge.delivery.http1 import as_text

CONNECT_ANSWER_MAX_BYTES = 16 * 1024  # the head of the proxy's answer to CONNECT
PROXY_AUTH_REQUIRED = 407
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: ([^\r\n]{0,80}))?")
_HEAD_END = b"\r\n\r\n"


class ProxyRefused(Exception):
    """The proxy answered `status` instead of tunnelling or forwarding; one line for people."""

    def __init__(self, proxy: ProxyUrl, target: str, status: int, reason: str = "") -> None:
        said = f"{status} {reason}".strip()
        super().__init__(f"proxy {proxy.endpoint} refused {target}: {said}")
        self.status = status


class ProxyAnswerError(Exception):
    """The proxy gave no readable answer to CONNECT; the message names it by host:port."""


def connect_request(proxy: ProxyUrl, authority: str) -> bytes:
    """`CONNECT host:port`, with the proxy's credentials when it has them."""
    lines = [f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"]
    if proxy.authorization is not None:
        lines.append(f"Proxy-Authorization: {proxy.authorization.reveal()}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("ascii")


def parse_answer(head: bytes) -> tuple[int, str]:
    """(status, reason phrase) of the proxy's answer head; ProxyAnswerError if unreadable."""
    found = _STATUS_LINE.match(head)
    if found is None:
        raise ProxyAnswerError("answered CONNECT with something other than HTTP/1.x")
    return int(found[1]), as_text(found[2] or b"")


class ConnectAnswer(asyncio.Protocol):
    """Reads the proxy's answer head to CONNECT; the tunnel's bytes come after it."""

    def __init__(self) -> None:
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(_HEAD_END)
        if end >= 0 and end + len(_HEAD_END) != len(self._buffer):
            self._fail(ProxyAnswerError("sent bytes after its answer to CONNECT"))
        elif end >= 0:
            self._settle(self._buffer)
        elif len(self._buffer) > CONNECT_ANSWER_MAX_BYTES:
            self._fail(ProxyAnswerError("answered CONNECT with too large a head"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ProxyAnswerError("closed the connection before answering CONNECT"))

    def _settle(self, head: bytes) -> None:
        if not self.head.done():
            self.head.set_result(head)

    def _fail(self, error: Exception) -> None:
        if not self.head.done():
            self.head.set_exception(error)


async def tunnel(
    proxy: ProxyUrl, authority: str, transport: asyncio.Transport, answer: ConnectAnswer
) -> None:
    """Ask for a tunnel to `authority` on a fresh connection to the proxy; raise ProxyRefused
    unless it says 2xx."""
    transport.write(connect_request(proxy, authority))
    try:
        status, reason = parse_answer(await answer.head)
    except ProxyAnswerError as error:
        raise ProxyAnswerError(f"proxy {proxy.endpoint} {error}") from None
    if status // 100 != 2:
        raise ProxyRefused(proxy, f"CONNECT {authority}", status, reason)


async def start_tls(
    transport: asyncio.Transport,
    protocol: asyncio.Protocol,
    context: ssl.SSLContext,
    server_name: str,
) -> asyncio.Transport:
    """TLS with the target over the tunnel; `protocol` is told of the new transport."""
    loop = asyncio.get_running_loop()
    secured = await loop.start_tls(transport, protocol, context, server_hostname=server_name)
    if secured is None:  # only when the transport closed meanwhile
        raise ConnectionResetError("the proxy closed the tunnel")
    protocol.connection_made(secured)
    return secured
