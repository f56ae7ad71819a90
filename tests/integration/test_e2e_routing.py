"""Routing end to end: defaults, per-job webhooks (current and remembered), de-duplication by URL,
and a named webhook from the YAML config with its own filter, secret and headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.bridge import TEST_SECRET, Bridges
from harness.publish import job_event, publish_event
from harness.receiver import Received, Receiver
from harness.signatures import greenlight_signature_valid, verify_standard_webhooks
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

ERP_SECRET = "erp-only-secret"
QUIET_S = 1.5  # longer than WEBHOOK_RETRY_MAX_WAIT: anything still to come would show


def _named_webhook_yaml(url: str) -> str:
    return f"""\
webhooks:
  - id: erp
    url: {url}
    secret: ${{ERP_WEBHOOK_SECRET}}
    events: ["job.completed"]
    headers:
      X-Erp-Tenant: acme-erp
"""


def _seen(requests: list[Received]) -> list[tuple[str, str]]:
    """(event, job_id) of each request, in arrival order."""
    return [(r.headers["X-Greenlight-Event"], r.json()["job_id"]) for r in requests]


async def test_defaults_per_job_dedup_and_named_webhook(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(_named_webhook_yaml(receiver.url("/erp")))
    await bridges.start(
        {
            "DEFAULT_WEBHOOK_URLS": f"{receiver.url('/a')},{receiver.url('/b')}",
            "DEFAULT_WEBHOOKS": "erp",
            "BRIDGE_CONFIG": str(config),
            "ERP_WEBHOOK_SECRET": ERP_SECRET,
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        }
    )
    counts = dict.fromkeys(("/a", "/b", "/c", "/d", "/erp"), 0)

    async def publish_and_wait(event: dict[str, object], msg_id: str, paths: list[str]) -> None:
        await publish_event(js, event, msg_id)
        for path in paths:
            counts[path] += 1
        await bridges.wait_for(
            lambda: all(actual()[p] >= n for p, n in counts.items()), 15, mismatch
        )

    def actual() -> dict[str, int]:
        return {path: receiver.count(path) for path in counts}

    def mismatch() -> str:
        return f"expected {counts}, got {actual()}"

    # A per-job list that repeats a default URL: each URL still gets exactly one POST.
    started = job_event("job.started", "j1", webhook=[receiver.url("/c"), receiver.url("/a")])
    await publish_and_wait(started, "evt-1", ["/a", "/b", "/c"])
    # Same job, no webhook: the remembered per-job URL still gets it; the named one matches now.
    await publish_and_wait(job_event("job.completed", "j1"), "evt-2", ["/a", "/b", "/c", "/erp"])
    # Another job with the string form; job.started is filtered out for the named webhook.
    other = job_event("job.started", "j2", webhook=receiver.url("/d"))
    await publish_and_wait(other, "evt-3", ["/a", "/b", "/d"])

    await bridges.stays_true(lambda: actual() == counts, QUIET_S, mismatch)
    j1 = [("job.started", "j1"), ("job.completed", "j1")]
    assert sorted(_seen(receiver.received("/a"))) == sorted([*j1, ("job.started", "j2")])
    assert sorted(_seen(receiver.received("/b"))) == sorted([*j1, ("job.started", "j2")])
    assert sorted(_seen(receiver.received("/c"))) == sorted(j1)
    assert _seen(receiver.received("/d")) == [("job.started", "j2")]
    assert _seen(receiver.received("/erp")) == [("job.completed", "j1")]

    assert all("webhook" not in r.json() for r in receiver.requests), "webhook leaked to a receiver"
    first_on_c = receiver.received("/c")[0]
    started.pop("webhook")
    assert first_on_c.json() == started

    delivery_ids = [r.delivery_id for r in receiver.requests]
    assert len(set(delivery_ids)) == len(delivery_ids), "one delivery id per (event, URL)"

    [erp] = receiver.received("/erp")
    assert erp.headers.get("X-Erp-Tenant") == "acme-erp"
    signature = erp.headers["X-Greenlight-Signature"]
    assert greenlight_signature_valid(ERP_SECRET, erp.body, signature)
    assert not greenlight_signature_valid(TEST_SECRET, erp.body, signature)
    verify_standard_webhooks(ERP_SECRET, erp.body, erp.header_dict())
    for default in receiver.received("/a"):
        sig = default.headers["X-Greenlight-Signature"]
        assert greenlight_signature_valid(TEST_SECRET, default.body, sig)
