"""`webhook-bridge demo`: embedded NATS, the bridge, local receivers and a job's lifecycle.

Everything runs in this process except nats-server, on loopback, with data in a temp dir:
deliveries are printed as they land with both signatures verified, a flaky receiver is
retried, a dead one ends in the dead-letter stream and is replayed once it recovers.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

from aiohttp import web

from bridge.app import Bridge
from bridge.cli.demo_webhooks import ADMIN_TOKEN, manage_a_webhook
from bridge.config.settings import Settings, load_settings
from bridge.jetstream import bus, dlq
from bridge.jetstream.bus import JetStream
from bridge.jetstream.embedded import EmbeddedNats, free_port
from bridge.observability.logs import configure_logging
from bridge.policy.routing import Router
from bridge.policy.signing import verify_delivery
from bridge.policy.tasks import timestamp

SECRET = "demo-secret"
DEADLINE_S = 60.0
FLAKY_FAILURES = 2


class DemoReceivers:
    """Three endpoints on one local server: `erp` (healthy), `flaky`, `dead`."""

    def __init__(self) -> None:
        self.delivered: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.dead_alive = False
        self.quiet = False  # set on Ctrl-C: nothing more is printed while cleaning up
        self._attempts: Counter[str] = Counter()
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
        self._attempts[request.headers["X-Greenlight-Delivery"]] += 1
        (self.delivered if status == 200 else self.failed)[name] += 1
        if not self.quiet:
            _say(self._line(name, request, body, status))
        return web.Response(status=status)

    def _line(self, name: str, request: web.Request, body: bytes, status: int) -> str:
        event = json.loads(body)
        delivery = request.headers["X-Greenlight-Delivery"]
        what = f"{event.get('event', '?'):<14} {event.get('job_id', '?'):<11} → {name:<6}"
        attempt = f"attempt {self._attempts[delivery]}"
        if status != 200:
            return f"  ✗ {what} answered {status} ({attempt})"
        return f"  ✓ {what} {delivery[:16]}…  {attempt}, {_verified(request, body)}"

    def _status_for(self, name: str) -> int:
        if name == "flaky" and self._flaky_failures < FLAKY_FAILURES:
            self._flaky_failures += 1
            return 503
        if name == "dead" and not self.dead_alive:
            return 500
        return 200


def _verified(request: web.Request, body: bytes) -> str:
    verified = verify_delivery(SECRET, request.headers, body)
    return "signatures verified" if verified else "SIGNATURE MISMATCH"


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
            "SHUTDOWN_TIMEOUT": "2s",
            "ADMIN_TOKEN": ADMIN_TOKEN,
        }
    )


TASKS = ["convert-fdx-to-screenjson", "validate-screenjson"]
OUTPUTS = [{"task": TASKS[0], "keys": ["screenplays/output/script/json/script.json"]}]
# (event, job, per-job webhook, fields): one job succeeds, the other fails
LIFECYCLE: list[tuple[str, str, str | None, dict[str, object]]] = [
    ("job.queued", "j_demo_ok", "flaky", {"status": "queued"}),
    ("job.started", "j_demo_ok", None, {"status": "running"}),
    ("job.progress", "j_demo_ok", None, {"status": "running", "task": TASKS[0], "percent": 50}),
    ("job.completed", "j_demo_ok", None, {"status": "success", "outputs": OUTPUTS}),
    ("job.queued", "j_demo_bad", "dead", {"status": "queued"}),
    ("job.failed", "j_demo_bad", None, {"status": "failed", "error": "validate-screenjson: bad"}),
]


def _event_body(event: str, job_id: str, fields: dict[str, object]) -> dict[str, object]:
    now = timestamp(time.time())
    body: dict[str, object] = {"event": event, "job_id": job_id, "document_id": "12345"}
    body |= {"tenant_id": "acme", "tasks": TASKS, "started_at": now, **fields}
    if event in ("job.completed", "job.failed"):
        body["finished_at"] = now
    return body


async def _publish_lifecycle(js: JetStream, receivers: DemoReceivers) -> None:
    """Each event once the previous one reached erp, as a real job's events come, so the
    output reads in lifecycle order (the bridge does not order events by default)."""
    for event, job_id, webhook, fields in LIFECYCLE:
        body = _event_body(event, job_id, fields)
        if webhook:
            body["webhook"] = receivers.url(webhook)
        headers = {"Nats-Msg-Id": f"demo-{job_id}-{event}-{time.time_ns()}"}
        expected = receivers.delivered["erp"] + 1
        await js.publish(f"greenlight.events.{event}", json.dumps(body).encode(), headers=headers)
        await _until(_sync(partial(_reached, receivers, expected)), f"{event} at erp")


def _reached(receivers: DemoReceivers, deliveries: int) -> bool:
    return receivers.delivered["erp"] >= deliveries


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not await check():
        _honour_cancellation()
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo gave up waiting for {what}")
        await asyncio.sleep(0.1)


def _honour_cancellation() -> None:
    """Raise if this task was cancelled but the cancellation got lost on the way.

    On Python 3.11 `asyncio.wait_for` (inside nats-py requests) can swallow a cancellation
    that lands as its inner future completes; the request returns and the caller carries on.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _dead_letters(js: JetStream, settings: Settings) -> int:
    info = await js.stream_info(settings.dlq_stream)
    return info.state.messages


