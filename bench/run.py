"""One scenario run: a fresh nats-server, events published, then each consumer measured.

Consumers take turns on the same server (their own durables on the same stream), in
alternating order from run to run, each with fresh receiver processes. A backlog is
published once and read by every consumer; live (latency) events are published per consumer
once it is fetching, the stream purged in between. With API webhooks the backlog too is
published per consumer, once the bridge lists every webhook (the bridge would drop events
that arrive before them) and the consumer is fetching.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec
import nats
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from bench import webhooks
from bench.processes import (
    Child,
    Meter,
    Receiver,
    Stats,
    start_bridge,
    start_nats,
    start_profiler,
    start_raw,
)
from bench.report import Measurement, Run
from bench.scenarios import Mode, Scenario

STREAM = "GREENLIGHT_EVENTS"
SUBJECT = "greenlight.events.job.completed"
SECRET = "bench-secret"
SAMPLE_S = 0.1
PUBLISH_WINDOW = 4000
MIN_DEADLINE_S = 60.0
SLOWEST_RATE_PER_S = 100.0
FETCHING_TIMEOUT_S = 30.0
RECEIVER_ARGS: dict[Mode, tuple[str, ...]] = {
    "fast": (),
    "slow": ("--delay-ms", "50"),
    "hang": ("--hang",),
}
NAMES = ("job.completed",)
EVENT = (
    '{"event":"%s","job_id":"j_%d","document_id":"12345","tenant_id":"acme",'
    '"tasks":["convert-fdx-to-screenjson","validate-screenjson"],"status":"success",'
    '"started_at":"2026-01-14T10:30:00Z","finished_at":"2026-01-14T10:30:12Z",'
    '"outputs":[{"task":"convert-fdx-to-screenjson","keys":["screenplays/output/script.json"]}],'
    '"error":null,"sent_at":%.6f}'
)


@dataclass(frozen=True)
class Variant:
    """A consumer to measure: `raw` or the bridge, over some of the scenario's endpoints."""

    name: str
    bridge: bool
    endpoints: tuple[int, ...]


def variants(scenario: Scenario, run_index: int) -> list[Variant]:
    every = tuple(range(len(scenario.endpoints)))
    found = [Variant("raw", False, scenario.healthy), Variant("bridge", True, every)]
    if scenario.reference:
        found.append(Variant("reference", True, scenario.healthy))
    return found if run_index % 2 == 0 else found[::-1]


def event_body(index: int, names: tuple[str, ...] = NAMES) -> bytes:
    """Event `index`, named after the names in turn."""
    return (EVENT % (names[index % len(names)], index, time.time())).encode()


async def run_once(scenario: Scenario, workdir: Path, run_index: int, profile: bool) -> Run:
    """Measure each variant once; `profile` attaches py-spy to each consumer (slows it a little)."""
    server = await start_nats(workdir / "nats")
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(name=STREAM, subjects=["greenlight.events.>"], storage=StorageType.FILE)
        )
        if scenario.backlog:
            await publish_backlog(js, scenario.events)
        found: Run = {}
        for variant in variants(scenario, run_index):
            if not scenario.backlog:
                await js.purge_stream(STREAM)
            measure = Measure(scenario, variant, server.url, js, workdir, profile=profile)
            found[variant.name] = await measure.run()
        return found
    finally:
        await nc.close()
        await server.stop()
        shutil.rmtree(workdir / "nats", ignore_errors=True)


async def publish_backlog(
    js: JetStreamContext, count: int, names: tuple[str, ...] = NAMES, tag: str = "bench"
) -> None:
    """As fast as the server takes them; `tag` as in `publish_live`."""
    pending = []
    for index in range(count):
        headers = {"Nats-Msg-Id": f"{tag}-{index}"}
        body = event_body(index, names)
        pending.append(await js.publish_async(SUBJECT, body, headers=headers))
        if len(pending) >= PUBLISH_WINDOW:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def publish_live(js: JetStreamContext, count: int, rate_per_s: float, tag: str) -> None:
    """`count` events at a steady rate; each body carries its publish time (`sent_at`).

    `tag` keeps message ids apart from an earlier consumer's (a purge keeps the dedup window).
    """
    pending = []
    started_s = time.monotonic()
    for index in range(count):
        wait_s = started_s + index / rate_per_s - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        headers = {"Nats-Msg-Id": f"{tag}-{index}"}
        pending.append(await js.publish_async(SUBJECT, event_body(index), headers=headers))
    await asyncio.gather(*pending)


