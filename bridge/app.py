"""Wiring: config → logging → NATS → consumers → HTTP server, and the shutdown order.

Shutdown (SIGTERM): stop fetching → let running attempts finish until SHUTDOWN_TIMEOUT →
hand back what is left (nak) → unsubscribe → close the HTTP client → drain NATS. Anything not
acked by then is redelivered by JetStream, so kill -9 at any moment loses nothing either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

from bridge.admin import server
from bridge.admin.backend import Backend
from bridge.config.settings import Settings
from bridge.config.view import redacted
from bridge.delivery.attempt import Sender
from bridge.delivery.slots import EndpointLimiter
from bridge.jetstream import bus, lag
from bridge.jetstream.bus import Connection, JetStream
from bridge.jetstream.consumers import ConsumerLoop
from bridge.jetstream.disabled_webhooks import DisabledWebhooks
from bridge.jetstream.dispatch import Dispatcher
from bridge.jetstream.endpoint_health import EndpointHealth
from bridge.jetstream.handlers import EventHandler, TaskHandler, event_size_limit
from bridge.jetstream.holding import Holding
from bridge.jetstream.job_webhooks import JobWebhooks
from bridge.jetstream.ops_events import OpsEvents
from bridge.jetstream.ordering import Turns
from bridge.jetstream.rate_limits import RateLimits
from bridge.jetstream.receiver_signals import ReceiverSignals
from bridge.jetstream.webhook_store import WebhookStore
from bridge.observability.logs import log
from bridge.observability.metrics import Metrics
from bridge.observability.tracing import close_spans, start_spans
from bridge.policy.routing import Router

CONNECT_RETRY_S = 2.0
LOG_FLUSH_S = 2.0
SPANS_CLOSE_S = 5.0
NATS_CLOSE_S = 5.0


class Bridge:
    """One bridge process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.router = Router(settings)
        self.backend = Backend(settings, self.router, self.metrics)
        self._connected = False
        self._bound = False
        self._dispatcher: Dispatcher | None = None
        self._jobs: JobWebhooks | None = None
        self.store: WebhookStore | None = None
        self.health: EndpointHealth | None = None
        self._ops: OpsEvents | None = None
        self._disabled: DisabledWebhooks | None = None
        self.http_port = 0
        self.spans = start_spans(settings.otel_endpoint)  # None: no span, no cost
        self._count_webhooks()

    def ready(self) -> bool:
        loaded = self.store is not None and self.store.state != "loading"
        loaded = loaded and self.health is not None and self.health.loaded.is_set()
        return self._connected and self._bound and loaded

    def _count_webhooks(self) -> None:
        counts: Counter[tuple[str, bool]] = Counter(
            (hook.source, hook.active) for hook in self.router.webhooks()
        )
        counts["env", True] += len(self.settings.default_webhook_urls)
        self.metrics.count_webhooks(counts)

    def _on_connection(self, connected: bool) -> None:
        self._connected = connected
        self.metrics.nats_connected.set(1 if connected else 0)
        log.info("nats connected" if connected else "nats disconnected")

    async def run(self, stopping: asyncio.Event) -> None:
        log.info("starting", config=redacted(self.settings))
        _warn_about_defaults(self.settings)
        runner = await self._serve_http()
        try:
            nc = await self._connect(stopping)
            if nc is not None:
                await self._consume(nc, stopping)
        except Exception:
            log.exception("bridge crashed")
            raise
        finally:
            await runner.cleanup()
            await self._close_spans()
        log.info("stopped")

    async def _close_spans(self) -> None:
        if self.spans is not None:
            await close_spans(self.spans, SPANS_CLOSE_S)

    async def _serve_http(self) -> web.AppRunner:
        app = server.build_app(self.backend, self.ready)
        runner = await server.start_server(app, self.settings.http_host, self.settings.http_port)
        self.http_port = server.bound_port(runner)
        log.info("http server listening", host=self.settings.http_host, port=self.http_port)
        return runner

    async def _connect(self, stopping: asyncio.Event) -> Connection | None:
        """Retry until NATS answers and the topology exists; /readyz says 503 meanwhile."""
        while not stopping.is_set():
            try:
                nc = await bus.connect(self.settings, self._on_connection)
                self._on_connection(True)
                try:
                    await bus.ensure_topology(nc.jetstream(), self.settings)
                except bus.BusError:
                    await nc.close()  # left open, it would reconnect for ever in the background
                    raise
                return nc
            except bus.BusError as error:
                log.warning("nats not available yet", error=str(error))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), CONNECT_RETRY_S)
        return None

    async def _consume(self, nc: Connection, stopping: asyncio.Event) -> None:
        js = nc.jetstream()
        sender = Sender(
            timeout_s=self.settings.timeout_s,
            pool_size=self.settings.concurrency,
            allow_private_urls=self.settings.allow_private_urls,
            allowed_cidrs=self.settings.allowed_cidrs,
            require_https=self.settings.require_https,
            proxy=self.settings.proxy_url,
        )
        await sender.start()
        loops = await self._loops(
            nc, sender, event_size_limit(self.settings.max_event_bytes, nc.max_payload)
        )
        self._bound = True
        self.backend.js = js
        log.info("consuming", stream=self.settings.nats_stream, durable=self.settings.nats_durable)
        try:
            await self._run_loops(loops, js, stopping)
        finally:
            self._bound = False
            self.backend.js = None
            await self._shutdown(nc, loops, sender)

    async def _loops(
        self, nc: Connection, sender: Sender, max_event_bytes: int
    ) -> list[ConsumerLoop]:
        """Every collaborator of the handlers is built here and handed in."""
        settings, js = self.settings, nc.jetstream()
        hooks_kv = await js.key_value(settings.webhooks_bucket)  # created by ensure_topology
        self.store = self.backend.store = WebhookStore(hooks_kv, self.router, self._count_webhooks)
        limiter = EndpointLimiter(
            settings.endpoint_concurrency,
            max_total_waiting=settings.concurrency,
            origin_limit=settings.origin_limit,
        )
        health = self.health = self.backend.health = await self._endpoint_health(js, limiter)
        dispatcher = self._dispatcher = self.backend.dispatcher = Dispatcher(
            settings,
            self.router,
            sender,
            nc,
            metrics=self.metrics,
            limiter=limiter,
            spans=self.spans,
            health=health,
        )
        holding = Holding(health, dispatcher, settings.hold_max_s)
        jobs = await self._job_webhooks(nc)
        dispatcher.signals = await self._signals(js, jobs, health)
        rates = RateLimits(await js.key_value(settings.rates_bucket))
        on_event = EventHandler(
            settings,
            router=self.router,
            jobs=jobs,
            dispatcher=dispatcher,
            limiter=limiter,
            rates=rates,
            metrics=self.metrics,
            max_event_bytes=max_event_bytes,
            spans=self.spans,
            holding=holding,
        )
        turns = Turns(nc, settings)
        on_task = TaskHandler(
            settings,
            dispatcher=dispatcher,
            limiter=limiter,
            rates=rates,
            turns=turns,
            holding=holding,
        )
        return await _consumer_loops(js, settings, on_event, on_task)

    async def _endpoint_health(self, js: JetStream, limiter: EndpointLimiter) -> EndpointHealth:
        settings = self.settings
        self._ops = OpsEvents(js, self.router, settings.ops_webhooks, bus.tasks_subject(settings))
        kv = await js.key_value(settings.endpoints_bucket)  # created by ensure_topology
        health = EndpointHealth(kv, settings, limiter=limiter, ops=self._ops)
        self.metrics.watch_endpoints(health.statuses)
        return health

    async def _signals(
        self, js: JetStream, jobs: JobWebhooks, health: EndpointHealth
    ) -> ReceiverSignals | None:
        if self.store is None or self._ops is None:
            return None
        kv = await js.key_value(self.settings.disabled_bucket)  # created by ensure_topology
        self._disabled = DisabledWebhooks(kv, self.router)
        return ReceiverSignals(
            js,
            router=self.router,
            store=self.store,
            jobs=jobs,
            metrics=self.metrics,
            ops=self._ops,
            disable_config=self._disabled.disable,
            health=health,
            disable_after_s=self.settings.disable_after_s,
        )

    async def _job_webhooks(self, nc: Connection) -> JobWebhooks:
        settings = self.settings
        self._jobs = JobWebhooks(
            await nc.jetstream().key_value(settings.jobs_bucket),
            settings.job_webhook_ttl_s,
            max_entries=settings.job_webhook_max,
            max_value_bytes=bus.max_body_bytes(nc),
        )
        return self._jobs

    async def _run_loops(
        self, loops: list[ConsumerLoop], js: JetStream, stopping: asyncio.Event
    ) -> None:
        ack_wait_s = self.settings.effective_ack_wait_s
        async with asyncio.TaskGroup() as group:
            if self.store is not None:  # no event before the API's webhooks are known
                group.create_task(self.store.follow(stopping))
                await _first_of(self.store.loaded.wait(), stopping.wait())
            if self.health is not None:  # nor before the endpoints that are down
                group.create_task(self.health.follow(stopping))
                await _first_of(self.health.loaded.wait(), stopping.wait())
            if self._disabled is not None:
                group.create_task(self._disabled.follow(stopping))
            for loop in loops:
                group.create_task(loop.run(stopping, ack_wait_s))
            group.create_task(lag.watch(js, self.settings, self.metrics, stopping))
            if self._jobs is not None:
                group.create_task(self._jobs.mirror(stopping))

    async def _shutdown(self, nc: Connection, loops: list[ConsumerLoop], sender: Sender) -> None:
        log.info("draining", deadline_s=self.settings.shutdown_timeout_s)
        await asyncio.gather(*(loop.drain(self.settings.shutdown_timeout_s) for loop in loops))
        if self._dispatcher is not None:
            await self._dispatcher.flush(LOG_FLUSH_S)
        if self.health is not None:
            await self.health.settle()
        await sender.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.drain(), NATS_CLOSE_S)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), NATS_CLOSE_S)


async def _consumer_loops(
    js: JetStream, settings: Settings, on_event: EventHandler, on_task: TaskHandler
) -> list[ConsumerLoop]:
    durable, capacity = settings.nats_durable, settings.concurrency
    events = await js.pull_subscribe_bind(durable, settings.nats_stream)
    tasks = await js.pull_subscribe_bind(durable, settings.tasks_stream)
    return [
        ConsumerLoop("events", events, on_event, capacity, on_failure=on_event.failed),
        ConsumerLoop("tasks", tasks, on_task, capacity * 2),
    ]


async def _first_of(*waits: Coroutine[Any, Any, object]) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def _warn_about_defaults(settings: Settings) -> None:
    if settings.secret_is_default:
        log.warning("WEBHOOK_SECRET is the default 'secret': set a real secret in production")
    if settings.admin_token is None and not any(t.role == "admin" for t in settings.tokens):
        log.warning("ADMIN_TOKEN is not set: server routes are read-only")
