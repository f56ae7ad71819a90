"""Asymmetric signatures (SPEC §12) end to end: a webhook whose secret is an ed25519 key
(`whsk_`) gets Standard Webhooks `v1a,` signatures that a receiver verifies with the public
key (`whpk_`) the admin API shows; the private key never shows in an answer or a log line.

The `standardwebhooks` package for Python (1.1) checks only `v1,` entries, so `v1a,` ones
are verified by `harness.signatures`, written from the spec's text with PyNaCl."""

from __future__ import annotations

import base64

import pytest
from harness.bridge import BridgeProcess, Bridges
from harness.publish import job_event, publish_event
from harness.receiver import Receiver
from harness.signatures import greenlight_signature_valid, v1a_signature_valid
from nacl.signing import SigningKey
from nats.js import JetStreamContext
from standardwebhooks import Webhook

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TOKEN = "asymmetric-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"ADMIN_TOKEN": TOKEN, "WEBHOOK_ALLOW_PRIVATE_URLS": "true"}
HMAC_SECRET = "whsec_" + base64.b64encode(b"asymmetric-hmac-secret-32-bytes!").decode()


def keypair() -> tuple[str, str]:
    """A `whsk_` private key and its `whpk_` public key, made apart from the bridge."""
    key = SigningKey.generate()
    private = "whsk_" + base64.b64encode(bytes(key)).decode()
    return private, "whpk_" + base64.b64encode(bytes(key.verify_key)).decode()


async def deliver(js: JetStreamContext, receiver: Receiver, bridges: Bridges, n: int) -> None:
    await publish_event(js, job_event("job.completed", f"j-{n}"), f"e-{n}")
    await bridges.wait_for(lambda: receiver.count("/hook") >= n, 15, "nothing delivered")


async def bridge_with_erp(bridges: Bridges, receiver: Receiver, secret: str) -> BridgeProcess:
    """A bridge with the global API webhook `erp`, which signs with `secret`."""
    bridge = await bridges.start(ENV)
    hook = {"id": "erp", "url": receiver.url("/hook"), "scope": "global", "secret": secret}
    created = await bridge.call("POST", "/webhooks", hook, AUTH)
    assert created.status == 201, created.text
    return bridge


async def test_v1a_verifies_with_the_shown_public_key_and_the_private_key_stays_hidden(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    private, public = keypair()
    bridge = await bridges.start(ENV)
    hook = {"id": "erp", "url": receiver.url("/hook"), "scope": "global", "secret": private}
    created = await bridge.call("POST", "/webhooks", hook, AUTH)
    assert created.status == 201, created.text
    shown = await bridge.call("GET", "/webhooks/erp", None, AUTH)
    assert created.json()["public_key"] == shown.json()["public_key"] == public
    await deliver(js, receiver, bridges, 1)

    [delivery] = receiver.received("/hook")
    assert delivery.headers["webhook-signature"].startswith("v1a,")
    assert v1a_signature_valid(public, delivery.body, delivery.header_dict())
    assert "X-Greenlight-Signature" not in delivery.headers, "an HMAC needs a shared secret"
    _, other = keypair()
    assert not v1a_signature_valid(other, delivery.body, delivery.header_dict())
    audit = await bridge.call("GET", "/audit?webhook=erp", None, AUTH)
    assert audit.status == 200
    assert "erp" in audit.text
    seed = private.removeprefix("whsk_")
    for text in (created.text, shown.text, audit.text, bridge.stderr_text()):
        assert seed not in text


async def test_rotation_keeps_the_key_type_and_signs_with_both_keys(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    private, old = keypair()
    bridge = await bridge_with_erp(bridges, receiver, private)
    rotated = await bridge.call("POST", "/webhooks/erp/secret/rotate", None, AUTH)
    assert rotated.status == 200, rotated.text
    assert "secret" not in rotated.json(), "a generated private key stays in the bridge"
    new = rotated.json()["public_key"]
    assert new.startswith("whpk_")
    assert new != old
    await deliver(js, receiver, bridges, 1)

    [delivery] = receiver.received("/hook")
    entries = delivery.headers["webhook-signature"].split()
    assert [entry[:4] for entry in entries] == ["v1a,", "v1a,"]
    assert v1a_signature_valid(new, delivery.body, delivery.header_dict())
    assert v1a_signature_valid(old, delivery.body, delivery.header_dict())
    assert private.removeprefix("whsk_") not in bridge.stderr_text()


async def test_moving_from_hmac_to_ed25519_keeps_the_hmac_signatures_during_the_grace(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    private, public = keypair()
    bridge = await bridge_with_erp(bridges, receiver, HMAC_SECRET)
    rotate = await bridge.call("POST", "/webhooks/erp/secret/rotate", {"secret": private}, AUTH)
    assert rotate.json()["public_key"] == public
    await deliver(js, receiver, bridges, 1)

    [delivery] = receiver.received("/hook")
    headers = delivery.header_dict()
    assert [entry[:3] for entry in headers["webhook-signature"].split()] == ["v1a", "v1,"]
    assert v1a_signature_valid(public, delivery.body, headers)
    Webhook(HMAC_SECRET).verify(delivery.body, headers)  # the official library skips v1a
    greenlight = headers["X-Greenlight-Signature"]
    assert greenlight_signature_valid(HMAC_SECRET, delivery.body, greenlight)


async def test_a_bad_key_is_refused_naming_the_field_without_repeating_it(
    receiver: Receiver, bridges: Bridges
) -> None:
    bridge: BridgeProcess = await bridges.start(ENV)
    short = "whsk_" + base64.b64encode(b"sixteen-byte-key").decode()
    hook = {"id": "erp", "url": receiver.url("/hook"), "secret": short}
    refused = await bridge.call("POST", "/webhooks", hook, AUTH)
    assert refused.status == 400
    assert refused.json() == {"error": "secret: a whsk_ key must be 32 bytes, got 16"}
