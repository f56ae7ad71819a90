"""Decoding published bytes into an Event or an InvalidEvent, and the delivered body bytes."""

from __future__ import annotations

import pytest

from bridge.policy.events import Event, InvalidEvent, decode_event, subject_prefixes, subject_suffix

SUBJECT = "greenlight.events.job.completed"
PREFIXES = (("greenlight", "events"),)
MAX_WEBHOOKS = 10


def decode(data: bytes, subject: str = SUBJECT, max_bytes: int = 1024) -> Event | InvalidEvent:
    return decode_event(
        data,
        subject=subject,
        event_id="GREENLIGHT_EVENTS-7",
        published_at_s=1_768_386_600.0,
        max_bytes=max_bytes,
        prefixes=PREFIXES,
        max_webhooks=MAX_WEBHOOKS,
    )


def valid(data: bytes, subject: str = SUBJECT) -> Event:
    event = decode(data, subject)
    assert isinstance(event, Event), event
    return event


@pytest.mark.parametrize(
    ("subjects", "expected"),
    [
        (("greenlight.events.>",), (("greenlight", "events"),)),
        (("a.>", "b.c.>"), (("a",), ("b", "c"))),
        (("greenlight.*.>",), (("greenlight", "*"),)),
        (("greenlight.events.job.completed",), ()),
        ((">",), ()),
    ],
)
def test_subject_prefixes(subjects: tuple[str, ...], expected: tuple[tuple[str, ...], ...]) -> None:
    assert subject_prefixes(subjects) == expected


@pytest.mark.parametrize(
    ("subjects", "subject", "name"),
    [
        (("greenlight.events.>",), "greenlight.events.job.done", "job.done"),
        (("greenlight.*.>",), "greenlight.approvals.approval.rejected", "approval.rejected"),
        (("a.>", "greenlight.events.>"), "greenlight.events.x", "x"),
        (("greenlight.events.>",), "greenlight.events", ""),
        (("greenlight.events.job.done",), "greenlight.events.job.done", ""),
    ],
)
def test_subject_suffix(subjects: tuple[str, ...], subject: str, name: str) -> None:
    assert subject_suffix(subject, subject_prefixes(subjects)) == name


def test_normal_event() -> None:
    data = (
        b'{"event": "job.completed", "job_id": "j_1", "tenant_id": "acme",'
        b' "status": "success", "webhook": "https://example.com/hooks/greenlight"}'
    )
    assert valid(data) == Event(
        id="GREENLIGHT_EVENTS-7",
        name="job.completed",
        job_id="j_1",
        tenant_id="acme",
        webhooks=("https://example.com/hooks/greenlight",),
        body=b'{"event":"job.completed","job_id":"j_1","tenant_id":"acme","status":"success"}',
        published_at_s=1_768_386_600.0,
    )


@pytest.mark.parametrize(
    ("data", "subject", "name"),
    [
        (b'{"event": "approval.completed"}', SUBJECT, "approval.completed"),
        (b'{"event": " job.failed "}', SUBJECT, "job.failed"),
        (b'{"job_id": "j"}', "greenlight.events.workflow.finished", "workflow.finished"),
        (b'{"event": null}', "greenlight.events.job.started", "job.started"),
    ],
)
def test_event_name(data: bytes, subject: str, name: str) -> None:
    assert valid(data, subject).name == name


@pytest.mark.parametrize(
    ("data", "job_id", "tenant_id"),
    [
        (b'{"event": "e"}', None, None),
        (b'{"event": "e", "job_id": "j_1", "tenant_id": "acme"}', "j_1", "acme"),
        (b'{"event": "e", "job_id": 12345, "tenant_id": 7}', "12345", "7"),
        (b'{"event": "e", "job_id": null, "tenant_id": null}', None, None),
        # odd types do not make the event unroutable; they are just not ids
        (b'{"event": "e", "job_id": {"a": 1}, "tenant_id": ["acme"]}', None, None),
        (b'{"event": "e", "job_id": 1.5, "tenant_id": true}', None, None),
    ],
)
def test_identifiers(data: bytes, job_id: str | None, tenant_id: str | None) -> None:
    event = valid(data)
    assert (event.job_id, event.tenant_id) == (job_id, tenant_id)


