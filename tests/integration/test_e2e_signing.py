"""Both signature schemes and the delivery headers, checked the way receivers check them."""

from __future__ import annotations

import pytest
from harness.bridge import TEST_SECRET, Bridges
from harness.publish import job_event, publish_event
from harness.receiver import Receiver
from harness.signatures import greenlight_signature_valid, verify_standard_webhooks
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


async def test_delivery_is_signed_both_ways(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    await bridges.start({"DEFAULT_WEBHOOK_URLS": receiver.url("/hook")})
    event = job_event("job.completed", "j-sig", extra={"unknown": ["kept", 1, None]}, note="é ✓")
    await publish_event(js, event, "evt-sig")
    await bridges.wait_for(lambda: receiver.count("/hook") >= 1, 15, "no delivery")

    [delivery] = receiver.received("/hook")
    headers = delivery.headers
    assert delivery.method == "POST"
    assert delivery.json() == event, "body must be the event (unknown fields kept)"
    assert greenlight_signature_valid(TEST_SECRET, delivery.body, headers["X-Greenlight-Signature"])
    verify_standard_webhooks(TEST_SECRET, delivery.body, delivery.header_dict())
    assert headers["X-Greenlight-Event"] == "job.completed"
    assert headers["X-Greenlight-Delivery"]
    assert headers["webhook-id"] == headers["X-Greenlight-Delivery"]
    assert headers["User-Agent"].startswith("webhook-bridge/")
    assert headers["Content-Type"].split(";")[0].strip() == "application/json"
