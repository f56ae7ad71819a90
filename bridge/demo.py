"""`webhook-bridge demo`: embedded NATS, the bridge, local receivers and a job's lifecycle.

Everything runs in this process except nats-server, on loopback, with data in a temp dir:
deliveries are printed as they land with both signatures verified, a flaky receiver is
retried, a dead one ends in the dead-letter stream and is replayed once it recovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from nats.js import JetStreamContext

from bridge import bus, deadletter
from bridge.app import Bridge
from bridge.config import Settings, load_settings
from bridge.embedded import EmbeddedNats, free_port
from bridge.observability import configure_logging
from bridge.routing import Router
from bridge.signing import verify_greenlight, verify_standard

SECRET = "demo-secret"
DEADLINE_S = 60.0
FLAKY_FAILURES = 2


class DemoReceivers:
    """Three endpoints on one local server: `erp` (healthy), `flaky`, `dead`."""

    def __init__(self) -> None:
        self.delivered: Counter[str] = Counter()
        self.dead_alive = False
        self._flaky_failures = 0
        self.port = 0

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/{name}", self._receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    async def _receive(self, request: web.Request) -> web.Response:
        name, body = request.match_info["name"], await request.read()
        status = self._status_for(name)
        event = json.loads(body).get("event", "?")
        if status == 200:
            self.delivered[name] += 1
            _say(f"  ✓ {event:<14} → {name:<6} {_verified(request, body)}")
        else:
            _say(f"  ✗ {event:<14} → {name:<6} answered {status}")
        return web.Response(status=status)

    def _status_for(self, name: str) -> int:
        if name == "flaky" and self._flaky_failures < FLAKY_FAILURES:
            self._flaky_failures += 1
            return 503
        if name == "dead" and not self.dead_alive:
            return 500
        return 200


def _verified(request: web.Request, body: bytes) -> str:
    headers = request.headers
    greenlight = verify_greenlight(SECRET, body, headers["X-Greenlight-Signature"])
    standard = verify_standard(
        SECRET,
        headers["webhook-id"],
        int(headers["webhook-timestamp"]),
        body,
        headers["webhook-signature"],
    )
    ok = "verified" if greenlight and standard else "SIGNATURE MISMATCH"
    return f"{headers['X-Greenlight-Delivery'][:16]}…  signatures {ok}"


def _say(line: str) -> None:
    print(line, flush=True)


def _settings(nats_url: str, receivers: DemoReceivers) -> Settings:
    return load_settings(
        {
            "NATS_URL": nats_url,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
            "DEFAULT_WEBHOOK_URLS": receivers.url("erp"),
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_MAX_RETRY": "2",
            "WEBHOOK_RETRY_MIN_WAIT": "300ms",
            "WEBHOOK_RETRY_MAX_WAIT": "1s",
            "WEBHOOK_TIMEOUT": "5s",
            "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        }
    )


LIFECYCLE = [
    ("job.queued", "j_demo_ok", "flaky"),
    ("job.started", "j_demo_ok", None),
    ("job.progress", "j_demo_ok", None),
    ("job.completed", "j_demo_ok", None),
    ("job.queued", "j_demo_bad", "dead"),
    ("job.failed", "j_demo_bad", None),
]


async def _publish_lifecycle(js: JetStreamContext, receivers: DemoReceivers) -> None:
    for event, job_id, webhook in LIFECYCLE:
        body: dict[str, object] = {"event": event, "job_id": job_id, "tenant_id": "acme"}
        if webhook:
            body["webhook"] = receivers.url(webhook)
        if event == "job.failed":
            body["error"] = "validate-screenjson: schema mismatch"
        headers = {"Nats-Msg-Id": f"demo-{job_id}-{event}-{time.time_ns()}"}
        await js.publish(f"greenlight.events.{event}", json.dumps(body).encode(), headers=headers)


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo gave up waiting for {what}")
        await asyncio.sleep(0.1)


async def _dead_letters(js: JetStreamContext, settings: Settings) -> int:
    info = await js.stream_info(settings.dlq_stream)
    return info.state.messages


async def _story(js: JetStreamContext, settings: Settings, receivers: DemoReceivers) -> None:
    _say("\n▶ publishing two jobs' lifecycle events (one per-job webhook is flaky, one dead)")
    await _publish_lifecycle(js, receivers)

    async def settled() -> bool:
        erp_done = receivers.delivered["erp"] == len(LIFECYCLE)
        return (
            erp_done
            and receivers.delivered["flaky"] == 4
            and await _dead_letters(js, settings) == 2
        )

    await _until(settled, "the first deliveries")
    _say("\n▶ the dead receiver used up its retries: 2 dead letters. It recovers; replaying them")
    receivers.dead_alive = True
    replayed, _skipped = await deadletter.replay(
        js, settings, Router(settings), deadletter.Filter()
    )
    _say(f"  replayed {replayed} dead letter(s)")

    async def replay_done() -> bool:
        return receivers.delivered["dead"] == 2

    await _until(replay_done, "the replay")


async def run_demo(stopping: asyncio.Event) -> int:
    configure_logging("error", "console")
    with tempfile.TemporaryDirectory(prefix="webhook-bridge-demo-") as store:
        server = EmbeddedNats(Path(store), port=free_port())
        receivers = DemoReceivers()
        runner = await receivers.start()
        try:
            nats_url = await server.start()
            _say(f"▶ embedded nats-server on {nats_url}, receivers on 127.0.0.1:{receivers.port}")
            return await _with_bridge(_settings(nats_url, receivers), receivers, stopping)
        finally:
            await runner.cleanup()
            await server.stop()


async def _with_bridge(
    settings: Settings, receivers: DemoReceivers, stopping: asyncio.Event
) -> int:
    bridge, bridge_stopping = Bridge(settings), asyncio.Event()
    running = asyncio.create_task(bridge.run(bridge_stopping))
    try:
        await _until(_sync(bridge.ready), "the bridge to be ready")
        nc = await bus.connect(settings)
        try:
            story = asyncio.create_task(_story(nc.jetstream(), settings, receivers))
            if not await _unless_stopped(story, stopping):
                return 130
        finally:
            await nc.close()
        _summary(receivers)
        return 0
    finally:
        bridge_stopping.set()
        await running


def _sync(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped


async def _unless_stopped(story: asyncio.Task[None], stopping: asyncio.Event) -> bool:
    """Run the story unless Ctrl-C comes first; False when interrupted."""
    stop = asyncio.create_task(stopping.wait())
    done, _pending = await asyncio.wait({story, stop}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if story not in done:
        story.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await story
        _say("\ninterrupted: cleaning up")
        return False
    story.result()
    return True


def _summary(receivers: DemoReceivers) -> None:
    counts = ", ".join(f"{name} {count}" for name, count in sorted(receivers.delivered.items()))
    _say(f"\n✔ demo complete. Deliveries by receiver: {counts}.")
    _say("  Every delivery carried valid X-Greenlight-Signature and Standard Webhooks signatures;")
    _say("  the flaky receiver got its events after retries; the dead one's were dead-lettered,")
    _say("  then replayed with the same delivery ids once it recovered.")
