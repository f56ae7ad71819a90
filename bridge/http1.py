"""The response side of HTTP/1.x, pure: a parser fed bytes as they arrive (no I/O here).

The bridge only needs a response's status line, three headers (`Retry-After`, `Connection`,
`Keep-Alive`) and where its body ends, so that the connection can carry the next request.
Bodies are counted, never kept: past MAX_BODY_BYTES the parser stops and the connection is
closed instead.

A receiver decides how many bytes it sends, so every byte of a response counts against one
budget, MAX_RESPONSE_BYTES: heads (interim 1xx ones too), chunk-size lines and their
extensions, trailers and the body. Once it is spent the response ends there: cut after its
final head (the status stands, the connection is not reused), refused before it. The bytes are
never assumed to be text: what the caller sees of them is decoded so that it cannot fail.
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_HEAD_BYTES = 64 * 1024  # one head, interim or final
MAX_BODY_BYTES = 64 * 1024  # body data; the rest of the response is then left unread
# Every byte a response may make the bridge read, framing and interim heads included.
MAX_RESPONSE_BYTES = MAX_HEAD_BYTES + MAX_BODY_BYTES
MAX_CHUNK_LINE_BYTES = 4096
_NO_BODY_STATUSES = frozenset({204, 304})
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_WANTED = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"retry-after", b"keep-alive"}
)
_KEEP_ALIVE_TIMEOUT = re.compile(rb"(?:^|[\s,;])timeout\s*=\s*\"?([0-9]{1,9})(?![0-9])", re.I)
_DIGITS = re.compile(rb"[0-9]{1,18}")  # longer ones are refused before int() could choke


class ResponseError(Exception):
    """The receiver's answer is not an HTTP/1.x response this parser can read."""


class Head(NamedTuple):
    status: int
    retry_after: str | None


class ParsedHead(NamedTuple):
    status: int
    http11: bool
    fields: dict[bytes, bytes]


