"""A forward proxy on 127.0.0.1:0 that records what passes through it, like smokescreen would.

Plain http requests arrive in absolute form (`POST http://host:port/path`) and are forwarded
on a fresh connection to the target, the answer relayed with keep-alive to the client.
`CONNECT host:port` opens a tunnel and pipes bytes both ways. With `credentials`, every
request and tunnel must carry the matching `Proxy-Authorization: Basic`, else 407; hosts in
`deny` are refused with 403 and an `X-Smokescreen-Error` header. Each connection the proxy
opens to a target records its local port in `upstream_ports`, so a test can tell that a
receiver's request came through the proxy (`Received.peer_port`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field

from harness.ports import LOOPBACK
from harness.streams import StreamServer

HEAD_LIMIT = 64 * 1024
_AUTH_REQUIRED = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
    b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
)
_DENIED = b"HTTP/1.1 403 Forbidden\r\nX-Smokescreen-Error: denied\r\nContent-Length: 0\r\n\r\n"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-connection"}


@dataclass(frozen=True)
class Passed:
    """One request or tunnel the proxy saw; `authorization` as the client sent it."""

    method: str
    target: str
    authorization: str | None
    allowed: bool


@dataclass
class ForwardProxy(StreamServer):
    credentials: tuple[str, str] | None = None
    deny: set[str] = field(default_factory=set)
    seen: list[Passed] = field(default_factory=list)
    upstream_ports: set[int] = field(default_factory=set)
    connections: int = 0  # connections clients opened to the proxy

    def __post_init__(self) -> None:
        super().__init__()

    def url(self, user: str | None = None, password: str | None = None) -> str:
        userinfo = f"{user}:{password}@" if user is not None else ""
        return f"http://{userinfo}{LOOPBACK}:{self.port}"

    def tunnels(self) -> list[Passed]:
        return [p for p in self.seen if p.method == "CONNECT"]

    def forwarded(self) -> list[Passed]:
        return [p for p in self.seen if p.method != "CONNECT"]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            while await self._one(reader, writer):
                pass

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False once the connection is done with."""
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, headers = _parse_head(head)
        host = _host_of(target) if method == "CONNECT" else _host_of(target.split("/")[2])
        verdict = self._verdict(host, headers.get("proxy-authorization"))
        self.seen.append(Passed(method, target, headers.get("proxy-authorization"), not verdict))
        if verdict:
            writer.write(verdict)
            await writer.drain()
            return False
        if method == "CONNECT":
            await self._tunnel(target, reader, writer)
            return False
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        await self._forward(method, target, head, body, writer)
        return True

    def _verdict(self, host: str, authorization: str | None) -> bytes:
        """The refusal to send, or b"" to let the request through."""
        if self.credentials is not None and authorization != _basic(*self.credentials):
            return _AUTH_REQUIRED
        if host in self.deny:
            return _DENIED
        return b""

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        self.upstream_ports.add(up_writer.get_extra_info("sockname")[1])
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _forward(
        self, method: str, target: str, head: bytes, body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        """On a new connection to the target, in origin form; the answer goes back whole."""
        authority, _, path = target.removeprefix("http://").partition("/")
        host, port = authority.rsplit(":", 1) if ":" in authority else (authority, "80")
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        self.upstream_ports.add(up_writer.get_extra_info("sockname")[1])
        try:
            up_writer.write(_origin_form(method, "/" + path, head) + body)
            answer = await up_reader.read(-1)
        finally:
            up_writer.close()
        writer.write(_relayed(answer))
        await writer.drain()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


def _host_of(authority: str) -> str:
    return authority.rsplit(":", 1)[0].strip("[]") if ":" in authority else authority


def _origin_form(method: str, path: str, head: bytes) -> bytes:
    """The request as the target sees it: origin form, hop-by-hop headers dropped, closed after."""
    _request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    kept = [line for line in lines if line.split(":", 1)[0].strip().lower() not in _HOP_BY_HOP]
    text = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""])
    return text.encode("latin-1")


def _relayed(answer: bytes) -> bytes:
    """The target's answer (read to its close) with fresh framing, so the client's connection
    to the proxy stays open."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    drop = _HOP_BY_HOP | {"content-length", "transfer-encoding"}
    kept = [line for line in lines if line.split(":", 1)[0].strip().lower() not in drop]
    text = "\r\n".join([status_line, *kept, f"Content-Length: {len(body)}", "", ""])
    return text.encode("latin-1") + body


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(64 * 1024):
            writer.write(data)
            await writer.drain()
    writer.close()
