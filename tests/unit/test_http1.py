"""The response parser: heads, every body framing, and limits, fed whole and byte by byte."""

from __future__ import annotations

import pytest

from bridge.http1 import MAX_HEAD_BYTES, Head, ResponseError, ResponseParser

MAX_BODY = 64

# raw response → (head, complete after feeding, keep_alive)
CASES: list[tuple[bytes, Head, bool, bool]] = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Head(200, None), True, True),
    (b"HTTP/1.1 204 No Content\r\n\r\n", Head(204, None), True, True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", Head(200, None), True, True),
    (b"HTTP/1.1 200\r\ncontent-length: 2\r\n\r\nok", Head(200, None), True, True),
    (b"HTTP/1.1 500 Oops\r\nContent-Length: 10\r\n\r\nhalf", Head(500, None), False, True),
    (
        b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n",
        Head(503, "7"),
        True,
        True,
    ),
    (
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        Head(200, None),
        True,
        False,
    ),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Head(200, None), True, False),
    (b"HTTP/1.1 200 OK\r\n\r\nuntil the close", Head(200, None), False, False),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        Head(200, None),
        True,
        True,
    ),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n",
        Head(200, None),
        True,
        True,
    ),
    (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        Head(200, None),
        False,
        True,
    ),
    (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        Head(201, None),
        True,
        True,
    ),
    (
        b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
        Head(302, None),
        True,
        True,
    ),
]


def feed_in_pieces(raw: bytes, size: int) -> ResponseParser:
    parser = ResponseParser(MAX_BODY)
    for start in range(0, len(raw), size):
        parser.feed(raw[start : start + size])
    return parser


@pytest.mark.parametrize(("raw", "head", "complete", "keep_alive"), CASES)
@pytest.mark.parametrize("piece", [1, 2, 3, 7, 1 << 20])
def test_responses_parse_however_they_are_split(
    raw: bytes, head: Head, complete: bool, keep_alive: bool, piece: int
) -> None:
    parser = feed_in_pieces(raw, piece)
    assert parser.head == head
    assert parser.complete is complete
    if complete:
        assert parser.keep_alive is keep_alive


def test_a_body_until_the_close_ends_at_eof_and_is_not_reused() -> None:
    parser = feed_in_pieces(b"HTTP/1.1 200 OK\r\n\r\nsome body", 4)
    parser.eof()
    assert parser.complete
    assert not parser.keep_alive


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf",
        b"HTTP/1.1 200 OK\r\nContent",
        b"",
    ],
)
def test_a_close_before_the_end_is_an_error(raw: bytes) -> None:
    parser = feed_in_pieces(raw, 3) if raw else ResponseParser(MAX_BODY)
    with pytest.raises(ResponseError):
        parser.eof()
    assert not parser.keep_alive


@pytest.mark.parametrize(
    "raw",
    [
        b"HTP/1.1 200 OK\r\n\r\n",
        b"HTTP/2 200\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nName : space before colon\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
    ],
)
def test_malformed_responses_are_refused(raw: bytes) -> None:
    with pytest.raises(ResponseError):
        feed_in_pieces(raw, len(raw))


def test_a_head_larger_than_the_limit_is_refused_before_its_end() -> None:
    parser = ResponseParser(MAX_BODY)
    parser.feed(b"HTTP/1.1 200 OK\r\nX-Big: ")
    with pytest.raises(ResponseError, match="64 KiB"):
        parser.feed(b"x" * MAX_HEAD_BYTES)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000,
        b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 1000,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"3e8\r\n" + b"x" * 1000,
    ],
)
def test_a_body_past_the_cap_completes_the_response_without_reuse(raw: bytes) -> None:
    parser = feed_in_pieces(raw, 50)
    assert parser.head == Head(200, None)
    assert parser.complete
    assert not parser.keep_alive
