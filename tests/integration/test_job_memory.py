"""Per-job webhooks remembered in the KV bucket, across processes (bridge in-process)."""

from __future__ import annotations

from harness.inprocess import running_bridge
from harness.nats import NatsServer
from harness.publish import job_event, publish_event
from harness.receiver import Receiver
from harness.waiting import wait_for
from nats.js import JetStreamContext


async def test_new_per_job_webhook_keeps_the_remembered_ones(
    nats_server: NatsServer, js: JetStreamContext, receiver: Receiver
) -> None:
    env = {
        "NATS_URL": nats_server.url,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "SHUTDOWN_TIMEOUT": "1s",
    }
    queued = job_event("job.queued", "j-mem", webhook=receiver.url("/a"))
    async with running_bridge(env):
        await publish_event(js, queued, "evt-1")
        await wait_for(lambda: receiver.count("/a") == 1, 15, "first event at /a")
    # a fresh process has an empty cache: what it knows of the job comes from the bucket
    started = job_event("job.started", "j-mem", webhook=receiver.url("/b"))
    completed = job_event("job.completed", "j-mem")
    async with running_bridge(env):
        await publish_event(js, started, "evt-2")
        await wait_for(lambda: receiver.count("/b") == 1, 15, "second event at /b")
        await wait_for(lambda: receiver.count("/a") == 2, 15, "second event also at /a")
        await publish_event(js, completed, "evt-3")
        await wait_for(lambda: receiver.count("/a") == 3, 15, "third event at /a")
        await wait_for(lambda: receiver.count("/b") == 2, 15, "third event at /b")
    assert [r.json()["event"] for r in receiver.received("/a")] == [
        "job.queued",
        "job.started",
        "job.completed",
    ]
    assert all("webhook" not in r.json() for r in receiver.requests)
