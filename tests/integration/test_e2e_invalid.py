"""Events that cannot be routed are dead-lettered with their raw bytes, never dropped, and they do
not hold up the good events around them."""

from __future__ import annotations

import base64
import binascii
import json

import pytest
from harness.bridge import Bridges
from harness.metrics import metric_total
from harness.publish import (
    DLQ_PREFIX,
    DeadLetter,
    event_subject,
    has_dead_letters,
    job_event,
    publish_raw,
    read_dead_letters,
)
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

MAX_EVENT_BYTES = 2048
OVERSIZE = json.dumps(job_event("job.progress", "j-big", pad="x" * 2 * MAX_EVENT_BYTES)).encode()
# msg id -> raw bytes, all published on greenlight.events.job.started
BAD_EVENTS = {
    "bad-not-json": b"this is {not json",
    "bad-array": b'[{"event": "job.started", "job_id": "j-array"}]',
    "bad-string": b'"job.started"',
    "bad-not-utf8": b"\xff\xfe\x00\x9c garbage",
    "bad-oversize": OVERSIZE,
}


def _raw_matches(raw: object, expected: bytes) -> bool:
    """`raw` may carry the bytes as text or as base64 (SPEC §4 does not fix the encoding)."""
    if not isinstance(raw, str):
        return False
    if raw.encode() == expected:
        return True
    try:
        return base64.b64decode(raw, validate=True) == expected
    except (binascii.Error, ValueError):
        return False


def _interleaved() -> list[tuple[str, bytes, str]]:
    """(subject, bytes, msg id): a good event, a bad one, a good one, ..."""
    messages = []
    for i, (msg_id, raw) in enumerate(BAD_EVENTS.items()):
        good = json.dumps(job_event("job.queued", f"j-good-{i}")).encode()
        messages.append((event_subject("job.queued"), good, f"good-{i}"))
        messages.append((event_subject("job.started"), raw, msg_id))
    return messages


def _by_event_id(letters: list[DeadLetter]) -> dict[str, list[DeadLetter]]:
    grouped: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        grouped.setdefault(str(letter.body.get("event_id")), []).append(letter)
    return grouped


async def test_garbage_is_dead_lettered_and_good_events_flow(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/hook"), "MAX_EVENT_BYTES": str(MAX_EVENT_BYTES)}
    bridge = await bridges.start(env)
    for subject, data, msg_id in _interleaved():
        await publish_raw(js, subject, data, msg_id)
    # No `event` field: the subject suffix names it, so this one is good, not invalid.
    no_name = {k: v for k, v in job_event("x", "j-good-nameless").items() if k != "event"}
    await publish_raw(js, event_subject("job.completed"), json.dumps(no_name).encode(), "good-x")
    good_jobs = [*(f"j-good-{i}" for i in range(len(BAD_EVENTS))), "j-good-nameless"]

    await bridges.wait_for(
        lambda: receiver.count("/hook") >= len(good_jobs), 20, "good events missing"
    )

    await bridges.wait_for(has_dead_letters(js, len(BAD_EVENTS)), 20, "bad events missing in DLQ")
    letters = _by_event_id(await read_dead_letters(js))
    assert sorted(letters) == sorted(BAD_EVENTS), "exactly one dead letter per bad event"
    for msg_id, raw in BAD_EVENTS.items():
        [letter] = letters[msg_id]
        assert letter.subject == DLQ_PREFIX + "invalid"
        assert letter.body["reason"] == "invalid_event", msg_id
        assert _raw_matches(letter.body.get("raw"), raw), f"{msg_id}: raw bytes not kept"

    delivered = {r.json()["job_id"]: r for r in receiver.received("/hook")}
    assert sorted(delivered) == sorted(good_jobs)
    assert delivered["j-good-nameless"].headers["X-Greenlight-Event"] == "job.completed"
    status, metrics = await bridge.get("/metrics")
    assert status == 200
    invalid = metric_total(metrics, "webhook_bridge_events_invalid_total")
    assert invalid == len(BAD_EVENTS)


async def test_event_too_big_to_retry_is_dead_lettered_once_not_looped(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    """Just under the server's 1 MiB max_payload: no room left to carry it in a retry task.

    Accepting it would make a failing delivery unschedulable and the event redelivered for
    ever; it is dead-lettered (raw bytes cut to fit) and the stream keeps flowing.
    """
    receiver.reply("/down", 500)
    bridge = await bridges.start({"DEFAULT_WEBHOOK_URLS": receiver.url("/down")})
    huge = json.dumps(job_event("job.progress", "j-huge", pad="x" * 1_000_000)).encode()
    await publish_raw(js, event_subject("job.progress"), huge, "evt-huge")
    await bridges.wait_for(has_dead_letters(js, 1), 20, "the huge event was not dead-lettered")
    [letter] = await read_dead_letters(js)
    assert letter.body["reason"] == "invalid_event"
    assert letter.body["raw_size"] == len(huge)
    assert letter.body["raw_truncated"] is True
    assert huge.startswith(letter.body["raw"].encode())
    receiver.reply("/down", 200)
    await publish_raw(js, event_subject("job.done"), b'{"job_id": "j-after"}', "evt-after")
    await bridges.wait_for(lambda: receiver.count("/down") == 1, 20, "the stream stopped")
    assert receiver.received("/down")[0].json()["job_id"] == "j-after"
    assert len(await read_dead_letters(js)) == 1
    assert bridge.running
