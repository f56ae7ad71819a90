"""The event envelope: raw NATS bytes → `Event` or `InvalidEvent`; never raises past here.

Only the top level of the JSON object is decoded; every value stays as raw bytes, so the body
delivered to receivers is the producer's JSON with `webhook` removed and nothing re-encoded.
When the event carries no `webhook`, the delivered body is the published bytes verbatim.
Per-job `webhook` entries past the limits of `bridge.policy.entries` are set apart as dropped: the
event stays routable with the rest.
"""

from __future__ import annotations

import re
from typing import Literal, TypeVar

import msgspec

from bridge.policy.entries import Admitted, admit
from bridge.policy.trace_context import TraceContext

WEBHOOK_KEY = "webhook"
# why an event is invalid, as counted in webhook_bridge_events_invalid_total{reason}
InvalidReason = Literal["too_large", "not_json", "not_object", "no_name", "bad_field"]
_TOO_DEEP = "event is nested too deeply to decode"
_NOT_UTF8 = "event is not valid UTF-8"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # no header value may carry these
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ANY = msgspec.json.Decoder()
_WEBHOOKS = msgspec.json.Decoder(str | list[str] | None)
_NAME = msgspec.json.Decoder(str | None)
T = TypeVar("T")


class Event(msgspec.Struct, frozen=True):
    """An event that can be routed."""

    id: str
    name: str
    job_id: str | None
    tenant_id: str | None
    webhooks: tuple[str, ...]
    body: bytes
    published_at_s: float
    dropped_webhooks: tuple[str, ...] = ()  # entries past the limits, to be dead-lettered
    trace: TraceContext | None = None  # its W3C trace context (`bridge.policy.trace_context`)
    sequence: int = 0  # its stream sequence: the order of a job's events (`ordering`)


class InvalidEvent(msgspec.Struct, frozen=True):
    """An event that cannot be routed, with why; it is dead-lettered with its raw bytes."""

    id: str
    subject: str
    error: str
    raw: bytes
    reason: InvalidReason = "not_json"
    trace: TraceContext | None = None


class _Invalid(Exception):
    """Internal: why decoding gave up; `reason` is the metric label (a few fixed values)."""

    def __init__(self, message: str, reason: InvalidReason) -> None:
        super().__init__(message)
        self.reason = reason


def decode_event(
    data: bytes,
    *,
    subject: str,
    event_id: str,
    published_at_s: float,
    max_bytes: int,
    prefixes: tuple[tuple[str, ...], ...],
    max_webhooks: int,
    trace: TraceContext | None = None,
    sequence: int = 0,
) -> Event | InvalidEvent:
    """Decode one published message; it keeps at most `max_webhooks` per-job entries.
    `trace` is the message's trace context, kept with the result."""
    try:
        if len(data) > max_bytes:
            limit = f"{max_bytes}-byte limit (MAX_EVENT_BYTES, capped by the server's max_payload)"
            raise _Invalid(f"event is {len(data)} bytes, over the {limit}", "too_large")
        fields = _object(data)
        name = _event_name(fields, subject, prefixes)
        entries = _webhook_entries(fields, max_webhooks)
        return Event(
            id=event_id,
            name=name,
            job_id=_identifier(fields, "job_id"),
            tenant_id=_identifier(fields, "tenant_id"),
            webhooks=entries.kept,
            body=_body(data, fields),
            published_at_s=published_at_s,
            dropped_webhooks=entries.dropped,
            trace=trace,
            sequence=sequence,
        )
    except _Invalid as invalid:
        return InvalidEvent(event_id, subject, str(invalid), data, invalid.reason, trace)


def _object(data: bytes) -> dict[str, msgspec.Raw]:
    try:
        return _OBJECT.decode(data)
    except msgspec.ValidationError:
        raise _Invalid("event is not a JSON object", "not_object") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as error:
        _require_utf8(data)
        raise _Invalid(f"event is not valid JSON: {error}", "not_json") from None
    except RecursionError:  # msgspec walks nested values even when it keeps them raw
        raise _Invalid(_TOO_DEEP, "not_json") from None


def _require_utf8(data: bytes) -> None:
    """On a failed decode only: what failed is told by our own check, never by the text of
    the library's error, which differs between versions (msgspec 0.23 no longer raises
    UnicodeDecodeError)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid(_NOT_UTF8, "not_json") from None


def _event_name(
    fields: dict[str, msgspec.Raw], subject: str, prefixes: tuple[tuple[str, ...], ...]
) -> str:
    name = _decode(_NAME, fields.get("event"), "event must be a string")
    if name is None:
        name = subject_suffix(subject, prefixes)
    name = name.strip()
    if not name:
        raise _Invalid("event has no name (no 'event' field and no subject suffix)", "no_name")
    if len(name) > 200 or _CONTROL.search(name):
        raise _Invalid("event name is too long or has control characters", "bad_field")
    return name


def subject_suffix(subject: str, prefixes: tuple[tuple[str, ...], ...]) -> str:
    """What the `>` of a subject filter matched: `greenlight.events.job.done` → `job.done`."""
    tokens = subject.split(".")
    for prefix in prefixes:
        if len(tokens) <= len(prefix):
            continue
        if all(p in ("*", t) for p, t in zip(prefix, tokens[: len(prefix)], strict=True)):
            return ".".join(tokens[len(prefix) :])
    return ""


def subject_prefixes(subjects: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """The tokens before `>` of each filter (`*` allowed); filters without `>` name no event."""
    return tuple(tuple(s.split(".")[:-1]) for s in subjects if s.endswith(".>"))


def _identifier(fields: dict[str, msgspec.Raw], key: str) -> str | None:
    """A string or whole number; other types are treated as absent, not as fatal."""
    value = _decode(_ANY, fields.get(key), f"{key} is not valid JSON")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value)


_NO_ENTRIES = Admitted(())


def _webhook_entries(fields: dict[str, msgspec.Raw], max_entries: int) -> Admitted:
    raw = fields.get(WEBHOOK_KEY)
    if raw is None:  # most events
        return _NO_ENTRIES
    value = _decode(_WEBHOOKS, raw, "webhook must be a string or a list of strings")
    entries = [value] if isinstance(value, str) else value or []
    return admit((e.strip() for e in entries if e.strip()), max_entries)


def _body(data: bytes, fields: dict[str, msgspec.Raw]) -> bytes:
    if WEBHOOK_KEY not in fields:
        return data
    return msgspec.json.encode({k: v for k, v in fields.items() if k != WEBHOOK_KEY})


def _decode(decoder: msgspec.json.Decoder[T], raw: msgspec.Raw | None, error: str) -> T | None:
    if raw is None:
        return None
    try:
        return decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        _require_utf8(bytes(raw))
        raise _Invalid(error, "bad_field") from None
    except RecursionError:
        raise _Invalid(_TOO_DEEP, "not_json") from None
