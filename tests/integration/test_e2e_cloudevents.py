"""CloudEvents (SPEC §12) end to end: `webhook-bridge run`, webhooks with `format: cloudevents`
and `cloudevents-binary` created through the admin API, and a receiver that parses what
arrives with the CNCF SDK (`cloudevents` 2.x) exactly as a receiver would, and checks the
signatures over the bytes it received."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from harness.bridge import TEST_SECRET, BridgeProcess, Bridges
from harness.publish import job_event, publish_event
from harness.receiver import Received, Receiver
from harness.signatures import greenlight_signature_valid, verify_standard_webhooks
from nats.js import JetStreamContext
from standardwebhooks import Webhook

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

TOKEN = "cloudevents-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SOURCE = "https://bridge.example.com/greenlight"
SECRET = "whsec_" + base64.b64encode(b"cloudevents-secret-of-32-bytes!!").decode()
ENV = {"ADMIN_TOKEN": TOKEN, "WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WEBHOOK_CE_SOURCE": SOURCE}


async def create(bridge: BridgeProcess, **fields: Any) -> None:
    answer = await bridge.call("POST", "/webhooks", {"scope": "global", **fields}, AUTH)
    assert answer.status == 201, answer.text
    assert answer.json()["format"] == fields["format"]


def parsed(delivery: Received) -> BaseCloudEvent:
    """What a receiver's handler does with the request: the SDK picks the mode itself."""
    return from_http_event(HTTPMessage(headers=delivery.header_dict(), body=delivery.body))


def signed_by(secret: str, delivery: Received) -> bool:
    Webhook(secret).verify(delivery.body, delivery.header_dict())  # raises when it does not
    header = delivery.headers["X-Greenlight-Signature"]
    return greenlight_signature_valid(secret, delivery.body, header)


async def test_both_modes_parse_with_the_sdk_and_verify_over_the_bytes_received(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start({**ENV, "DEFAULT_WEBHOOK_URLS": receiver.url("/raw")})
    await create(bridge, id="ce", url=receiver.url("/ce"), format="cloudevents", secret=SECRET)
    shape = "{job: job_id, status: status}"
    await create(bridge, id="bin", url=receiver.url("/bin"), format="cloudevents-binary",
                 secret=SECRET, transform=shape)  # fmt: skip
    event = job_event("job.completed", "j-ce", note="é ✓", webhook="ce")
    ack = await publish_event(js, event, "evt-ce-1")
    paths = ("/raw", "/ce", "/bin")
    await bridges.wait_for(lambda: all(receiver.count(p) for p in paths), 20, "not delivered")
    stored = await js.get_msg(ack.stream, ack.seq)
    assert stored.time is not None
    body = {key: value for key, value in event.items() if key != "webhook"}

    [raw], [structured], [binary] = (receiver.received(p) for p in paths)
    assert raw.json() == body, "a webhook without format (and every default URL) stays raw"
    assert raw.headers["Content-Type"] == "application/json"
    assert structured.headers["Content-Type"] == "application/cloudevents+json"
    assert binary.headers["Content-Type"] == "application/json"
    assert binary.headers["ce-specversion"] == "1.0"
    assert binary.json() == {"job": "j-ce", "status": "success"}, "binary: the body is the data"
    for delivery, data in ((structured, body), (binary, binary.json())):
        ce = parsed(delivery)
        assert ce.get_specversion() == "1.0"
        assert ce.get_id() == "evt-ce-1"
        assert ce.get_type() == "job.completed"
        assert ce.get_source() == SOURCE
        assert ce.get_subject() == "j-ce"
        assert ce.get_data() == data
        assert abs(ce.get_time() - stored.time) < timedelta(milliseconds=2)
        assert signed_by(SECRET, delivery), "signatures cover the bytes sent"
    verify_standard_webhooks(TEST_SECRET, raw.body, raw.header_dict())


async def test_format_changes_through_the_api_and_a_bad_one_names_the_field(
    receiver: Receiver, bridges: Bridges
) -> None:
    bridge = await bridges.start(ENV)
    await create(bridge, id="hook", url=receiver.url("/hook"), format="raw")
    patched = await bridge.call("PATCH", "/webhooks/hook", {"format": "cloudevents"}, AUTH)
    assert patched.status == 200, patched.text
    assert patched.json()["format"] == "cloudevents"
    tested = await bridge.call("POST", "/webhooks/hook/test", None, AUTH)
    assert tested.json()["status"] == "success", tested.text
    [delivery] = receiver.received("/hook")
    assert parsed(delivery).get_type() == "webhook.test"
    assert parsed(delivery).get_subject() is None, "no job, no subject"
    bad = await bridge.call("PATCH", "/webhooks/hook", {"format": "xml"}, AUTH)
    assert bad.status == 400
    assert bad.json()["error"].startswith("format: expected one of raw, cloudevents")
