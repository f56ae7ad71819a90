"""W3C trace context: which traceparent headers are read, and what each attempt sends."""

from __future__ import annotations

import itertools

import pytest

from bridge.policy.trace_context import (
    MAX_STATE_CHARS,
    TraceContext,
    attempt_headers,
    from_headers,
    new_trace,
    parse_traceparent,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{PARENT}-01"


@pytest.mark.parametrize(
    ("value", "fields"),
    [
        (VALID, (TRACE, PARENT, "01")),
        (f"00-{TRACE}-{PARENT}-00", (TRACE, PARENT, "00")),  # not sampled: kept as it is
        (f"  {VALID} ", (TRACE, PARENT, "01")),  # optional whitespace around a header value
        (f"01-{TRACE}-{PARENT}-01", (TRACE, PARENT, "01")),  # a later version, read as 00
        (f"cc-{TRACE}-{PARENT}-09-what-comes-next", (TRACE, PARENT, "09")),
        (f"ff-{TRACE}-{PARENT}-01", None),  # version ff is forbidden
        (f"00-{TRACE}-{PARENT}-01-extra", None),  # version 00 has exactly four fields
        (f"01-{TRACE}-{PARENT}-01x", None),  # a later version's fifth field follows a dash
        (f"00-{'0' * 32}-{PARENT}-01", None),  # all-zero trace id
        (f"00-{TRACE}-{'0' * 16}-01", None),  # all-zero parent id
        (f"00-{TRACE.upper()}-{PARENT}-01", None),  # upper-case hex
        (f"00-{TRACE[:-1]}-{PARENT}-01", None),  # short trace id
        (f"00-{TRACE}-{PARENT}", None),  # no flags
        (f"00_{TRACE}_{PARENT}_01", None),
        ("", None),
        ("garbage", None),
    ],
)
def test_traceparent_parsing(value: str, fields: tuple[str, str, str] | None) -> None:
    assert parse_traceparent(value) == fields


@pytest.mark.parametrize(
    ("headers", "context"),
    [
        ({}, None),
        ({"Nats-Msg-Id": "e1"}, None),
        ({"traceparent": VALID}, TraceContext(TRACE, "01", PARENT)),
        (
            {"Traceparent": VALID, "TraceState": "a=1,b=2"},
            TraceContext(TRACE, "01", PARENT, "a=1,b=2"),
        ),
        ({"traceparent": "bad", "tracestate": "a=1"}, None),  # no state without a parent
        (
            {"traceparent": VALID, "tracestate": "x" * (MAX_STATE_CHARS + 1)},
            TraceContext(TRACE, "01", PARENT),
        ),
        ({"traceparent": VALID, "tracestate": "a=1\x7f"}, TraceContext(TRACE, "01", PARENT)),
        ({"traceparent": VALID, "tracestate": ""}, TraceContext(TRACE, "01", PARENT)),
    ],
)
def test_context_from_message_headers(
    headers: dict[str, str], context: TraceContext | None
) -> None:
    assert from_headers(headers) == context


def test_a_new_trace_is_sampled_version_00_with_random_ids() -> None:
    counter = itertools.count(1)
    trace = new_trace(lambda bits: next(counter) << (bits - 8))
    assert trace == TraceContext(f"{1 << 120:032x}", "01")
    parent, state = attempt_headers(trace, lambda bits: 0xAB << (bits - 8))
    assert parent == f"00-{1 << 120:032x}-ab00000000000000-01"
    assert state is None


def test_zero_bits_never_make_an_invalid_id() -> None:
    parent, _state = attempt_headers(None, lambda _bits: 0)
    assert parse_traceparent(parent) is not None


def test_an_upstream_traceparent_is_sent_as_it_came_on_every_attempt() -> None:
    upstream = TraceContext(TRACE, "00", PARENT, "vendor=x")
    first = attempt_headers(upstream)
    assert first == (f"00-{TRACE}-{PARENT}-00", "vendor=x")
    assert attempt_headers(upstream) == first


def test_each_attempt_of_a_trace_the_bridge_started_names_its_own_span() -> None:
    trace = new_trace()
    first, _ = attempt_headers(trace)
    second, _ = attempt_headers(trace)
    assert first.split("-")[1] == second.split("-")[1] == trace.trace_id
    assert first.split("-")[2] != second.split("-")[2]


def test_a_delivery_without_a_context_gets_a_trace_per_attempt() -> None:
    first, state = attempt_headers(None)
    assert parse_traceparent(first) is not None
    assert state is None
