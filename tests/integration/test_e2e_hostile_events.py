"""Hostile events among good ones: good events are all delivered, hostile ones dead-lettered
with the right reason, and the bridge stays up and ready.

Per-job URLs here all point at loopback (the SSRF guard refuses them), so even a broken guard
could not open a connection anywhere else.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest
from harness.bridge import Bridges
from harness.publish import job_event, publish_event, publish_raw, read_dead_letters
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

MAX_EVENT_BYTES = 4096
SUBJECT = "greenlight.events.job.completed"
GOOD_EVENTS = 20
RANDOM_PAYLOADS = 20
PASSWORD = "hunter2-in-a-url"


def invalid_payloads() -> list[bytes]:
    """Bytes the decoder must turn into `invalid_event` dead letters."""
    rng = random.Random(4)
    explicit = [
        b"",
        b"not json",
        b"[1, 2, 3]",
        b'"just a string"',
        b"null",
        b"\xff\xfe\xfd",
        b'{"event": "\xff"}',
        b'{"event": 42}',
        b'{"event": ""}',
        b'{"event": "a\\u0000b"}',
        b'{"event": "' + b"x" * 300 + b'"}',
        b'{"event": "job.x", "webhook": 7}',
        b'{"event": "job.x", "webhook": [1, 2]}',
        b'{"event": "job.x", "webhook": {"url": "http://127.0.0.1/"}}',
        b'{"event": "job.x", "deep": ' + b"[" * 2000 + b"]" * 2000 + b"}",  # fits the limit
        b'{"event": "job.x", "big": "' + b"a" * MAX_EVENT_BYTES + b'"}',
        b'{"event": "job.x"',
        b"\xef\xbb\xbf{}",
    ]
    # Random bytes that happen to be a JSON object are vanishingly unlikely; "{" keeps them
    # away from being numbers or strings, which are invalid too.
    noise = [b"{" + rng.randbytes(rng.randrange(1, 512)) for _ in range(RANDOM_PAYLOADS)]
    return explicit + noise


def blocked_urls(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/blocked",
        f"http://localhost:{port}/blocked",
        f"http://[::1]:{port}/blocked",
        f"http://[::ffff:127.0.0.1]:{port}/blocked",
        f"http://user:{PASSWORD}@127.0.0.1:{port}/blocked",
        f"http://127.1:{port}/blocked",
        f"http://2130706433:{port}/blocked",
        f"ftp://127.0.0.1:{port}/blocked",
        f"http://127.0.0.1:{port}/blocked\r\nX-Injected: 1",
    ]


def too_long_urls(port: int) -> list[str]:
    """Over the 2048 chars of an entry: dropped before the URL policy sees them."""
    return [f"http://127.0.0.1:{port}/blocked/" + "a" * 2100]


UNKNOWN_IDS = ["no-such-webhook", "../../etc/passwd", "erp\x00", "ünïcödé", "x" * 500]


async def test_hostile_events_are_dead_lettered_and_good_ones_delivered(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start(
        {"DEFAULT_WEBHOOK_URLS": receiver.url("/ok"), "MAX_EVENT_BYTES": str(MAX_EVENT_BYTES)}
    )
    invalid = invalid_payloads()
    blocked = blocked_urls(receiver.port)
    too_long = too_long_urls(receiver.port)
    hostile_valid = [
        job_event("job.completed", f"j-blocked-{i}", webhook=url)
        for i, url in enumerate(blocked + too_long)
    ] + [
        job_event("job.completed", f"j-unknown-{i}", webhook=hook_id)
        for i, hook_id in enumerate(UNKNOWN_IDS)
    ]
    good = [job_event("job.completed", f"j-good-{i}") for i in range(GOOD_EVENTS)]

    # Interleaved, so a hostile event is never only at the end.
    for index, data in enumerate(invalid):
        await publish_raw(js, SUBJECT, data, f"evt-invalid-{index}")
        await publish_event(js, good[index % GOOD_EVENTS], f"evt-good-{index % GOOD_EVENTS}")
    for index, event in enumerate(hostile_valid):
        await publish_event(js, event, f"evt-hostile-{index}")

    expected = {
        "invalid_event": len(invalid),
        "blocked_url": len(blocked),
        "unknown_webhook": len(UNKNOWN_IDS),
        "too_many_webhooks": len(too_long),
    }

    async def all_dead_lettered() -> bool:
        return len(await read_dead_letters(js)) >= sum(expected.values())

    await bridges.wait_for(all_dead_lettered, 40, f"expected dead letters: {expected}")
    letters = await read_dead_letters(js)
    assert Counter(letter.body["reason"] for letter in letters) == expected
    errors = {letter.body.get("error") for letter in letters}
    assert "event is nested too deeply to decode" in errors
    assert "event is not valid UTF-8" in errors

    # Every valid event reached the default URL: good ones, and hostile ones whose own
    # per-job entry was refused. Nothing reached the blocked path.
    valid_events = GOOD_EVENTS + len(hostile_valid)
    await bridges.wait_for(
        lambda: receiver.count("/ok") >= valid_events,
        30,
        lambda: f"/ok got {receiver.count('/ok')} of {valid_events}",
    )
    assert not [r.path for r in receiver.requests if r.path.startswith("/blocked")]

    blocked_letters = [letter.body for letter in letters if letter.body["reason"] == "blocked_url"]
    for letter in blocked_letters:
        [attempt] = letter["attempts"]
        assert attempt["outcome"] == "blocked"
        assert attempt["error"]
        assert "\n" not in attempt["error"]
        assert PASSWORD not in attempt["error"]

    status, _ = await bridge.get("/readyz")
    assert status == 200
    logs = bridge.stdout_text() + bridge.stderr_text()
    assert PASSWORD not in logs
    for line in logs.splitlines():  # one JSON record per line: nothing split a log line
        assert not line.strip() or json.loads(line)
