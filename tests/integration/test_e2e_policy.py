"""Delivery policy end to end: untrusted per-job URLs, unknown webhook ids, timeouts, redirects."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from harness.bridge import Bridges
from harness.publish import (
    DeadLetter,
    has_dead_letters,
    job_event,
    publish_event,
    read_dead_letters,
)
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

QUIET_S = 1.5


async def _dead_letters(bridges: Bridges, js: JetStreamContext, count: int) -> list[DeadLetter]:
    """Wait until `count` dead letters exist, then return them."""
    await bridges.wait_for(has_dead_letters(js, count), 20, f"expected {count} dead letter(s)")
    return await read_dead_letters(js)


async def test_private_per_job_urls_are_blocked_operator_urls_trusted(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    await bridges.start({"DEFAULT_WEBHOOK_URLS": receiver.url("/ok")})
    port = receiver.port
    untrusted = [
        receiver.url("/private"),
        f"http://localhost:{port}/by-name",
        f"http://[::ffff:127.0.0.1]:{port}/mapped",
    ]
    await publish_event(js, job_event("job.completed", "j-ssrf", webhook=untrusted), "evt-ssrf")

    letters = await _dead_letters(bridges, js, len(untrusted))
    # Paths, not whole URLs: a URL library may normalise the IPv6 literal.
    paths = sorted(urlsplit(letter.body["endpoint"]["url"]).path for letter in letters)
    assert paths == ["/by-name", "/mapped", "/private"]
    assert {letter.body["reason"] for letter in letters} == {"blocked_url"}
    assert {letter.body["endpoint"]["source"] for letter in letters} == {"job"}
    await bridges.stays_true(
        lambda: [r.path for r in receiver.requests] == ["/ok"],
        QUIET_S,
        lambda: f"requests: {[r.path for r in receiver.requests]}, want only /ok",
    )


async def test_unknown_webhook_id_on_event_is_dead_lettered(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    await bridges.start({"DEFAULT_WEBHOOK_URLS": receiver.url("/ok")})
    event = job_event("job.completed", "j-unknown", webhook="no-such-webhook")
    await publish_event(js, event, "evt-unknown")

    [letter] = await _dead_letters(bridges, js, 1)
    assert letter.body["reason"] == "unknown_webhook"
    assert letter.body["event_id"] == "evt-unknown"
    await bridges.wait_for(
        lambda: receiver.count("/ok") == 1, 15, "the default URL must still get it"
    )


async def test_timeout_is_a_failed_attempt(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.hang("/slow")
    env = {
        "DEFAULT_WEBHOOK_URLS": receiver.url("/slow"),
        "WEBHOOK_TIMEOUT": "500ms",
        "WEBHOOK_MAX_RETRY": "1",
    }
    await bridges.start(env)
    await publish_event(js, job_event("job.completed", "j-slow"), "evt-slow")

    [letter] = await _dead_letters(bridges, js, 1)
    assert letter.body["reason"] == "max_retries_exceeded"
    attempts = letter.body["attempts"]
    assert len(attempts) == 2
    assert all(a["status_code"] is None and a["error"] for a in attempts), attempts
    assert receiver.count("/slow") == 2


async def test_redirect_is_not_followed(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/moved", 302, headers={"Location": receiver.url("/target")})
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/moved"), "WEBHOOK_MAX_RETRY": "0"}
    await bridges.start(env)
    await publish_event(js, job_event("job.completed", "j-moved"), "evt-moved")

    [letter] = await _dead_letters(bridges, js, 1)
    assert letter.body["reason"] == "max_retries_exceeded"
    assert [a["status_code"] for a in letter.body["attempts"]] == [302]
    assert receiver.count("/target") == 0
    assert receiver.count("/moved") == 1