class Measure:
    """Measures one consumer: start receivers and the consumer, sample until all arrived."""

    def __init__(
        self,
        scenario: Scenario,
        variant: Variant,
        nats_url: str,
        js: JetStreamContext,
        workdir: Path,
        *,
        profile: bool,
    ) -> None:
        self.profile = profile
        self.scenario = scenario
        self.variant = variant
        self.nats_url = nats_url
        self.js = js
        self.workdir = workdir
        self.durable = f"bench-{variant.name}"
        modes = [scenario.endpoints[i] for i in variant.endpoints]
        self.healthy = [i for i, mode in enumerate(modes) if mode != "hang"]
        self.expected = scenario.events * len(self.healthy) * scenario.per_event
        self.hooks = webhooks.catalog(scenario.api_webhooks) if scenario.api_webhooks else []

    async def run(self) -> Measurement:
        receivers = await asyncio.gather(*(self._receiver(i) for i in self.variant.endpoints))
        consumer = await self._consumer(receivers)
        profiler = None
        try:
            if self.hooks:  # before the profiler: creating the webhooks is no part of it
                await self._ready_for_webhook_events(consumer, receivers[0])
            if self.profile:
                output = self.workdir / f"{self.variant.name}.pyspy"
                profiler = await start_profiler(consumer.pid, output)
            measurement = await self._observe(consumer, [receivers[i] for i in self.healthy])
            if self.hooks:
                await self._check_paths(receivers[0])
            return measurement
        finally:
            await consumer.stop()
            if profiler is not None:
                await profiler.process.wait()
            await asyncio.gather(*(receiver.child.stop() for receiver in receivers))

    async def _receiver(self, index: int) -> Receiver:
        mode = self.scenario.endpoints[index]
        args = (*RECEIVER_ARGS[mode], *(("--latency",) if self.scenario.latency else ()))
        args += ("--paths",) if self.hooks else ()
        log_path = self.workdir / f"receiver-{self.variant.name}-{index}.log"
        return await Receiver.start(log_path, *args)

    async def _consumer(self, receivers: list[Receiver]) -> Child:
        log_path = self.workdir / f"{self.variant.name}.log"
        urls = [receiver.url() for receiver in receivers]
        if self.hooks and not self.variant.bridge:
            routes = self.workdir / "raw-routes.json"
            routes.write_bytes(msgspec.json.encode(webhooks.routes(self.hooks, receivers[0].url)))
            return await start_raw(log_path, self.nats_url, STREAM, self.durable, [], routes=routes)
        if not self.variant.bridge:
            return await start_raw(log_path, self.nats_url, STREAM, self.durable, urls)
        env = self._api_env() if self.hooks else self._bridge_env(urls)
        return await start_bridge(log_path, env, self.scenario.workers)

    def _api_env(self) -> dict[str, str]:
        """As `_bridge_env`, but no configured webhooks: the admin API creates them."""
        env = self._bridge_env([])
        del env["BRIDGE_CONFIG"], env["DEFAULT_WEBHOOKS"]
        env |= {"ADMIN_TOKEN": webhooks.ADMIN_TOKEN, "WEBHOOK_ALLOW_PRIVATE_URLS": "true"}
        return env

    def _bridge_env(self, urls: list[str]) -> dict[str, str]:
        """Every feature on: named webhooks with filters, both signatures, info logs."""
        ids = [f"ep{i}" for i in range(len(urls))]
        hooks = [
            {"id": i, "url": url, "events": ["job.*"], "tenants": ["acme"]}
            for i, url in zip(ids, urls, strict=True)
        ]
        config = self.workdir / f"{self.variant.name}.yaml"
        config.write_text(json.dumps({"webhooks": hooks}))  # JSON is YAML
        return {
            "NATS_URL": self.nats_url,
            "NATS_DURABLE": self.durable,
            "BRIDGE_CONFIG": str(config),
            "DEFAULT_WEBHOOKS": ",".join(ids),
            "WEBHOOK_SECRET": SECRET,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": "0",  # workers would take HTTP_PORT + i, which may be taken
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
            **self.scenario.bridge_env,
        }

    async def _observe(self, consumer: Child, healthy: list[Receiver]) -> Measurement:
        meter = Meter(consumer.pid)
        publisher = None
        if self.hooks:
            names = tuple(webhooks.event_names(len(self.hooks)))
            publisher = asyncio.create_task(
                publish_backlog(self.js, self.scenario.events, names, self.durable)
            )
        if self.scenario.latency:
            await self._wait_fetching(consumer)
            rate = self.scenario.rate_per_s or 1.0
            publisher = asyncio.create_task(
                publish_live(self.js, self.scenario.events, rate, self.durable)
            )
        async with aiohttp.ClientSession() as session:
            sampler = Sampler(consumer, meter, healthy, session)
            measurement = await sampler.until(self.expected, self._deadline_s())
        if publisher is not None:
            await publisher
        return measurement

    async def _ready_for_webhook_events(self, consumer: Child, receiver: Receiver) -> None:
        """Every bridge process lists the webhooks, and the consumer is fetching."""
        if self.variant.bridge:
            await self._create_webhooks(consumer, receiver)
        await self._wait_fetching(consumer)

    async def _create_webhooks(self, consumer: Child, receiver: Receiver) -> None:
        ports = await self._admin_ports(consumer)
        bodies = [hook.body(receiver.url) for hook in self.hooks]
        async with aiohttp.ClientSession() as session:
            await webhooks.wait_live(session, ports)
            await webhooks.create(session, ports[0], bodies)
            await webhooks.wait_listed(session, ports, {hook.id for hook in self.hooks})

    async def _admin_ports(self, consumer: Child) -> list[int]:
        deadline_s = time.monotonic() + FETCHING_TIMEOUT_S
        while (ports := webhooks.admin_ports(consumer.log_path, self.scenario.workers)) is None:
            if consumer.exited() or time.monotonic() > deadline_s:
                raise RuntimeError(f"{self.variant.name} never served HTTP: {consumer.tail()}")
            await asyncio.sleep(SAMPLE_S)
        return ports

    async def _check_paths(self, receiver: Receiver) -> None:
        """Each webhook got exactly the events of its names: every event its MATCHING."""
        expected = webhooks.expected_by_path(self.hooks, self.scenario.events)
        async with aiohttp.ClientSession() as session:
            got = await receiver.by_path(session)
        wrong = {p: (got.get(p, 0), n) for p, n in expected.items() if got.get(p, 0) != n}
        wrong |= {p: (n, 0) for p, n in got.items() if p not in expected}
        if wrong:
            shown = ", ".join(f"{p} got {g} of {n}" for p, (g, n) in sorted(wrong.items())[:5])
            raise RuntimeError(f"{self.variant.name}: {len(wrong)} paths wrong: {shown}")

    def _deadline_s(self) -> float:
        per_s = self.scenario.rate_per_s or SLOWEST_RATE_PER_S
        return time.monotonic() + max(MIN_DEADLINE_S, self.expected / per_s * 2)

    async def _wait_fetching(self, consumer: Child) -> None:
        """Live events are published once the consumer has a pull request waiting."""
        deadline_s = time.monotonic() + FETCHING_TIMEOUT_S
        while time.monotonic() < deadline_s:
            if consumer.exited():
                raise RuntimeError(f"{self.variant.name} exited: {consumer.tail()}")
            try:
                if (await self.js.consumer_info(STREAM, self.durable)).num_waiting:
                    return
            except nats.js.errors.NotFoundError:
                pass
            await asyncio.sleep(SAMPLE_S)
        raise RuntimeError(f"{self.variant.name} never fetched: {consumer.tail()}")


