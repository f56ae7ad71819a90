"""A slow or dead endpoint must not hold back deliveries to healthy ones (bridge in-process).

The hanging endpoint never answers and the attempt timeout is far longer than the deadline
the test waits for the healthy endpoint: if the bridge waited on the hanging endpoint while
holding events, the healthy deliveries could not all arrive in time.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.inprocess import running_bridge
from harness.nats import NatsServer
from harness.publish import job_event, publish_events_async
from harness.receiver import Receiver
from harness.waiting import wait_for
from nats.js import JetStreamContext

EVENTS = 300
HANG_TIMEOUT = "120s"


def env_for(nats_server: NatsServer, urls: list[str]) -> dict[str, str]:
    return {
        "NATS_URL": nats_server.url,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        "DEFAULT_WEBHOOK_URLS": ",".join(urls),
        "WEBHOOK_TIMEOUT": HANG_TIMEOUT,
        "WEBHOOK_ENDPOINT_CONCURRENCY": "4",
        "WEBHOOK_CONCURRENCY": "64",
        "SHUTDOWN_TIMEOUT": "1s",
        "LOG_LEVEL": "error",
    }


def arrived(receiver: Receiver, path: str, count: int) -> Callable[[], bool]:
    return lambda: len({r.json()["job_id"] for r in receiver.received(path)}) >= count


async def test_hanging_endpoint_does_not_hold_back_healthy_ones(
    nats_server: NatsServer, js: JetStreamContext, receiver: Receiver
) -> None:
    receiver.hang("/hang")
    urls = [receiver.url("/ok-1"), receiver.url("/hang"), receiver.url("/ok-2")]
    async with running_bridge(env_for(nats_server, urls)):
        events = [(f"e{i}", job_event("job.completed", f"j{i}")) for i in range(EVENTS)]
        await publish_events_async(js, events)
        await wait_for(arrived(receiver, "/ok-1", EVENTS), 60, "all events at /ok-1")
        await wait_for(arrived(receiver, "/ok-2", EVENTS), 60, "all events at /ok-2")
        # the hanging endpoint only ever has its concurrency limit of attempts open
        assert receiver.count("/hang") <= 4
        assert receiver.count("/ok-1") == EVENTS


async def test_failing_endpoint_retries_do_not_stall_healthy_one(
    nats_server: NatsServer, js: JetStreamContext, receiver: Receiver
) -> None:
    receiver.reply("/down", 503)
    env = env_for(nats_server, [receiver.url("/down"), receiver.url("/ok")])
    env |= {"WEBHOOK_TIMEOUT": "2s", "WEBHOOK_RETRY_MIN_WAIT": "5s", "WEBHOOK_RETRY_MAX_WAIT": "5s"}
    async with running_bridge(env):
        events = [(f"e{i}", job_event("job.completed", f"j{i}")) for i in range(EVENTS)]
        await publish_events_async(js, events)
        # every healthy delivery lands while hundreds of retries for /down are waiting
        await wait_for(arrived(receiver, "/ok", EVENTS), 60, "all events at /ok")
        assert receiver.count("/ok") == EVENTS


async def test_many_paths_on_one_host_share_the_origin_cap(
    nats_server: NatsServer, js: JetStreamContext, receiver: Receiver
) -> None:
    """Fan-out amplification: events listing many paths on one host must not open a request
    per path at once. Per URL 2, per origin 3; without the origin cap the first event alone
    opens 10."""
    paths = [f"/victim/{i}" for i in range(10)]
    for path in paths:
        receiver.slow(path, 0.2)
    env = env_for(nats_server, []) | {
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "WEBHOOK_ENDPOINT_CONCURRENCY": "2",
        "WEBHOOK_ORIGIN_CONCURRENCY": "3",
    }
    webhook = [receiver.url(path) for path in paths]
    async with running_bridge(env):
        events = [(f"e{i}", job_event("job.completed", f"j{i}", webhook=webhook)) for i in range(3)]
        await publish_events_async(js, events)
        await wait_for(lambda: receiver.count() >= 30, 60, "every path of every event")
        assert receiver.count() == 30
        assert receiver.peak_in_flight == 3
