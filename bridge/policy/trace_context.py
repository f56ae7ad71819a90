"""W3C trace context (`traceparent`, `tracestate`): read from an event, carried by its deliveries.

An event's context comes from its NATS message headers, or is a new trace when they carry
none that is valid (version 00, random trace id, flags 01). It travels in every delivery
task and dead letter of the event, so retries, restarts and replays stay in one trace.

What an attempt sends (`attempt_headers`) when the bridge exports no span of its own:
- the event's `traceparent` as it came (its producer's span is the receiver's parent), or
- for a trace the bridge started (`parent_id` None), a new span id per attempt as parent-id;
and `tracestate` unchanged. With spans exported (`bridge.observability.tracing`), the
parent-id is the attempt span's id and the event's context is the consume span's.

Pure: randomness comes in as an argument (`bits`, like `random.getrandbits`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping

import msgspec

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
MAX_STATE_CHARS = 512  # W3C: a vendor may drop a longer tracestate
SAMPLED = "01"
_FIELDS = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_STATE = re.compile(r"[\x20-\x7e]*")  # printable ASCII: no header may be split
_NO_TRACE = "0" * 32
_NO_SPAN = "0" * 16

Bits = Callable[[int], int]


class TraceContext(msgspec.Struct, frozen=True, omit_defaults=True):
    """The trace a delivery belongs to. `parent_id` is the span its attempts are children
    of; None when the bridge started the trace and exports no span of it."""

    trace_id: str
    flags: str
    parent_id: str | None = None
    state: str | None = None


def trace_id_of(trace: TraceContext | None) -> str | None:
    """The trace id log lines carry (`trace_id`), if there is a context."""
    return None if trace is None else trace.trace_id


def parse_traceparent(value: str) -> tuple[str, str, str] | None:
    """(trace id, parent id, flags), or None when `value` is not a valid traceparent.

    A version above 00 is read as 00 when its first four fields are (W3C §3.2.4); it is then
    sent on as version 00, the one the bridge knows."""
    value = value.strip()
    found = _FIELDS.match(value)
    if found is None:
        return None
    version, trace_id, parent_id, flags = found.groups()
    if version == "ff" or trace_id == _NO_TRACE or parent_id == _NO_SPAN:
        return None
    if len(value) != 55 and (version == "00" or value[55] != "-"):
        return None
    return trace_id, parent_id, flags


def from_headers(headers: Mapping[str, str]) -> TraceContext | None:
    """The context of the message's `traceparent` (any case), or None when absent or invalid;
    a `tracestate` is kept with a valid `traceparent` only, and only if it is printable and
    at most MAX_STATE_CHARS."""
    parent = state = None
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == TRACEPARENT:
            parent = value
        elif lowered == TRACESTATE:
            state = value.strip()
    fields = None if parent is None else parse_traceparent(parent)
    if fields is None:
        return None
    trace_id, parent_id, flags = fields
    return TraceContext(trace_id, flags, parent_id, _kept_state(state))


def _kept_state(state: str | None) -> str | None:
    if not state or len(state) > MAX_STATE_CHARS or not _STATE.fullmatch(state):
        return None
    return state


def new_trace(bits: Bits = random.getrandbits) -> TraceContext:
    """A trace the bridge starts, sampled; its attempts name their own span ids."""
    return TraceContext(f"{bits(128) or 1:032x}", SAMPLED)


def new_span_id(bits: Bits = random.getrandbits) -> str:
    return f"{bits(64) or 1:016x}"


def traceparent(trace_id: str, span_id: str, flags: str) -> str:
    return f"00-{trace_id}-{span_id}-{flags}"


def attempt_headers(
    trace: TraceContext | None, bits: Bits = random.getrandbits
) -> tuple[str, str | None]:
    """(traceparent, tracestate or None) of one attempt without a span of its own; a delivery
    without a context (made before the bridge carried one) is a trace of its own."""
    if trace is None:
        trace = new_trace(bits)
    span_id = trace.parent_id or new_span_id(bits)
    return traceparent(trace.trace_id, span_id, trace.flags), trace.state
