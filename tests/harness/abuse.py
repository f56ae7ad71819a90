"""A hostile webhook receiver on 127.0.0.1:0, speaking raw HTTP/1.1 over asyncio streams.

Each path misbehaves in its own way once the request has been read:

    /endless       200, then a chunked body that never ends
    /endless-500   500, then a chunked body that never ends
    /continue-forever   `100 Continue` heads, one after another, never a final status
    /trailers-forever   200, a chunked body, then a trailer section that never ends
    /extensions-forever 200, then chunks of five bytes, each behind a 4 KiB chunk extension
    /not-utf8      200 whose reason phrase and `Retry-After` are bytes that are not UTF-8
    /silent        never answers
    /drip          the status line one byte at a time, never finishing the headers
    /drip-body     200 with a 1 MiB Content-Length, then the body one byte at a time
    /redirect      302 to the cloud metadata address
    /redirect-here 302 to /stolen on this receiver
    /reset         closes the connection with a TCP reset
    /idle-close    200 OK, keep-alive; the next request on a connection idle for more than
                   IDLE_CLOSE_S is read and the connection closed unanswered: what a client
                   sees when the receiver's idle close crosses its request on the wire
    anything else  200 OK

`hits` counts requests per path; `closed_by_client` counts streaming responses that ended
because the client hung up, which is how a test sees that the bridge stopped reading, and
`sent` the bytes handed to the socket for them, which is how it sees how much it read.
`closed_idle` counts requests dropped by /idle-close.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import Counter
from collections.abc import Awaitable, Callable

from harness.ports import LOOPBACK
from harness.streams import StreamServer

DRIP_INTERVAL_S = 0.05
IDLE_CLOSE_S = 0.2
CHUNK = b"x" * 4096
CHUNKED_200 = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
TRAILER = b"X-Trailer: " + b"t" * 1000 + b"\r\n"
EXTENDED_CHUNK = b"5;" + b"e" * 4000 + b"\r\nhello\r\n"
Behaviour = Callable[[asyncio.StreamWriter], Awaitable[None]]


class AbusiveReceiver(StreamServer):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.hits: Counter[str] = Counter()
        self.closed_by_client: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.closed_idle = 0
        self._behaviours: dict[str, Behaviour] = {
            "/endless": lambda w: self._endless(w, "/endless", 200),
            "/endless-500": lambda w: self._endless(w, "/endless-500", 500),
            "/continue-forever": lambda w: self._stream(
                w, "/continue-forever", b"", b"HTTP/1.1 100 Continue\r\n\r\n"
            ),
            "/trailers-forever": lambda w: self._stream(
                w, "/trailers-forever", CHUNKED_200 + b"2\r\nok\r\n0\r\n", TRAILER
            ),
            "/extensions-forever": lambda w: self._stream(
                w, "/extensions-forever", CHUNKED_200, EXTENDED_CHUNK
            ),
            "/not-utf8": _not_utf8,
            "/silent": self._silent,
            "/drip": self._drip,
            "/drip-body": self._drip_body,
            "/redirect": lambda w: _redirect(w, "http://169.254.169.254/latest/meta-data/"),
            "/redirect-here": lambda w: _redirect(w, self.url("/stolen")),
            "/reset": self._reset,
        }

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while path := await _read_request(reader):
                self.hits[path] += 1
                if path == "/idle-close":
                    await self._close_when_idle(reader, writer)
                    break
                behaviour = self._behaviours.get(path, _ok)
                await behaviour(writer)
                if path in self._behaviours:
                    break  # misbehaving answers never leave the connection reusable

    async def _endless(self, writer: asyncio.StreamWriter, path: str, status: int) -> None:
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
        await self._stream(writer, path, head.encode(), chunk)

    async def _stream(
        self, writer: asyncio.StreamWriter, path: str, first: bytes, repeated: bytes
    ) -> None:
        """`first`, then `repeated` again and again until the client hangs up."""
        writer.write(first)
        self.sent[path] += len(first)
        piece = repeated * max(1, len(CHUNK) // len(repeated))  # fewer, larger writes
        try:
            while True:
                writer.write(piece)
                self.sent[path] += len(piece)
                await writer.drain()
        except ConnectionError:
            self.closed_by_client[path] += 1

    async def _close_when_idle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer each request on this connection until one comes after IDLE_CLOSE_S idle."""
        loop = asyncio.get_running_loop()
        while True:
            await _ok(writer)
            answered_s = loop.time()
            path = await _read_request(reader)
            if not path:
                return
            self.hits[path] += 1
            if loop.time() - answered_s > IDLE_CLOSE_S:
                self.closed_idle += 1
                return

    async def _silent(self, writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    async def _drip(self, writer: asyncio.StreamWriter) -> None:
        await _drip_forever(writer, b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 10_000_000)

    async def _drip_body(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n")
        await _drip_forever(writer, b"x" * 1048576)

    async def _reset(self, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> str:
    """Read one request; its path, or "" when the client closed the connection."""
    line = await reader.readline()
    if not line:
        return ""
    path = line.split(b" ")[1].decode()
    length = 0
    while (header := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return path


async def _redirect(writer: asyncio.StreamWriter, location: str) -> None:
    # "Connection: close": the client must not put this connection back in its pool
    head = f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nConnection: close\r\n"
    head += "Content-Length: 0\r\n\r\n"
    writer.write(head.encode())
    await writer.drain()


async def _not_utf8(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 \xc3(\r\nRetry-After: \xff\xfe\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()


async def _ok(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()


async def _drip_forever(writer: asyncio.StreamWriter, data: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        for index in range(len(data)):
            writer.write(data[index : index + 1])
            await writer.drain()
            await asyncio.sleep(DRIP_INTERVAL_S)
