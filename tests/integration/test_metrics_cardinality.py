"""Thousands of per-job hosts must not create thousands of series: a running bridge, real
traffic to 300 distinct loopback hosts, and the `endpoint` label capped at 200 + `other`."""

from __future__ import annotations

import re

import pytest
from harness.bridge import Bridges
from harness.publish import has_dead_letters, job_event, publish_events_async
from nats.js import JetStreamContext

from bridge.observability.metrics import MAX_ENDPOINT_LABELS, OTHER_LABEL

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

HOSTS = 300
ENDPOINT = re.compile(r'endpoint="([^"]*)"')


def _endpoints(exposition: str, metric: str) -> set[str]:
    return {
        match.group(1)
        for line in exposition.splitlines()
        if line.startswith(metric) and (match := ENDPOINT.search(line))
    }


async def test_endpoint_label_stays_bounded(js: JetStreamContext, bridges: Bridges) -> None:
    # 127.0.1.x and 127.0.2.x are loopback: nothing listens on port 9, every attempt fails fast
    hosts = [f"127.0.{1 + n // 250}.{1 + n % 250}" for n in range(HOSTS)]
    env = {"WEBHOOK_ALLOW_PRIVATE_URLS": "true", "WEBHOOK_MAX_RETRY": "0"}
    bridge = await bridges.start(env)
    events = [
        (f"evt-{n}", job_event("job.failed", f"j-{n}", webhook=f"http://{host}:9/hook"))
        for n, host in enumerate(hosts)
    ]
    await publish_events_async(js, events)
    await bridges.wait_for(has_dead_letters(js, HOSTS), 60, "not every delivery failed")
    exposition = (await bridge.get("/metrics"))[1]
    for metric in ("webhook_bridge_delivery_attempts_total", "webhook_bridge_deliveries_total"):
        labels = _endpoints(exposition, metric)
        assert len(labels) == MAX_ENDPOINT_LABELS + 1, metric
        assert OTHER_LABEL in labels