def parse_head(block: bytes) -> ParsedHead:
    """The status line and the wanted header fields of a head (without its final CRLFCRLF)."""
    status_line, *lines = block.split(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    code = rest[:3]
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or not code.isdigit() or rest[3:4] not in b" ":
        raise ResponseError(f"bad status line {status_line[:40]!r}")
    fields: dict[bytes, bytes] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name[-1:] in b" \t":
            raise ResponseError(f"bad header line {line[:40]!r}")
        key = name.lower()
        if key in _WANTED:
            _add_field(fields, key, value.strip())
    return ParsedHead(int(code), version == b"HTTP/1.1", fields)


def _add_field(fields: dict[bytes, bytes], key: bytes, value: bytes) -> None:
    seen = fields.get(key)
    if seen is None:
        fields[key] = value
    elif key == b"content-length" and seen != value:
        raise ResponseError("conflicting Content-Length headers")
    elif key != b"content-length":
        fields[key] = seen + b", " + value


class ResponseParser:
    """One response: `head` once the head is in, `complete` once the body has ended.

    `keep_alive` says whether the connection may carry another request afterwards, and
    `keep_alive_s` how long the server said it may stay idle first. Informational (1xx) heads
    are skipped; bytes after the end make the connection unfit for reuse.
    """

    def __init__(self) -> None:
        self.head: Head | None = None
        self.complete = False
        self.keep_alive = False
        self.keep_alive_s: int | None = None
        self.bytes_read = 0
        self._buffer = bytearray()
        self._body_read = 0
        self._framing: _Framing | None = None

    def feed(self, data: bytes) -> None:
        if self.complete:  # bytes nobody asked for: the connection cannot be trusted again
            self.keep_alive = False
            return
        room = MAX_RESPONSE_BYTES - self.bytes_read
        self.bytes_read += len(data)
        self._buffer += data if len(data) <= room else data[:room]
        if self._framing is None:
            self._read_head()
        if self._framing is not None:
            self._read_body()
        if self.bytes_read > MAX_RESPONSE_BYTES:
            self._out_of_budget()

    def eof(self) -> None:
        """The peer closed: a body delimited by the close ends here; anything else is cut."""
        if isinstance(self._framing, _UntilClose):
            self._finish(keep_alive=False)
        elif not self.complete:
            self.keep_alive = False
            raise ResponseError("connection closed before the end of the response")

    def _read_head(self) -> None:
        while self._framing is None:
            end = self._buffer.find(b"\r\n\r\n", 0, MAX_HEAD_BYTES + 4)
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    raise ResponseError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")
                return
            parsed = parse_head(bytes(self._buffer[:end]))
            del self._buffer[: end + 4]
            if not 100 <= parsed.status < 200 or parsed.status == 101:
                self._start(parsed)

    def _start(self, parsed: ParsedHead) -> None:
        retry_after = parsed.fields.get(b"retry-after")
        self.head = Head(parsed.status, None if retry_after is None else as_text(retry_after))
        self._framing = framing_of(parsed)
        connection = parsed.fields.get(b"connection", b"").lower()
        self.keep_alive = parsed.http11 and b"close" not in connection
        self.keep_alive_s = keep_alive_timeout_s(parsed.fields.get(b"keep-alive"))

    def _read_body(self) -> None:
        assert self._framing is not None
        taken = self._framing.take(self._buffer)
        self._body_read += taken
        if self._framing.done:
            self._finish(self.keep_alive and not self._buffer)
        elif self._body_read > MAX_BODY_BYTES:
            self._finish(keep_alive=False)

    def _out_of_budget(self) -> None:
        """The response has cost all it may: after the final head it ends here, before, it fails."""
        if self.head is None:
            raise ResponseError(f"no final response head in {MAX_RESPONSE_BYTES // 1024} KiB")
        self._finish(keep_alive=False)

    def _finish(self, keep_alive: bool) -> None:
        self.complete = True
        self.keep_alive = keep_alive
        self._buffer.clear()


def as_text(value: bytes) -> str:
    """A header value for people and lenient parsers: bytes that are not ASCII become U+FFFD."""
    return value.decode("ascii", "replace")


def keep_alive_timeout_s(value: bytes | None) -> int | None:
    """The idle time granted by `Keep-Alive: timeout=N` (RFC 2068 §19.7.1.1), if readable."""
    found = None if value is None else _KEEP_ALIVE_TIMEOUT.search(value)
    return None if found is None else int(found[1])


def framing_of(parsed: ParsedHead) -> _Framing:
    """How the body of this response ends (RFC 9112 §6.3)."""
    encoding = parsed.fields.get(b"transfer-encoding")
    if encoding is not None:
        if encoding.lower().rsplit(b",", 1)[-1].strip() != b"chunked":
            return _UntilClose()
        return _Chunked()
    if parsed.status in _NO_BODY_STATUSES:
        return _Length(0)
    length = parsed.fields.get(b"content-length")
    if length is None:
        return _UntilClose()
    if not _DIGITS.fullmatch(length):
        raise ResponseError(f"bad Content-Length {length[:20]!r}")
    return _Length(int(length))


class _Framing:
    done = False

    def take(self, buffer: bytearray) -> int:
        """Consume body bytes from `buffer`; returns how many body bytes were taken."""
        raise NotImplementedError


class _Length(_Framing):
    def __init__(self, length: int) -> None:
        self._left = length
        self.done = length == 0

    def take(self, buffer: bytearray) -> int:
        taken = min(self._left, len(buffer))
        del buffer[:taken]
        self._left -= taken
        self.done = self._left == 0
        return taken


class _UntilClose(_Framing):
    def take(self, buffer: bytearray) -> int:
        taken = len(buffer)
        buffer.clear()
        return taken


class _Chunked(_Framing):
    """Chunk sizes, data and trailers; data is counted and dropped."""

    def __init__(self) -> None:
        self._data_left = 0  # data bytes of the current chunk still to come, then its CRLF
        self._in_trailers = False

    def take(self, buffer: bytearray) -> int:
        taken = 0
        while not self.done and buffer:
            if self._data_left:
                taken += self._take_data(buffer)
            elif not self._take_line(buffer):
                break
        return taken

    def _take_data(self, buffer: bytearray) -> int:
        step = min(self._data_left, len(buffer))
        del buffer[:step]
        self._data_left -= step
        return step

    def _take_line(self, buffer: bytearray) -> bool:
        end = buffer.find(b"\r\n")
        if end < 0:
            if len(buffer) > MAX_CHUNK_LINE_BYTES:
                raise ResponseError("chunk line too long")
            return False
        line = bytes(buffer[:end])
        del buffer[: end + 2]
        if self._in_trailers:
            self.done = not line
        else:
            self._chunk_size(line)
        return True

    def _chunk_size(self, line: bytes) -> None:
        text = line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(text):
            raise ResponseError(f"bad chunk size {text[:20]!r}")
        size = int(text, 16)
        if size == 0:
            self._in_trailers = True
        else:
            self._data_left = size + 2  # the data and the CRLF that ends it
