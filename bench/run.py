"""One scenario run: a fresh nats-server, events published, then each consumer measured.

Consumers take turns on the same server (their own durables on the same stream), in
alternating order from run to run, each with fresh receiver processes. A backlog is
published once and read by every consumer; live (latency) events are published per consumer
once it is fetching, the stream purged in between.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import nats
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

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
EVENT = (
    '{"event":"job.completed","job_id":"j_%d","document_id":"12345","tenant_id":"acme",'
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


def event_body(index: int) -> bytes:
    return (EVENT % (index, time.time())).encode()


async def run_once(scenario: Scenario, workdir: Path, run_index: int, profile: bool) -> Run:
    """Measure each variant once; `profile` attaches py-spy to each consumer (slows it a little)."""
    server = await start_nats(workdir / "nats")
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(name=STREAM, subjects=["greenlight.events.>"], storage=StorageType.FILE)
        )
        if not scenario.latency:
            await publish_backlog(js, scenario.events)
        found: Run = {}
        for variant in variants(scenario, run_index):
            if scenario.latency:
                await js.purge_stream(STREAM)
            measure = Measure(scenario, variant, server.url, js, workdir, profile=profile)
            found[variant.name] = await measure.run()
        return found
    finally:
        await nc.close()
        await server.stop()
        shutil.rmtree(workdir / "nats", ignore_errors=True)


async def publish_backlog(js: JetStreamContext, count: int) -> None:
    pending = []
    for index in range(count):
        headers = {"Nats-Msg-Id": f"bench-{index}"}
        pending.append(await js.publish_async(SUBJECT, event_body(index), headers=headers))
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
        self.expected = scenario.events * len(self.healthy)

    async def run(self) -> Measurement:
        receivers = await asyncio.gather(*(self._receiver(i) for i in self.variant.endpoints))
        consumer = await self._consumer([r.url() for r in receivers])
        profiler = None
        if self.profile:
            output = self.workdir / f"{self.variant.name}.pyspy"
            profiler = await start_profiler(consumer.pid, output)
        try:
            return await self._observe(consumer, [receivers[i] for i in self.healthy])
        finally:
            await consumer.stop()
            if profiler is not None:
                await profiler.process.wait()
            await asyncio.gather(*(receiver.child.stop() for receiver in receivers))

    async def _receiver(self, index: int) -> Receiver:
        mode = self.scenario.endpoints[index]
        args = (*RECEIVER_ARGS[mode], *(("--latency",) if self.scenario.latency else ()))
        log_path = self.workdir / f"receiver-{self.variant.name}-{index}.log"
        return await Receiver.start(log_path, *args)

    async def _consumer(self, urls: list[str]) -> Child:
        log_path = self.workdir / f"{self.variant.name}.log"
        if not self.variant.bridge:
            return await start_raw(log_path, self.nats_url, STREAM, self.durable, urls)
        return await start_bridge(log_path, self._bridge_env(urls), self.scenario.workers)

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