@pytest.mark.parametrize(
    ("data", "webhooks"),
    [
        (b'{"event": "e"}', ()),
        (b'{"event": "e", "webhook": null}', ()),
        (b'{"event": "e", "webhook": "https://a.example/h"}', ("https://a.example/h",)),
        (b'{"event": "e", "webhook": " erp "}', ("erp",)),
        (b'{"event": "e", "webhook": ""}', ()),
        (b'{"event": "e", "webhook": []}', ()),
        (
            b'{"event": "e", "webhook": ["https://a.example/h", "erp"]}',
            ("https://a.example/h", "erp"),
        ),
        (
            b'{"event": "e", "webhook": ["https://a.example/h", "erp", "https://a.example/h"]}',
            ("https://a.example/h", "erp"),
        ),
        (b'{"event": "e", "webhook": ["erp", " erp", ""]}', ("erp",)),
    ],
)
def test_webhook_entries(data: bytes, webhooks: tuple[str, ...]) -> None:
    assert valid(data).webhooks == webhooks


@pytest.mark.parametrize(
    ("data", "subject", "fragment"),
    [
        (b"not json", SUBJECT, "not valid JSON"),
        (b"", SUBJECT, "not valid JSON"),
        (b'{"event": "e"', SUBJECT, "not valid JSON"),
        (b'{"event": "e"} trailing', SUBJECT, "not valid JSON"),
        (b'[{"event": "e"}]', SUBJECT, "not a JSON object"),
        (b"42", SUBJECT, "not a JSON object"),
        (b'"job.completed"', SUBJECT, "not a JSON object"),
        (b"null", SUBJECT, "not a JSON object"),
        (b'{"event": 5}', SUBJECT, "event must be a string"),
        (b'{"event": ["job.completed"]}', SUBJECT, "event must be a string"),
        (b'{"job_id": "j"}', "other.subject", "no name"),
        (b'{"job_id": "j"}', "greenlight.events.", "no name"),
        (b'{"event": "  "}', SUBJECT, "no name"),
        (b'{"event": "a\\nb"}', SUBJECT, "control characters"),
        (b'{"event": "' + b"x" * 201 + b'"}', SUBJECT, "too long"),
        (b'{"event": "e", "webhook": 5}', SUBJECT, "webhook"),
        (b'{"event": "e", "webhook": {"url": "https://a"}}', SUBJECT, "webhook"),
        (b'{"event": "e", "webhook": ["https://a.example/h", 5]}', SUBJECT, "webhook"),
        (b'{"event": "e", "webhook": [null]}', SUBJECT, "webhook"),
    ],
)
def test_invalid_events(data: bytes, subject: str, fragment: str) -> None:
    invalid = decode(data, subject)
    assert isinstance(invalid, InvalidEvent)
    assert (invalid.id, invalid.subject, invalid.raw) == ("GREENLIGHT_EVENTS-7", subject, data)
    assert fragment in invalid.error


@pytest.mark.parametrize(
    ("size", "is_valid"),
    [(1023, True), (1024, True), (1025, False), (10_000, False)],
)
def test_max_bytes(size: int, is_valid: bool) -> None:
    head = b'{"event": "e", "pad": "'
    data = head + b"x" * (size - len(head) - 2) + b'"}'
    assert len(data) == size
    result = decode(data, max_bytes=1024)
    assert isinstance(result, Event) == is_valid
    if not is_valid:
        assert isinstance(result, InvalidEvent)
        assert "MAX_EVENT_BYTES" in result.error


