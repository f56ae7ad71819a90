"""The HTTP server end to end: health, metrics, admin auth, and secrets kept out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.bridge import TEST_SECRET, BridgeProcess, Bridges
from harness.metrics import metric_total
from harness.publish import job_event, publish_event
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

ADMIN_TOKEN = "admin-token-for-tests"
NAMED_SECRET = "named-webhook-secret"
SECRETS = (NAMED_SECRET, TEST_SECRET, ADMIN_TOKEN)


async def _bridge_after_one_delivery(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> BridgeProcess:
    """A bridge with a named webhook `crm` (own secret) and ADMIN_TOKEN, after one delivery."""
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"webhooks:\n  - id: crm\n    url: {receiver.url('/crm')}\n    secret: {NAMED_SECRET}\n"
    )
    env = {"BRIDGE_CONFIG": str(config), "DEFAULT_WEBHOOKS": "crm", "ADMIN_TOKEN": ADMIN_TOKEN}
    bridge = await bridges.start(env)
    await publish_event(js, job_event("job.completed", "j-admin"), "evt-admin")
    await bridges.wait_for(lambda: receiver.count("/crm") == 1, 15, "no delivery")
    return bridge


async def test_health_metrics_and_logs_keep_secrets(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    bridge = await _bridge_after_one_delivery(js, receiver, bridges, tmp_path)
    assert (await bridge.get("/healthz"))[0] == 200
    status, metrics = await bridge.get("/metrics")
    assert status == 200

    async def delivered_counted() -> bool:
        text = (await bridge.get("/metrics"))[1]
        return metric_total(text, "webhook_bridge_deliveries_total") >= 1

    await bridges.wait_for(delivered_counted, 5, "webhook_bridge_deliveries_total never counted it")
    exposed = metrics + bridge.stdout_text() + bridge.stderr_text()
    assert not [s for s in SECRETS if s in exposed], "a secret leaked into metrics or logs"
