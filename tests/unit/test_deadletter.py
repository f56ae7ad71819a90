"""Dead-letter records (SPEC §4), their subjects and message ids, filters and replay targets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bridge.config.settings import load_settings
from bridge.jetstream.dlq import Filter, Stored, replay_target, replay_task
from bridge.policy import dead_letter
from bridge.policy.dead_letter import (
    DeadLetter,
    Endpoint,
    Reason,
    encode,
    from_invalid,
    from_task,
    from_unknown,
    message_id,
    subject_for,
)
from bridge.policy.events import Event, InvalidEvent
from bridge.policy.routing import Router, Target, delivery_id
from bridge.policy.tasks import Attempt, DeliveryTask

ERP_URL = "https://erp.example.com/hooks"
DEFAULT_URL = "https://default.example.com/hooks"
JOB_URL = "https://receiver.example.org/job?x=1"
BODY = b'{"event": "job.completed",  "job_id": "j_1", "price": 1.10}'
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HISTORY = (
    Attempt(1, "2026-01-14T10:30:01.000Z", 500, "unexpected status code: 500", 120, "http_error"),
    Attempt(2, "2026-01-14T10:30:03.000Z", None, "timeout after 15s", 15000, "timeout"),
)
TARGETS = {
    "named": Target(ERP_URL, "erp", "named", webhook_id="erp"),
    "default": Target(DEFAULT_URL, "default.example.com", "default"),
    "job": Target(JOB_URL, "receiver.example.org", "job", trusted=False),
}


def task(source: str = "named", generation: int = 0) -> DeliveryTask:
    return DeliveryTask(
        delivery_id="dlv_abc",
        event_id="GREENLIGHT_EVENTS-9",
        event="job.completed",
        job_id="j_1",
        tenant_id=None,
        target=TARGETS[source],
        body=BODY,
        published_at_s=0.0,
        attempt=3,
        generation=generation,
        history=HISTORY,
    )


def encoded(record: DeadLetter) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(encode(record))
    return decoded


def with_event(event: str | None, reason: Reason = "max_retries_exceeded") -> DeadLetter:
    return msgspec.structs.replace(from_task(task(), reason), event=event)


def router(tmp_path: Path) -> Router:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        "webhooks:\n"
        "  - id: erp\n    url: https://erp-new.example.com/hooks\n    events: [approval.*]\n"
        "  - id: late\n    url: https://late.example.com/hooks\n",
        encoding="utf-8",
    )
    return Router(load_settings({"BRIDGE_CONFIG": str(path)}))


# --- records ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "endpoint"),
    [
        ("named", {"id": "erp", "url": ERP_URL, "source": "named"}),
        ("default", {"id": None, "url": DEFAULT_URL, "source": "default"}),
        ("job", {"id": None, "url": JOB_URL, "source": "job"}),
    ],
)
@pytest.mark.parametrize("reason", ["max_retries_exceeded", "gone", "blocked_url"])
def test_from_task(source: str, endpoint: dict[str, Any], reason: Reason) -> None:
    record = encoded(from_task(task(source), reason))
    assert TIMESTAMP.match(record.pop("dead_lettered_at"))
    assert record == {
        "delivery_id": "dlv_abc",
        "event_id": "GREENLIGHT_EVENTS-9",
        "event": "job.completed",
        "job_id": "j_1",
        "tenant_id": None,
        "endpoint": endpoint,
        "reason": reason,
        "attempts": [
            {
                "attempt": 1,
                "at": "2026-01-14T10:30:01.000Z",
                "status_code": 500,
                "error": "unexpected status code: 500",
                "duration_ms": 120,
                "outcome": "http_error",
            },
            {
                "attempt": 2,
                "at": "2026-01-14T10:30:03.000Z",
                "status_code": None,
                "error": "timeout after 15s",
                "duration_ms": 15000,
                "outcome": "timeout",
            },
        ],
        "payload": {"event": "job.completed", "job_id": "j_1", "price": 1.10},
    }


def test_payload_bytes_are_the_body_verbatim() -> None:
    assert b'"payload":' + BODY in encode(from_task(task(), "gone"))


@pytest.mark.parametrize(
    ("raw", "text", "encoding"),
    [
        (b"not json", "not json", "utf-8"),
        (b"", "", "utf-8"),
        ("caf\u00e9 \u2603".encode(), "caf\u00e9 \u2603", "utf-8"),
        (b'[{"event": "job.completed"}]', '[{"event": "job.completed"}]', "utf-8"),
        (b"\xff\xfe\x00", "//4A", "base64"),
        (b'{"event": "caf\xe9"}', "eyJldmVudCI6ICJjYWbpIn0=", "base64"),
    ],
)
def test_from_invalid(raw: bytes, text: str, encoding: str) -> None:
    invalid = InvalidEvent(
        id="GREENLIGHT_EVENTS-3", subject="greenlight.events.x", error="bad", raw=raw
    )
    record = encoded(from_invalid(invalid))
    assert TIMESTAMP.match(record.pop("dead_lettered_at"))
    assert record == {
        "delivery_id": delivery_id("GREENLIGHT_EVENTS-3", "invalid"),
        "event_id": "GREENLIGHT_EVENTS-3",
        "event": None,
        "job_id": None,
        "tenant_id": None,
        "endpoint": {"id": None, "url": None, "source": None},
        "reason": "invalid_event",
        "attempts": [],
        "raw": text,
        "raw_encoding": encoding,
        "raw_size": len(raw),
        "error": "bad",
    }


def test_from_unknown() -> None:
    event = Event("E-1", "job.completed", "j_1", "acme", ("nope",), BODY, 0.0)
    record = encoded(from_unknown(event, "nope"))
    assert record["reason"] == "unknown_webhook"
    assert record["endpoint"] == {"id": "nope", "url": None, "source": "job"}
    assert record["payload"] == json.loads(BODY)
    assert record["delivery_id"] == delivery_id("E-1", "nope")
    assert "nope" in record["error"]


# --- subjects and message ids -------------------------------------------------------------

PREFIX = "greenlight.webhooks.dlq"


@pytest.mark.parametrize(
    ("record", "subject"),
    [
        (with_event("job.completed"), f"{PREFIX}.job.completed"),
        (with_event("approval.rejected"), f"{PREFIX}.approval.rejected"),
        (with_event("job_queued-2"), f"{PREFIX}.job_queued-2"),
        (with_event("job completed"), f"{PREFIX}.job_completed"),
        (with_event("job.*"), f"{PREFIX}.job._"),
        (with_event("job.>"), f"{PREFIX}.job._"),
        (with_event("a..b"), f"{PREFIX}.a._.b"),
        (with_event(".job."), f"{PREFIX}._.job._"),
        (with_event("caf\u00e9"), f"{PREFIX}.caf_"),
        (with_event("a\tb"), f"{PREFIX}.a_b"),
        (with_event(None), f"{PREFIX}.invalid"),
        (with_event(""), f"{PREFIX}.invalid"),
        (with_event("job.completed", "invalid_event"), f"{PREFIX}.invalid"),
        (from_invalid(InvalidEvent("E", "s", "bad", b"x")), f"{PREFIX}.invalid"),
    ],
)
def test_subject_for(record: DeadLetter, subject: str) -> None:
    assert subject_for(record) == subject


@pytest.mark.parametrize(
    ("generation", "expected"),
    [(0, "dlv_abc"), (1, "dlv_abc:1"), (4711, "dlv_abc:4711")],
)
def test_message_id(generation: int, expected: str) -> None:
    assert message_id(from_task(task(generation=generation), "gone")) == expected


# --- filters ------------------------------------------------------------------------------


def stored(source: str, replayed_at: str | None = None) -> Stored:
    if source == "invalid":
        record = from_invalid(InvalidEvent("E", "s", "bad", b"x"))
    else:
        record = from_task(task(source), "max_retries_exceeded")
    return Stored(seq=7, record=record, replayed_at=replayed_at)


@pytest.mark.parametrize(
    ("wanted", "the_stored", "accepted"),
    [
        (Filter(), stored("named"), True),
        (Filter(), stored("invalid"), True),
        (Filter(endpoint="erp"), stored("named"), True),
        (Filter(endpoint=ERP_URL), stored("named"), True),
        (Filter(endpoint="erp.example.com"), stored("named"), True),
        (Filter(endpoint="crm"), stored("named"), False),
        (Filter(endpoint="default.example.com"), stored("default"), True),
        (Filter(endpoint=DEFAULT_URL), stored("default"), True),
        (Filter(endpoint="erp"), stored("default"), False),
        (Filter(endpoint="receiver.example.org"), stored("job"), True),
        (Filter(endpoint="example.org"), stored("job"), False),
        (Filter(endpoint="erp"), stored("invalid"), False),
        (Filter(), stored("named", "2026-01-14T10:30:00.000Z"), False),
        (Filter(include_replayed=True), stored("named", "2026-01-14T10:30:00.000Z"), True),
        (
            Filter(endpoint="erp", include_replayed=True),
            stored("named", "2026-01-14T10:30:00.000Z"),
            True,
        ),
    ],
)
def test_filter_accepts(wanted: Filter, the_stored: Stored, accepted: bool) -> None:
    assert wanted.accepts(the_stored) == accepted


@pytest.mark.parametrize(
    ("wanted", "subject"),
    [(Filter(), f"{PREFIX}.>"), (Filter(event="job.completed"), f"{PREFIX}.job.completed")],
)
def test_filter_subject(wanted: Filter, subject: str) -> None:
    assert wanted.subject() == subject


# --- replay -------------------------------------------------------------------------------


def unknown(webhook_id: str) -> DeadLetter:
    event = Event("E-1", "job.completed", "j_1", None, (webhook_id,), BODY, 0.0)
    return from_unknown(event, webhook_id)


def renamed(webhook_id: str) -> DeadLetter:
    record = from_task(task("named"), "gone")
    return msgspec.structs.replace(record, endpoint=Endpoint(webhook_id, ERP_URL, "named"))


@pytest.mark.parametrize(
    ("record", "target"),
    [
        # a named webhook goes to its current URL, whatever its filters say now
        (
            from_task(task("named"), "gone"),
            Target("https://erp-new.example.com/hooks", "erp", "named", webhook_id="erp"),
        ),
        (renamed("removed"), None),
        (
            from_task(task("default"), "max_retries_exceeded"),
            Target(DEFAULT_URL, "default.example.com", "default", trusted=True),
        ),
        (
            from_task(task("job"), "blocked_url"),
            Target(JOB_URL, "receiver.example.org", "job", trusted=False),
        ),
        (
            unknown("late"),
            Target("https://late.example.com/hooks", "late", "named", webhook_id="late"),
        ),
        (unknown("still-unknown"), None),
        (from_invalid(InvalidEvent("E", "s", "bad", b"x")), None),
    ],
)
def test_replay_target(tmp_path: Path, record: DeadLetter, target: Target | None) -> None:
    assert replay_target(record, router(tmp_path)) == target


def test_replay_task_has_a_fresh_budget_and_the_same_delivery_id() -> None:
    record = from_task(task("default"), "max_retries_exceeded")
    replayed = replay_task(
        Stored(seq=42, record=record, replayed_at=None), lambda r: TARGETS["job"]
    )
    assert replayed is not None
    assert (replayed.delivery_id, replayed.event_id, replayed.body) == (
        "dlv_abc",
        task().event_id,
        BODY,
    )
    assert (replayed.attempt, replayed.generation, replayed.history) == (1, 42, ())
    assert replayed.target == TARGETS["job"]
    assert message_id(from_task(replayed, "gone")) == "dlv_abc:42"


@pytest.mark.parametrize(
    "record",
    [from_invalid(InvalidEvent("E", "s", "bad", b"x")), from_task(task(), "gone")],
)
def test_replay_task_skips_what_cannot_be_delivered(record: DeadLetter) -> None:
    target = None if record.reason == "gone" else TARGETS["job"]
    assert replay_task(Stored(seq=1, record=record, replayed_at=None), lambda r: target) is None


@pytest.mark.parametrize(
    ("size", "truncated"),
    [(10, False), (dead_letter.MAX_RAW_BYTES, False), (dead_letter.MAX_RAW_BYTES + 1, True)],
)
def test_invalid_raw_is_capped_so_the_record_fits(size: int, truncated: bool) -> None:
    raw = b"x" * size
    record = dead_letter.from_invalid(InvalidEvent(id="e", subject="s", error="big", raw=raw))
    assert record.raw_size == size
    assert record.raw_truncated is truncated
    assert record.raw is not None
    assert len(record.raw) == min(size, dead_letter.MAX_RAW_BYTES)
    assert len(dead_letter.encode(record)) < 1024 * 1024


@pytest.mark.parametrize(
    ("event", "subject"),
    [
        (None, f"{PREFIX}.>"),
        ("job.completed", f"{PREFIX}.job.completed"),
        ("job.*", f"{PREFIX}.job.*"),
        ("job.>", f"{PREFIX}.job.>"),
        (">.x", f"{PREFIX}._.x"),
        ("a b\r\n.c", f"{PREFIX}.a_b__.c"),
        ("job..x", f"{PREFIX}.job._.x"),
    ],
)
def test_filter_subject_is_always_a_valid_filter(event: str | None, subject: str) -> None:
    assert Filter(event=event).subject() == subject


# --- every record fits in one message (SPEC §13) --------------------------------------------

EVENT = Event("E", "job.done", "j", "acme", (), b'{"event": "job.done"}', 0.0)
HUGE = "\x01" * 300_000  # JSON-escaped six times over


def records() -> list[DeadLetter]:
    failed = msgspec.structs.replace(
        task(), history=tuple(msgspec.structs.replace(a, error=HUGE) for a in HISTORY)
    )
    return [
        from_invalid(InvalidEvent("E", "s", HUGE, b"\xff" * 500_000)),
        dead_letter.from_failure("E", EVENT, b"x" * 900_000, HUGE),
        dead_letter.from_too_many(EVENT, (HUGE, "y" * 5000, HUGE), 10),
        from_task(failed, "max_retries_exceeded"),
        from_task(msgspec.structs.replace(task(), body=b'"' + b"z" * 900_000 + b'"'), "gone"),
    ]


@pytest.mark.parametrize("max_bytes", [8 * 1024, 64 * 1024, 1024 * 1024 - 1024])
@pytest.mark.parametrize("index", range(len(records())))
def test_fit_cuts_copied_fields_and_says_so(index: int, max_bytes: int) -> None:
    record = records()[index]
    fitted = dead_letter.fit(record, max_bytes)
    assert len(dead_letter.encode(fitted)) <= max_bytes
    assert bool(fitted.truncated) is (len(dead_letter.encode(record)) > max_bytes)
    assert set(fitted.truncated) <= set(dead_letter.CUT_TEXTS) | {"payload"}
    assert (fitted.delivery_id, fitted.reason) == (record.delivery_id, record.reason)


def test_fit_leaves_a_record_that_fits_alone() -> None:
    record = from_task(task(), "gone")
    assert dead_letter.fit(record, 64 * 1024) is record
    assert "truncated" not in json.loads(dead_letter.encode(record))


def test_fit_cuts_the_largest_text_first_and_only_as_far_as_needed() -> None:
    record = dead_letter.from_failure("E", None, b"r" * 100_000, "short error")
    fitted = dead_letter.fit(record, 64 * 1024)
    assert fitted.truncated == ("raw",)
    assert fitted.error == "short error"
    assert fitted.raw_truncated
    assert len(fitted.raw or "") > 60_000


def test_fit_keeps_the_payload_whole_or_leaves_it_out() -> None:
    body = b'{"pad": "' + b"z" * 100_000 + b'"}'
    fitted = dead_letter.fit(from_task(msgspec.structs.replace(task(), body=body), "gone"), 50_000)
    assert isinstance(fitted.payload, msgspec.UnsetType)
    assert "payload" in fitted.truncated


def test_base64_raw_is_cut_on_whole_groups() -> None:
    fitted = dead_letter.fit(from_invalid(InvalidEvent("E", "s", "bad", b"\xff" * 90_000)), 50_000)
    assert fitted.raw_encoding == "base64"
    assert len(fitted.raw or "") % 4 == 0


def test_too_many_webhooks_record() -> None:
    record = json.loads(dead_letter.encode(dead_letter.from_too_many(EVENT, ("a", "b"), 10)))
    assert record["reason"] == "too_many_webhooks"
    assert record["dropped_webhooks"] == ["a", "b"]
    assert record["endpoint"] == {"id": None, "url": None, "source": "job"}
    assert record["payload"] == {"event": "job.done"}
    assert record["delivery_id"] == delivery_id("E", "too_many_webhooks")


def test_bare_record_copies_nothing() -> None:
    bare = dead_letter.bare(dead_letter.from_failure("E", EVENT, b"raw", "e" * 5000))
    assert (bare.raw, bare.payload, bare.attempts) == (None, msgspec.UNSET, ())
    assert bare.truncated == ("raw", "error")
    assert len(dead_letter.encode(bare)) < 4096
