"""The response side of HTTP/1.x, pure: llhttp (through `httptools`) fed bytes as they arrive.

The bridge only needs a response's status line, four headers (`Retry-After`, `Connection`,
`Keep-Alive`, the receiver's signal `webhook-delivery`) and where its body ends, so that the
connection can carry the next request. llhttp does the framing (status line, header syntax,
Content-Length, chunks, trailers); this module keeps the bridge's rules around it. Bodies are
counted, never kept: past MAX_BODY_BYTES the parser stops and the connection is closed
instead.

A receiver decides how many bytes it sends, so every byte of a response counts against one
budget, MAX_RESPONSE_BYTES: heads (interim 1xx ones too), chunk-size lines and their
extensions, trailers and the body. Once it is spent the response ends there: cut after its
final head (the status stands, the connection is not reused), refused before it. A single
head may not pass MAX_HEAD_BYTES. The bytes are never assumed to be text: what the caller sees
of them is decoded so that it cannot fail. httptools' exceptions become ResponseError in
`_response_error` and nowhere else.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import httptools

MAX_HEAD_BYTES = 64 * 1024  # one head, interim or final
MAX_BODY_BYTES = 64 * 1024  # body data; the rest of the response is then left unread
# Every byte a response may make the bridge read, framing and interim heads included.
MAX_RESPONSE_BYTES = MAX_HEAD_BYTES + MAX_BODY_BYTES
_HEAD_END = b"\r\n\r\n"  # llhttp refuses bare LF line endings, so every head ends so
_NO_BODY_STATUSES = frozenset({204, 304})
_VERSIONS = frozenset({"1.0", "1.1"})  # llhttp also takes 0.9 and 2.0 status lines
_WANTED = frozenset(
    {b"content-length", b"transfer-encoding", b"connection", b"retry-after", b"keep-alive"}
    | {b"webhook-delivery"}
)
_KEEP_ALIVE_TIMEOUT = re.compile(rb"(?:^|[\s,;])timeout\s*=\s*\"?([0-9]{1,9})(?![0-9])", re.I)


class ResponseError(Exception):
    """The receiver's answer is not an HTTP/1.x response this parser can read."""


class Head(NamedTuple):
    status: int
    retry_after: str | None
    signal: str | None = None  # `webhook-delivery`, lower case (SPEC §11)


class _AfterTheEnd(Exception):
    """Raised in a callback to stop llhttp: another message starts after the response."""