class Told(NamedTuple):
    """What the story did: the lifecycle's deliveries by receiver, then how many reached the
    webhook added at run time and how many events went by while it was paused."""

    lifecycle: Counter[str]
    reached: int
    while_paused: int


async def _story(js: JetStream, settings: Settings, receivers: DemoReceivers) -> Told:
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
    replayed, _skipped = await dlq.replay(js, settings, Router(settings), dlq.Filter())

    async def replay_done() -> bool:
        return receivers.delivered["dead"] == 2

    await _until(replay_done, "the replay")
    _say(f"  replayed {replayed} dead letter(s), both delivered")
    lifecycle = Counter(receivers.delivered)
    reached, while_paused = await manage_a_webhook(
        js,
        settings,
        url=receivers.url("bi"),
        secret=SECRET,
        delivered=receivers.delivered.__getitem__,
        until=_until_true,
    )
    return Told(lifecycle, reached, while_paused)


async def _until_true(check: Callable[[], bool], what: str) -> None:
    await _until(_sync(check), what)


async def run_demo(stopping: asyncio.Event) -> int:
    """The whole demo, unless Ctrl-C (`stopping`) comes first: then clean up and return 130."""
    configure_logging("error", "console")
    receivers = DemoReceivers()
    demo = asyncio.create_task(_demo(receivers))
    interrupted = asyncio.create_task(stopping.wait())
    await asyncio.wait({demo, interrupted}, return_when=asyncio.FIRST_COMPLETED)
    interrupted.cancel()
    if demo.done():
        return demo.result()
    receivers.quiet = True
    _say("\ninterrupted: stopping the bridge, the receivers and nats-server")
    await _cancel(demo)  # every `finally` below runs: bridge, receivers, nats-server, temp dir
    return 130


async def _cancel(task: asyncio.Task[int]) -> None:
    """Cancel `task` and wait for its clean-up; the demo's waits honour a lost cancellation."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # interrupted anyway: a failure while cleaning up is not news


async def _demo(receivers: DemoReceivers) -> int:
    started_s = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="webhook-bridge-demo-") as store:
        server = EmbeddedNats(Path(store), port=free_port())
        runner = await receivers.start()
        try:
            nats_url = await server.start()
            _say(f"▶ embedded nats-server on {nats_url}, receivers on 127.0.0.1:{receivers.port}")
            told = await _with_bridge(_settings(nats_url, receivers), receivers)
        finally:
            await runner.cleanup()
            await server.stop()
    _summary(receivers, told, time.monotonic() - started_s)
    return 0


async def _with_bridge(settings: Settings, receivers: DemoReceivers) -> Told:
    bridge, bridge_stopping = Bridge(settings), asyncio.Event()
    running = asyncio.create_task(bridge.run(bridge_stopping))
    try:
        await _until(_sync(bridge.ready), "the bridge to be ready")
        nc = await bus.connect(settings)
        try:
            return await _story(nc.jetstream(), settings, receivers)
        finally:
            await nc.close()
    finally:
        bridge_stopping.set()
        await running


def _sync(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped


def _summary(receivers: DemoReceivers, told: Told, took_s: float) -> None:
    delivered, failed = told.lifecycle, receivers.failed
    counts = ", ".join(f"{name} {count}" for name, count in sorted(delivered.items()))
    _say(f"\n✔ demo complete in {took_s:.1f} s. Deliveries by receiver: {counts}.")
    _say(f"  {len(LIFECYCLE)} events → {delivered.total()} deliveries, every one carrying a valid")
    _say("    X-Greenlight-Signature and Standard Webhooks signature")
    _say(f"  flaky: {failed['flaky']} attempts answered 503, then delivered by a retry")
    _say(f"  dead:  {failed['dead']} attempts answered 500, 2 dead letters, replayed and")
    _say("    delivered with the same delivery ids once it recovered")
    _say(f"  bi:    added, tested and paused with the CLI while events flowed: {told.reached}")
    _say(f"    transformed and signed deliveries, then {told.while_paused} after the pause")
