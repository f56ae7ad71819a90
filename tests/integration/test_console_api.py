"""The routes the console reads (SPEC §10) against a real bridge: the overview's figures move
with deliveries and dead letters, a webhook's history counts its attempts."""

from __future__ import annotations

import json

import pytest
from harness.bridge import Bridges
from harness.publish import has_dead_letters, job_event, publish_event
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

TOKEN = "console-api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_stats_and_history_follow_the_deliveries(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    receiver.reply("/dead", 500)
    env = {"ADMIN_TOKEN": TOKEN, "WEBHOOK_MAX_RETRY": "0", "WEBHOOK_ALLOW_PRIVATE_URLS": "true"}
    bridge = await bridges.start({**env, "DEFAULT_WEBHOOK_URLS": receiver.url("/ok")})
    created = await bridge.call(
        "POST", "/webhooks", {"id": "dead", "url": receiver.url("/dead")}, AUTH
    )
    assert created.status == 201, created.text
    for n in range(3):
        await publish_event(js, job_event("job.completed", f"j-stats-{n}"), f"evt-stats-{n}")
    failing = job_event("job.failed", "j-stats-dead", webhook="dead")
    await publish_event(js, failing, "evt-stats-dead")
    await bridges.wait_for(has_dead_letters(js, 1), 15, "no dead letter")
    await bridges.wait_for(lambda: receiver.count("/ok") == 4, 15, "not every event delivered")

    status, text = await bridge.get("/stats", AUTH)
    assert status == 200, text
    stats = json.loads(text)
    assert stats["dead_letters"] == 1
    assert stats["success_ratio"] == 0.8  # 4 of 5 attempts, all since the start
    assert stats["deliveries_per_s"] > 0
    assert stats["dead_lettered_per_s"] > 0

    status, text = await bridge.get("/webhooks/dead/history?within=1h", AUTH)
    assert status == 200, text
    history = json.loads(text)
    assert (history["within_s"], history["bucket_s"], len(history["buckets"])) == (3600, 60, 60)
    counted = [(b["attempts"], b["succeeded"]) for b in history["buckets"] if b["attempts"]]
    assert counted == [(1, 0)]
    assert (await bridge.get("/webhooks/dead/history?within=2d", AUTH))[0] == 400
    assert (await bridge.get("/webhooks/nothing/history", AUTH))[0] == 404