class ResponseParser:
    """One response: `head` once the head is in, `complete` once the body has ended.

    `keep_alive` says whether the connection may carry another request afterwards, and
    `keep_alive_s` how long the server said it may stay idle first. Informational (1xx) heads
    are skipped; bytes after the end make the connection unfit for reuse. The `on_*` methods
    are llhttp's callbacks.
    """

    def __init__(self) -> None:
        self.head: Head | None = None
        self.complete = False
        self.keep_alive = False
        self.keep_alive_s: int | None = None
        self.bytes_read = 0
        self._llhttp = httptools.HttpResponseParser(self)
        self._fields: dict[bytes, bytes] = {}
        self._until_close = False
        self._body_read = 0
        # Where the open head started, for MAX_HEAD_BYTES: llhttp reports no offsets.
        self._in_head = True
        self._head_bytes = 0  # of the open head, in earlier feeds
        self._data = b""  # the bytes being fed
        self._mark = 0  # where in them the open head starts
        self._tail = b""  # the end of the previous feed, where a blank line may begin

    def feed(self, data: bytes) -> None:
        if self.complete:  # bytes nobody asked for: the connection cannot be trusted again
            self.keep_alive = False
            return
        room = MAX_RESPONSE_BYTES - self.bytes_read
        self.bytes_read += len(data)
        self._parse(data if len(data) <= room else data[:room])
        if self._in_head:
            self._count_open_head()
        if self.complete:
            return
        if self._body_read > MAX_BODY_BYTES:
            self._finish(keep_alive=False)
        elif self.bytes_read > MAX_RESPONSE_BYTES:
            self._out_of_budget()

    def eof(self) -> None:
        """The peer closed: a body delimited by the close ends here; anything else is cut."""
        if self.complete:
            return
        if self.head is not None and self._until_close:
            self._finish(keep_alive=False)
            return
        self.keep_alive = False
        raise ResponseError("connection closed before the end of the response")

    def _parse(self, data: bytes) -> None:
        self._data = data
        try:
            self._llhttp.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            if not self.complete:
                raise _response_error(error) from None
            self.keep_alive = False  # bytes after the end, or another protocol after a 101

    def _count_open_head(self) -> None:
        self._head_bytes += len(self._data) - self._mark
        self._mark = 0
        self._tail = self._data[-3:]
        if self._head_bytes > MAX_HEAD_BYTES:
            raise ResponseError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")

    def _close_head(self) -> None:
        """The head llhttp just ended must fit MAX_HEAD_BYTES; the next one starts after it."""
        end = self._head_end()
        if self._head_bytes + end - self._mark > MAX_HEAD_BYTES:
            raise ResponseError(f"response head larger than {MAX_HEAD_BYTES // 1024} KiB")
        self._head_bytes = 0
        self._mark = end

    def _head_end(self) -> int:
        """The offset just past the blank line of that head in the bytes being fed."""
        if self._head_bytes and not self._mark:  # the blank line may straddle two feeds
            straddling = (self._tail + self._data[:3]).find(_HEAD_END)
            if straddling >= 0:
                return straddling + len(_HEAD_END) - len(self._tail)
        return self._data.find(_HEAD_END, self._mark) + len(_HEAD_END)

    def on_message_begin(self) -> None:
        if self.complete:
            raise _AfterTheEnd

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if self._in_head and key in _WANTED:  # not trailers: they cannot change the framing
            seen = self._fields.get(key)
            self._fields[key] = value if seen is None else seen + b", " + value

    def on_headers_complete(self) -> None:
        self._close_head()
        status = self._llhttp.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._fields = {}  # an interim head: the final one is still to come
            return
        self._in_head = False
        self._start(status, self._llhttp.get_http_version())

    def on_body(self, body: bytes) -> None:
        self._body_read += len(body)

    def on_message_complete(self) -> None:
        if not self._in_head:
            self.complete = True

    def _start(self, status: int, version: str) -> None:
        if version not in _VERSIONS:
            raise ResponseError(f"unsupported HTTP version {version}")
        fields = self._fields
        retry_after, signal = fields.get(b"retry-after"), fields.get(b"webhook-delivery")
        self.head = Head(
            status,
            None if retry_after is None else as_text(retry_after.strip()),
            None if signal is None else as_text(signal.strip().lower()),
        )
        connection = fields.get(b"connection", b"").lower()
        # llhttp's should_keep_alive() turns False once the message is complete
        self.keep_alive = version == "1.1" and b"close" not in connection and status != 101
        self.keep_alive_s = keep_alive_timeout_s(fields.get(b"keep-alive"))
        self._until_close = until_close(status, fields)

    def _out_of_budget(self) -> None:
        """The response has cost all it may: after the final head it ends here, before, it fails."""
        if self.head is None:
            raise ResponseError(f"no final response head in {MAX_RESPONSE_BYTES // 1024} KiB")
        self._finish(keep_alive=False)

    def _finish(self, keep_alive: bool) -> None:
        self.complete = True
        self.keep_alive = keep_alive


def _response_error(error: Exception) -> ResponseError:
    """What an httptools exception means here; the only place they are translated.

    An error raised in one of our callbacks comes back as the context of a callback error."""
    if isinstance(error.__context__, ResponseError):
        return error.__context__
    if isinstance(error, httptools.HttpParserUpgrade):
        return ResponseError("unexpected protocol upgrade")
    return ResponseError(f"invalid response: {error}")


def as_text(value: bytes) -> str:
    """A header value for people and lenient parsers: bytes that are not ASCII become U+FFFD."""
    return value.decode("ascii", "replace")


def keep_alive_timeout_s(value: bytes | None) -> int | None:
    """The idle time granted by `Keep-Alive: timeout=N` (RFC 2068 §19.7.1.1), if readable."""
    found = None if value is None else _KEEP_ALIVE_TIMEOUT.search(value)
    return None if found is None else int(found[1])


def until_close(status: int, fields: dict[bytes, bytes]) -> bool:
    """Whether the body ends only when the connection closes (RFC 9112 §6.3), as llhttp reads
    it: then it never completes the message, and `eof` has to."""
    encoding = fields.get(b"transfer-encoding")
    if encoding is not None:
        return encoding.lower().rsplit(b",", 1)[-1].strip() != b"chunked"
    return status not in _NO_BODY_STATUSES and b"content-length" not in fields
