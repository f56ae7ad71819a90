"""The response parser: heads, every body framing, and limits, fed whole and byte by byte."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.delivery.http1 import (
    MAX_BODY_BYTES,
    MAX_HEAD_BYTES,
    MAX_RESPONSE_BYTES,
    Head,
    ResponseError,
    ResponseParser,
    keep_alive_timeout_s,
)

CHUNKED_200 = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

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
    (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
        Head(101, None),
        True,
        False,
    ),
    (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
        Head(200, None),
        True,
        False,
    ),
]


def feed_in_pieces(raw: bytes, size: int) -> ResponseParser:
    parser = ResponseParser()
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
    parser = feed_in_pieces(raw, 3) if raw else ResponseParser()
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
        # a field name is a token (RFC 9110 §5.1): llhttp refuses other bytes, as Node does
        b"HTTP/1.1 200 OK\r\nX-\xe9t\xe9: 1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        # framing that two readers could take two ways (response splitting): refused
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
    ],
)
def test_malformed_responses_are_refused(raw: bytes) -> None:
    with pytest.raises(ResponseError):
        feed_in_pieces(raw, len(raw))


def test_a_head_larger_than_the_limit_is_refused_before_its_end() -> None:
    parser = ResponseParser()
    parser.feed(b"HTTP/1.1 200 OK\r\nX-Big: ")
    with pytest.raises(ResponseError, match="64 KiB"):
        parser.feed(b"x" * MAX_HEAD_BYTES)


@pytest.mark.parametrize("piece", [4096, 1 << 20])
def test_a_head_larger_than_the_limit_is_refused_when_it_ends_too(piece: int) -> None:
    raw = b"HTTP/1.1 200 OK\r\nX-Big: " + b"x" * MAX_HEAD_BYTES + b"\r\nContent-Length: 0\r\n\r\n"
    with pytest.raises(ResponseError, match="64 KiB"):
        feed_in_pieces(raw, piece)


@pytest.mark.parametrize("piece", [3, 4096, 1 << 20])
def test_each_head_is_measured_on_its_own(piece: int) -> None:
    padding = b"p" * (MAX_HEAD_BYTES - 100)
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: " + padding + b"\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nX-Pad: " + padding + b"\r\nContent-Length: 0\r\n\r\n"
    parser = feed_in_pieces(interim + final, piece)
    assert (parser.head, parser.complete, parser.keep_alive) == (Head(200, None), True, True)


OVER_CAP = b"x" * (MAX_BODY_BYTES + 1000)


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n" + OVER_CAP,
        b"HTTP/1.1 200 OK\r\n\r\n" + OVER_CAP,
        CHUNKED_200 + f"{len(OVER_CAP):x}\r\n".encode() + OVER_CAP,
    ],
)
@pytest.mark.parametrize("piece", [4096, 1 << 20])
def test_a_body_past_the_cap_completes_the_response_without_reuse(raw: bytes, piece: int) -> None:
    parser = feed_in_pieces(raw, piece)
    assert parser.head == Head(200, None)
    assert parser.complete
    assert not parser.keep_alive


def feed_forever(parser: ResponseParser, first: bytes, repeated: bytes) -> int:
    """Feed `first`, then `repeated` until the parser completes (or raises); bytes fed.

    Gives up at ten budgets, so a parser that reads on for ever fails the test instead."""
    parser.feed(first)
    fed = len(first)
    while not parser.complete and fed < 10 * MAX_RESPONSE_BYTES:
        parser.feed(repeated)
        fed += len(repeated)
    return fed


@pytest.mark.parametrize("heads_per_feed", [1, 200])
def test_endless_interim_heads_are_refused_once_the_budget_is_spent(heads_per_feed: int) -> None:
    parser = ResponseParser()
    with pytest.raises(ResponseError, match="no final response head"):
        feed_forever(parser, b"", b"HTTP/1.1 100 Continue\r\n\r\n" * heads_per_feed)


@pytest.mark.parametrize(
    ("first", "repeated"),
    [
        (CHUNKED_200 + b"2\r\nok\r\n0\r\n", b"X-Trailer: " + b"t" * 1000 + b"\r\n"),
        (CHUNKED_200, b"5;" + b"e" * 4000 + b"\r\nhello\r\n"),
        (CHUNKED_200, b"1;e\r\nx\r\n" * 100),
        (b"HTTP/1.1 100 Continue\r\n\r\n" * 100 + CHUNKED_200, b"1\r\nx\r\n" * 100),
    ],
    ids=["trailers", "long-extensions", "tiny-chunks", "interim-heads-then-chunks"],
)
def test_a_2xx_ends_once_the_budget_is_spent_and_its_connection_is_not_reused(
    first: bytes, repeated: bytes
) -> None:
    parser = ResponseParser()
    fed = feed_forever(parser, first, repeated)
    assert (parser.head, parser.complete, parser.keep_alive) == (Head(200, None), True, False)
    assert fed <= MAX_RESPONSE_BYTES + len(repeated)


def test_a_response_within_the_budget_is_read_to_its_end_and_reusable() -> None:
    trailers = b"X-Trailer: " + b"t" * 1000 + b"\r\n"
    raw = CHUNKED_200 + b"2\r\nok\r\n0\r\n" + trailers * 50 + b"\r\n"
    parser = feed_in_pieces(raw, 4096)
    assert (parser.complete, parser.keep_alive) == (True, True)


@pytest.mark.parametrize(
    ("raw", "head"),
    [
        (b"HTTP/1.1 503 \xff\xfe\r\nContent-Length: 0\r\n\r\n", Head(503, None)),
        (
            b"HTTP/1.1 200 OK\r\nRetry-After: \xff\xfe\r\nContent-Length: 0\r\n\r\n",
            Head(200, "\ufffd\ufffd"),
        ),
        (b"HTTP/1.1 200 OK\r\nX-Note: \xe9\xc3(\r\nContent-Length: 0\r\n\r\n", Head(200, None)),
        (b"HTTP/1.1 200 OK\r\nConnection: \xff\r\nContent-Length: 0\r\n\r\n", Head(200, None)),
    ],
)
def test_head_bytes_that_are_not_utf8_never_break_the_parser(raw: bytes, head: Head) -> None:
    assert feed_in_pieces(raw, 3).head == head


@pytest.mark.parametrize(
    "field",
    [b"Content-Length: \xd9\xa3", b"Content-Length: " + b"9" * 5000, b"Transfer-Encoding: \xff"],
)
def test_unreadable_framing_fields_are_refused_or_read_until_the_close(field: bytes) -> None:
    raw = b"HTTP/1.1 200 OK\r\n" + field + b"\r\n\r\nbody"
    try:
        parser = feed_in_pieces(raw, 7)
    except ResponseError:
        return
    parser.eof()
    assert (parser.head, parser.keep_alive) == (Head(200, None), False)


FIELD_NAMES = [b"Retry-After", b"Connection", b"Content-Length", b"Transfer-Encoding", b"X"]
header_lines = st.lists(
    st.builds(lambda name, value: name + b": " + value, st.sampled_from(FIELD_NAMES), st.binary()),
    max_size=4,
)


@given(st.binary(max_size=8), header_lines, st.binary(max_size=64), st.integers(1, 16))
def test_any_bytes_give_a_response_or_a_response_error(
    reason: bytes, lines: list[bytes], body: bytes, piece: int
) -> None:
    raw = b"\r\n".join([b"HTTP/1.1 200 " + reason, *lines]) + b"\r\n\r\n" + body
    try:
        parser = feed_in_pieces(raw, piece)
        parser.eof()
    except ResponseError:
        return
    assert parser.head is not None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (b"timeout=5", 5),
        (b"timeout=5, max=100", 5),
        (b"max=100,timeout=7", 7),
        (b'Timeout = "9"', 9),
        (b"max=100", None),
        (b"notimeout=5", None),
        (b"timeout=", None),
        (b"timeout=-1", None),
        (b"timeout=\xff5", None),
        (b"\xfe\xff, timeout=3", 3),
        (b"timeout=" + b"9" * 50, None),
    ],
)
def test_keep_alive_timeout_is_read_defensively(value: bytes | None, expected: int | None) -> None:
    assert keep_alive_timeout_s(value) == expected


def test_the_keep_alive_timeout_of_the_final_head_is_kept() -> None:
    raw = b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n"
    assert feed_in_pieces(raw, 5).keep_alive_s == 5
