"""The KV form of webhook ids and values: every id the contract allows is a valid key, and a
webhook read back is the webhook written."""

from __future__ import annotations

import msgspec
import pytest
from nats.js.kv import _is_key_valid

from bridge.config.secret import Secret
from bridge.config.webhooks import NamedWebhook, RetiringSecret
from bridge.jetstream.webhook_store import decode, encode, kv_key, webhook_id_of


@pytest.mark.parametrize("webhook_id", ["crm", "a.b", ".x", "x.", "a..b", "...", "-_.", "A9"])
def test_every_id_is_a_valid_key_and_comes_back(webhook_id: str) -> None:
    key = kv_key(webhook_id)
    assert _is_key_valid(key)
    assert ".." not in key
    assert webhook_id_of(key) == webhook_id


def test_a_webhook_survives_the_bucket() -> None:
    hook = NamedWebhook(
        id="crm",
        url="https://crm.example.com/h",
        secrets=(Secret("whsec_bmV3"),),
        events=("job.*",),
        tenants=("acme",),
        headers=(("Authorization", Secret("Bearer t")),),
        active=False,
        description="CRM",
        scope="global",
        transform="{a: job_id}",
        rate_limit=2.5,
        timeout_s=3.0,
        max_retry=7,
        source="api",
        retiring=(RetiringSecret(Secret("whsec_b2xk"), 1_800_000_000.0),),
    )
    written = msgspec.json.encode(encode(hook, "2026-12-03T00:00:00.000Z"))
    back, stored = decode(written, revision=9)
    assert back == NamedWebhook(
        **{**{f: getattr(hook, f) for f in hook.__struct_fields__}, "revision": 9}
    )
    assert stored.created_at == "2026-12-03T00:00:00.000Z"
