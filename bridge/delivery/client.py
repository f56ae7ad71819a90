"""A lean HTTP/1.1 client for webhook POSTs: keep-alive connections per origin, nothing more.

aiohttp's client cost a third of a whole delivery's CPU (docs/performance.md). A webhook POST
needs none of its generality: no redirects, cookies, proxies, compression or streaming, and
only the status line and a few headers of the answer. This client writes the request in one
buffer and parses the answer with `bridge.delivery.http1`.

Connections to names that must be vetted (per-job URLs) are opened to exactly the resolved
addresses the URL policy accepted, with the name kept for TLS (SNI and certificate checks).
With an egress proxy (`bridge.delivery.proxy`) every connection goes to the proxy, which
resolves the name itself: a vetted URL's host is still resolved and vetted here first (an IP
literal is vetted as it is), and a name this host cannot resolve is left to the proxy.

A pooled connection may have been closed by the receiver while idle, its close still on the
wire when the next request leaves. A request that gets not one byte back on a reused
connection is therefore sent once more on a new one, within the same deadline: that is the
receiver's idle timeout, not its answer. A connection is not reused past the idle time the
receiver grants in `Keep-Alive: timeout=N`, less a margin.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import TypeVar, cast

from yarl import URL

from bridge.config.proxy import ProxyUrl
from bridge.delivery import proxy as via
from bridge.delivery.http1 import Head, ResponseError, ResponseParser
from bridge.policy.urls import AddressPolicy

IDLE_KEEPALIVE_S = 15.0  # an idle connection older than this is closed, not reused
# Taken off a receiver's `Keep-Alive: timeout`: its idle timer started before ours did, and
# a request needs time to reach it.
KEEP_ALIVE_MARGIN_S = 1.0
INLINE_BODY_BYTES = 16 * 1024  # smaller bodies are copied into the head's buffer: one write
Origin = tuple[bool, str, str, int]  # (vetted, scheme, host, port)
Resolve = Callable[[str, int], Awaitable[list[str]]]  # (host, port) → addresses, as text


class Disconnected(Exception):
    """The receiver closed the connection before a complete response head; `unanswered` when
    not one byte of a response had come."""

    def __init__(self, message: str, *, unanswered: bool = False) -> None:
        super().__init__(message)
        self.unanswered = unanswered


class ConnectFailed(OSError):
    """No connection could be opened to host:port; `cause` is the last OS error. `where`
    names it for people: `host:port`, or `proxy host:port` when the proxy failed us."""

    def __init__(self, host: str, port: int, cause: OSError, *, proxy: bool = False) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.host, self.port, self.cause = host, port, cause
        shown = f"[{host}]" if ":" in host else host
        self.where = f"proxy {shown}:{port}" if proxy else f"{host}:{port}"


class ParsedUrl:
    """A URL as this client uses it: where to connect and what the request line says."""

    def __init__(self, url: str) -> None:
        parsed = URL(url)
        host = parsed.raw_host or ""
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.tls = parsed.scheme == "https"
        self.host, self.port = host, port
        shown = f"[{host}]" if ":" in host else host
        self.host_header = shown if parsed.is_default_port() else f"{shown}:{port}"
        self.path = parsed.raw_path_qs or "/"
        self.authority = f"{shown}:{port}"
        self.authorization = _basic_auth(parsed)

    def origin(self, vetted: bool) -> Origin:
        return (vetted, "https" if self.tls else "http", self.host, self.port)

    def request(
        self, body: bytes, headers: dict[str, str], forward: ProxyUrl | None = None
    ) -> list[bytes]:
        """The bytes of a POST: the head, then the body (joined when small). Asked of a
        forward proxy (`forward`), the target is in absolute form, with the proxy's
        credentials."""
        target = self.path if forward is None else f"http://{self.host_header}{self.path}"
        lines = [f"POST {target} HTTP/1.1\r\nHost: {self.host_header}\r\n"]
        if forward is not None and forward.authorization is not None:
            lines.append(f"Proxy-Authorization: {forward.authorization.reveal()}\r\n")
        if self.authorization is not None:
            lines.append(f"Authorization: {self.authorization}\r\n")
        lines += [f"{name}: {value}\r\n" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        text = "".join(lines)
        breaks = len(lines) + 2  # the first and the last element end two lines each
        if text.count("\n") != breaks or text.count("\r") != breaks:
            raise ValueError("a header or the URL path holds a line break")
        head = text.encode("utf-8")
        return [head + body] if len(body) <= INLINE_BODY_BYTES else [head, body]


def _basic_auth(url: URL) -> str | None:
    """Credentials in the URL become an Authorization header, as aiohttp sent them."""
    if url.user is None:
        return None
    raw = f"{url.user}:{url.password or ''}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@lru_cache(maxsize=4096)
def parse_url(url: str) -> ParsedUrl:
    return ParsedUrl(url)


async def system_resolve(host: str, port: int) -> list[str]:
    """The system resolver's addresses for a name; an IP literal resolves to itself."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Connection(asyncio.Protocol):
    """One keep-alive connection; carries one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None
        self.lost = False
        self.idle_limit_s = IDLE_KEEPALIVE_S
        self.reusable_until = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._want_end = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self.parser is None:  # nothing was asked: an idle connection must stay silent
            self.close()
            return
        try:
            self.parser.feed(data)
        except ResponseError as error:
            self.close()
            self._wake(error)
            return
        self._progress()

    def eof_received(self) -> bool:
        self._end()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._end()

    def _end(self) -> None:
        """The peer closed: a body delimited by the close is complete; a missing head is not."""
        parser = self.parser
        if parser is None:
            return
        try:
            parser.eof()
        except ResponseError:
            if parser.head is not None:  # the status stands; only the body was cut
                self._wake(None)
            else:
                self._wake(Disconnected("server disconnected", unanswered=not parser.bytes_read))
            return
        self._progress()

    def _progress(self) -> None:
        parser = self.parser
        if parser is None:
            return
        if parser.complete or (parser.head is not None and not self._want_end):
            self._wake(None)

    def _wake(self, error: Exception | None) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)

    async def send(self, chunks: list[bytes], deadline: float) -> Head:
        """Write a request; return once the response head is in (TimeoutError at `deadline`)."""
        if self.lost or self.transport is None:
            raise Disconnected("server disconnected", unanswered=True)
        parser = self.parser = ResponseParser()
        self._want_end = False
        self.transport.writelines(chunks)
        if parser.head is None:
            await self._wait(deadline)
        assert parser.head is not None
        return parser.head

    async def finish(self, deadline: float) -> bool:
        """Wait for the end of the body until `deadline`; True when the connection can carry
        another request. The status already decided the outcome: a body that is cut, bad or
        late only costs the connection."""
        parser = self.parser
        assert parser is not None
        if not parser.complete and not self.lost:
            self._want_end = True
            try:
                await self._wait(deadline)
            except (ResponseError, TimeoutError):
                return False
        self.parser = None
        if parser.keep_alive_s is not None:
            self.idle_limit_s = min(IDLE_KEEPALIVE_S, parser.keep_alive_s - KEEP_ALIVE_MARGIN_S)
        return parser.complete and parser.keep_alive and not self.lost

    async def _wait(self, deadline: float) -> None:
        """Until woken; a plain timer rather than asyncio.timeout, which costs more per call."""
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        timer = loop.call_at(deadline, self._wake, TimeoutError())
        try:
            await self._waiter
        finally:
            timer.cancel()
            self._waiter = None

    def reusable(self, now: float) -> bool:
        return not self.lost and self.reusable_until > now

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Idle connections per origin, newest reused first; stale ones closed on the way."""

    def __init__(self, max_idle: int) -> None:
        self._idle: dict[Origin, collections.deque[Connection]] = {}
        self._max_idle = max_idle
        self._count = 0

    def take(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            self._count -= 1
            if connection.reusable(now):
                return connection
            connection.close()
        return None

    def give(self, origin: Origin, connection: Connection) -> None:
        if connection.lost or connection.idle_limit_s <= 0 or self._count >= self._max_idle:
            connection.close()
            return
        connection.reusable_until = time.monotonic() + connection.idle_limit_s
        self._idle.setdefault(origin, collections.deque()).append(connection)
        self._count += 1

    def sweep(self) -> None:
        """Close what has been idle too long and forget origins with nothing left."""
        now = time.monotonic()
        for origin, idle in list(self._idle.items()):
            for connection in idle:
                if not connection.reusable(now):
                    connection.close()  # which marks it lost
            kept = collections.deque(c for c in idle if not c.lost)
            self._count -= len(idle) - len(kept)
            if kept:
                self._idle[origin] = kept
            else:
                del self._idle[origin]

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
        self._count = 0


class Client:
    """POSTs over pooled connections; `vetted` ones connect only to addresses the policy accepts."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        max_idle: int,
        resolve: Resolve | None = None,
        proxy: ProxyUrl | None = None,
    ) -> None:
        self._policy = policy
        self._proxy = proxy
        self._resolve = resolve or system_resolve  # tests answer names from a table
        self._pool = Pool(max_idle)
        self._tls = ssl.create_default_context()
        self._sweeper: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._pool.sweep()
        self._sweeper = asyncio.get_running_loop().call_later(IDLE_KEEPALIVE_S, self.start)

    def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        self._pool.close()

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, vetted: bool, timeout_s: float
    ) -> Head:
        """The response head; the body is then read (and dropped) until `timeout_s` at most."""
        parsed = parse_url(url)
        forward = self._proxy if self._proxy is not None and not parsed.tls else None
        chunks = parsed.request(body, headers, forward)
        origin = parsed.origin(vetted)
        deadline = asyncio.get_running_loop().time() + timeout_s
        head = await self._send(parsed, vetted, origin, chunks, deadline)
        if forward is not None and head.status == via.PROXY_AUTH_REQUIRED:
            raise via.ProxyRefused(forward, parsed.authority, head.status)
        return head

    async def _send(
        self, parsed: ParsedUrl, vetted: bool, origin: Origin, chunks: list[bytes], deadline: float
    ) -> Head:
        pooled = self._pool.take(origin)
        if pooled is not None:
            try:
                return await self._exchange(pooled, origin, chunks, deadline)
            except Disconnected as error:
                if not error.unanswered:
                    raise
                # closed by the receiver while idle: no answer, so not an attempt of its own
        async with asyncio.timeout_at(deadline):
            connection = await self._open(parsed, vetted)
        return await self._exchange(connection, origin, chunks, deadline)

    async def _exchange(
        self, connection: Connection, origin: Origin, chunks: list[bytes], deadline: float
    ) -> Head:
        """One request and its response on `connection`, which goes back to the pool if it may."""
        reusable = False
        try:
            head = await connection.send(chunks, deadline)
            reusable = await connection.finish(deadline)
        finally:
            if reusable:
                self._pool.give(origin, connection)
            else:
                connection.close()
        return head

    async def _open(self, parsed: ParsedUrl, vetted: bool) -> Connection:
        if self._proxy is not None:
            if vetted:
                await self._vet_before_proxy(parsed)
            return await self._open_via(self._proxy, parsed)
        loop = asyncio.get_running_loop()
        hosts = await self._vetted_addresses(parsed) if vetted else [parsed.host]
        tls = self._tls if parsed.tls else None
        error: OSError = ConnectionError("no address")
        for host in hosts:
            try:
                _, connection = await loop.create_connection(
                    Connection,
                    host,
                    parsed.port,
                    ssl=tls,
                    server_hostname=parsed.host if tls else None,
                )
                return connection
            except OSError as failure:
                error = failure
        raise ConnectFailed(parsed.host, parsed.port, error)

    async def _vetted_addresses(self, parsed: ParsedUrl) -> list[str]:
        """Every address of the name, each vetted: one forbidden answer refuses the name."""
        try:
            addresses = await self._resolve(parsed.host, parsed.port)
        except OSError as error:
            raise ConnectFailed(parsed.host, parsed.port, error) from error
        return self._policy.vet_all(parsed.host, addresses)

    async def _vet_before_proxy(self, parsed: ParsedUrl) -> None:
        """What the bridge can judge before the proxy resolves the name again: an IP literal,
        or the addresses this host resolves the name to. One it cannot resolve is the proxy's
        to judge (its own vetting is the boundary: a DNS answer may change in between)."""
        try:
            addresses = await self._resolve(parsed.host, parsed.port)
        except OSError:
            return
        self._policy.vet_all(parsed.host, addresses)

    async def _open_via(self, proxy: ProxyUrl, parsed: ParsedUrl) -> Connection:
        """A connection to the proxy: as it is for http, tunnelled and secured for https."""
        if not parsed.tls:
            _, connection = await _connect_to(proxy, Connection)
            return connection
        transport, answer = await _connect_to(proxy, via.ConnectAnswer)
        try:
            return await self._through(proxy, parsed, transport, answer)
        except BaseException:
            transport.close()
            raise

    async def _through(
        self,
        proxy: ProxyUrl,
        parsed: ParsedUrl,
        transport: asyncio.Transport,
        answer: via.ConnectAnswer,
    ) -> Connection:
        """CONNECT, then TLS with the target inside the tunnel."""
        await via.tunnel(proxy, parsed.authority, transport, answer)
        connection = Connection()
        try:
            await via.start_tls(transport, connection, self._tls, parsed.host)
        except OSError as error:  # ssl.SSLError among them
            raise ConnectFailed(parsed.host, parsed.port, error) from error
        return connection


P = TypeVar("P", bound=asyncio.Protocol)


async def _connect_to(proxy: ProxyUrl, protocol: Callable[[], P]) -> tuple[asyncio.Transport, P]:
    try:
        transport, made = await asyncio.get_running_loop().create_connection(
            protocol, proxy.host, proxy.port
        )
    except OSError as error:
        raise ConnectFailed(proxy.host, proxy.port, error, proxy=True) from error
    return transport, made