class Sampler:
    """Samples arrivals and consumer CPU every SAMPLE_S until everything expected arrived."""

    def __init__(
        self, consumer: Child, meter: Meter, healthy: list[Receiver], session: aiohttp.ClientSession
    ) -> None:
        self._consumer = consumer
        self._meter = meter
        self._healthy = healthy
        self._session = session

    async def until(self, expected: int, deadline_s: float) -> Measurement:
        start: tuple[float, int] | None = None
        while True:
            await asyncio.sleep(SAMPLE_S)
            self._check_alive(deadline_s)
            stats = [await r.stats(self._session) for r in self._healthy]
            count = sum(s.count for s in stats)
            cpu_s = self._meter.cpu_s()
            if start is None and count:
                start = (cpu_s, count) if count < expected else (0.0, 0)
            if count >= expected:
                return self._measurement(stats, count, cpu_s, start or (0.0, 0))

    def _check_alive(self, deadline_s: float) -> None:
        if self._consumer.exited():
            raise RuntimeError(f"consumer exited: {self._consumer.tail()}")
        if time.monotonic() > deadline_s:
            raise RuntimeError(f"consumer too slow, gave up: {self._consumer.tail()}")

    def _measurement(
        self,
        stats: list[Stats],
        count: int,
        cpu_s: float,
        start: tuple[float, int],
    ) -> Measurement:
        first_s = min(s.first_s for s in stats)
        last_s = max(s.last_s for s in stats)
        latencies = [x for s in stats for x in s.latencies_ms]
        return Measurement(
            deliveries=count,
            rate_per_s=(count - 1) / max(last_s - first_s, 1e-6),
            cpu_us=(cpu_s - start[0]) / max(1, count - start[1]) * 1e6,
            peak_rss_bytes=self._meter.peak_rss_bytes(),
            latencies_ms=tuple(latencies),
        )