@pytest.mark.parametrize(
    "data",
    [
        b'{"event": "e", "job_id": "j"}',
        b'{ "z" : 1 ,\n\t"event":"e",  "a": [1.10, 2e3, -0.0] }',
        b'{"event": "e", "text": "caf\\u00e9 \\ud83d\\ude00", "slash": "a\\/b"}',
        b'{"event": "e", "unknown": {"nested": [true, false, null]}, "x": 1}',
        b'{"event":"e","dup":1,"dup":2}',
        b'{"event": "\xc3\xa9v\xc3\xa9nement", "n": 1.0}',
    ],
)
def test_body_without_webhook_is_verbatim(data: bytes) -> None:
    body = valid(data).body
    assert body == data


@pytest.mark.parametrize(
    ("data", "body"),
    [
        (
            b'{"event": "e", "webhook": "https://a.example/h"}',
            b'{"event":"e"}',
        ),
        (
            b'{"webhook": ["erp"], "event": "e", "price": 1.10, "big": 1e400}',
            b'{"event":"e","price":1.10,"big":1e400}',
        ),
        (
            b'{"z": 1, "event": "e", "webhook": null, "a": 2}',
            b'{"z":1,"event":"e","a":2}',
        ),
        (
            b'{"event": "e", "text": "caf\\u00e9 \\ud83d\\ude00", "webhook": "erp", "s": "a\\/b"}',
            b'{"event":"e","text":"caf\\u00e9 \\ud83d\\ude00","s":"a\\/b"}',
        ),
        (
            b'{"event": "e", "webhook": "erp", "unknown": {"b": [1.50, "x"], "a": {}}}',
            b'{"event":"e","unknown":{"b": [1.50, "x"], "a": {}}}',
        ),
        (
            b'{"event": "e", "job_id": 12345, "webhook": "erp"}',
            b'{"event":"e","job_id":12345}',
        ),
    ],
)
def test_body_with_webhook_drops_it_and_keeps_values_verbatim(data: bytes, body: bytes) -> None:
    assert valid(data).body == body


@pytest.mark.parametrize(
    ("data", "subject", "reason"),
    [
        (b"x" * 2000, SUBJECT, "too_large"),
        (b"{not json", SUBJECT, "not_json"),
        (b'{"event": "\xff"}', SUBJECT, "not_json"),
        (b"[1, 2]", SUBJECT, "not_object"),
        (b'"text"', SUBJECT, "not_object"),
        (b"{}", "greenlight.events", "no_name"),
        (b'{"event": "  "}', "greenlight.events", "no_name"),
        (b'{"event": 5}', SUBJECT, "bad_field"),
        (b'{"event": "a\\u0001b"}', SUBJECT, "bad_field"),
        (b'{"event": "a\\u007fb"}', SUBJECT, "bad_field"),  # DEL: no header may carry it
        (b'{"event": "job.\x7f"}', SUBJECT, "bad_field"),
        (b'{"webhook": 5}', SUBJECT, "bad_field"),
    ],
)
def test_invalid_reason_labels(data: bytes, subject: str, reason: str) -> None:
    invalid = decode(data, subject)
    assert isinstance(invalid, InvalidEvent)
    assert invalid.reason == reason


@pytest.mark.parametrize(
    ("webhook", "kept", "dropped"),
    [
        ('"https://a/"', ("https://a/",), ()),
        (f'"{"x" * 2049}"', (), ("x" * 2049,)),
        (
            "[" + ",".join(f'"h{i}"' for i in range(12)) + "]",
            tuple(f"h{i}" for i in range(MAX_WEBHOOKS)),
            ("h10", "h11"),
        ),
    ],
)
def test_entries_past_the_limits_are_set_apart(
    webhook: str, kept: tuple[str, ...], dropped: tuple[str, ...]
) -> None:
    event = decode(b'{"event": "job.x", "webhook": ' + webhook.encode() + b"}", max_bytes=4096)
    assert isinstance(event, Event)
    assert (event.webhooks, event.dropped_webhooks) == (kept, dropped)
    assert event.body == b'{"event":"job.x"}'
