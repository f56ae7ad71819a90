"""WEBHOOK_ALLOWED_CIDRS and WEBHOOK_REQUIRE_HTTPS on per-job URLs, end to end, on loopback."""

from __future__ import annotations

import pytest
from harness.bridge import Bridges
from harness.publish import has_dead_letters, job_event, publish_event, read_dead_letters
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_an_allowed_cidr_opens_exactly_its_addresses(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    await bridges.start({"WEBHOOK_ALLOWED_CIDRS": "127.0.0.1/32"})
    allowed = receiver.url("/allowed")
    refused = f"http://[::1]:{receiver.port}/refused"  # loopback too, but not in the list
    event = job_event("job.completed", "j-cidr", webhook=[allowed, refused])
    await publish_event(js, event, "evt-cidr")

    await bridges.wait_for(lambda: receiver.count("/allowed") == 1, 20, "allowed URL not called")
    await bridges.wait_for(has_dead_letters(js, 1), 20, "refused URL not dead-lettered")
    [letter] = await read_dead_letters(js)
    assert letter.body["reason"] == "blocked_url"
    assert letter.body["attempts"][0]["error"] == "::1: loopback address"
    assert receiver.count("/refused") == 0


async def test_require_https_refuses_plain_http_per_job_urls(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    await bridges.start({"WEBHOOK_ALLOWED_CIDRS": "127.0.0.1", "WEBHOOK_REQUIRE_HTTPS": "true"})
    event = job_event("job.completed", "j-https", webhook=receiver.url("/plain"))
    await publish_event(js, event, "evt-https")

    await bridges.wait_for(has_dead_letters(js, 1), 20, "http URL not dead-lettered")
    [letter] = await read_dead_letters(js)
    assert letter.body["reason"] == "blocked_url"
    assert letter.body["attempts"][0]["error"] == "127.0.0.1: https is required"
    assert receiver.count() == 0


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"WEBHOOK_ALLOWED_CIDRS": "10.0.0.0/8,10.0.0.1/8"},
            "WEBHOOK_ALLOWED_CIDRS: '10.0.0.1/8' is not a CIDR network",
        ),
        ({"WEBHOOK_ALLOWED_CIDRS": "everything"}, "WEBHOOK_ALLOWED_CIDRS: 'everything' is not"),
    ],
)
async def test_an_invalid_cidr_stops_start_up_with_one_line(
    bridges: Bridges, env: dict[str, str], line: str
) -> None:
    bridge = bridges.new(env)
    await bridge.start()
    assert await bridge.wait_exit() == 2
    lines = bridge.stderr_text().strip().splitlines()
    assert len(lines) == 1, lines
    assert line in lines[0]
