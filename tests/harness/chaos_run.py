"""A chaos run: several `webhook-bridge run` processes sharing one durable deliver N events to
several chaos endpoints (harness.chaos) while the run kills them, stops them and restarts
nats-server; then the ledger (harness.ledger) is reconciled and summed up in a table.

The events go out in batches; after each batch, once half of its pairs have reached a
receiver, one fault is injected (the kinds cycle in the configured order), so every fault
lands while deliveries, retries and dead-lettering are in flight:

    kill       kill -9 the oldest bridge, start a replacement
    term       SIGTERM the oldest bridge (it drains), start a replacement
    nats       restart nats-server: SIGTERM, then start on the same port and store dir
    nats-kill  kill -9 nats-server, then start it on the same port and store dir

The run ends when both durable consumers (events and tasks) have nothing pending and nothing
waiting for an ack: every event is acked and every retry has run, so nothing can be delivered
or dead-lettered any more. Used by tests/integration/test_chaos.py and bench/chaos.py.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import nats
import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from harness.bridge import FAST_ENV, BridgeProcess, Bridges, run_cli
from harness.chaos import ChaosReceiver, Rule
from harness.ledger import Ledger, Reconciliation, letters_from_cli, reconcile
from harness.nats import NatsServer
from harness.publish import job_event, publish_events_async
from harness.waiting import wait_for

FaultKind = Literal["kill", "term", "nats", "nats-kill"]
EVENTS_STREAM = "GREENLIGHT_EVENTS"
DURABLE = "webhook-bridge"
PROGRESS_TIMEOUT_S = 60.0
RECONNECT_TIMEOUT_S = 30.0
DLQ_LIST_TIMEOUT_S = 120.0  # a bench run lists thousands of dead letters
MAX_PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class ChaosConfig:
    """The size of a run, its seed and its faults; the bridge settings follow SPEC §5."""

    events: int
    endpoints: int
    seed: int = 1
    batches: int = 3
    faults: tuple[FaultKind, ...] = ("kill", "term", "nats", "nats-kill")
    bridges: int = 3
    max_retry: int = 3
    timeout_s: float = 1.0
    settle_timeout_s: float = 60.0
    log_level: str = "info"


def bridge_env(config: ChaosConfig, nats_url: str, urls: list[str]) -> dict[str, str]:
    """Short waits so a run takes seconds; an ack deadline just above the bridge's minimum
    (2 x timeout + 5 s), so the work of a killed bridge comes back soon."""
    return FAST_ENV | {
        "NATS_URL": nats_url,
        "DEFAULT_WEBHOOK_URLS": ",".join(urls),
        "WEBHOOK_TIMEOUT": f"{config.timeout_s:g}s",
        "WEBHOOK_MAX_RETRY": str(config.max_retry),
        "WEBHOOK_RETRY_MIN_WAIT": "100ms",
        "WEBHOOK_RETRY_MAX_WAIT": "500ms",
        "NATS_ACK_WAIT": "1s",
        "SHUTDOWN_TIMEOUT": "5s",
        "LOG_LEVEL": config.log_level,
    }


FAULT_NAMES: dict[FaultKind, str] = {
    "kill": "kill -9 bridge",
    "term": "SIGTERM bridge",
    "nats": "restart nats-server",
    "nats-kill": "kill -9 nats-server",
}


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    target: str
    exit_code: int | None = None  # of a bridge stopped by the fault


def faults_summary(faults: list[Fault]) -> str:
    """E.g. `3: kill -9 bridge 2 (exit codes -9), restart nats-server 1`."""
    counts = Counter(fault.kind for fault in faults)
    parts = [f"{FAULT_NAMES[kind]} {n}{_exit_codes(faults, kind)}" for kind, n in counts.items()]
    return f"{len(faults)}: {', '.join(parts)}"


def _exit_codes(faults: list[Fault], kind: FaultKind) -> str:
    codes = {fault.exit_code for fault in faults if fault.kind == kind}
    shown = ", ".join(str(code) for code in sorted(code for code in codes if code is not None))
    return f" (exit codes {shown})" if shown else ""


@dataclass
class ChaosReport:
    config: ChaosConfig
    pairs: int
    plans: Counter[str]  # pairs by kind of plan
    requests: Counter[str]  # by mode
    faults: list[Fault]
    ledger: Reconciliation
    seconds: float

    def table(self) -> str:
        return "\n".join(_table_lines(self))


class ChaosRun:
    """Owns the processes of one run; `async with ChaosRun(config, workdir) as run:
    report = await run.execute()`. Everything it started is stopped on exit."""

    def __init__(self, config: ChaosConfig, workdir: Path) -> None:
        self.config = config
        self.rule = Rule(config.seed, config.max_retry)
        self.nats = NatsServer(workdir / "nats-store", workdir / "nats-server.log")
        self.receiver = ChaosReceiver(self.rule, config.timeout_s)
        self.workdir = workdir
        self.urls: list[str] = []  # and the bridges: both known once the receiver listens
        self.bridges = Bridges({}, workdir)
        self.ledger = Ledger()
        self.faults: list[Fault] = []

    async def __aenter__(self) -> ChaosRun:
        await self.nats.start()
        await self.receiver.start()
        self.urls = [self.receiver.url(f"/endpoint-{i}") for i in range(self.config.endpoints)]
        self.bridges = Bridges(bridge_env(self.config, self.nats.url, self.urls), self.workdir)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.bridges.cleanup()
        await self.receiver.stop()
        await self.nats.stop()
        if error is not None:
            print(self.bridges.report())  # pytest shows it only when the test failed

    async def execute(self) -> ChaosReport:
        started_s = time.monotonic()
        await asyncio.gather(*(self.bridges.start() for _ in range(self.config.bridges)))
        producer = await nats.connect(
            self.nats.url, max_reconnect_attempts=-1, error_cb=_expected_while_restarting
        )
        try:
            for index, batch in enumerate(self._batches()):
                await self._publish(producer, batch)
                kind = self.config.faults[index % len(self.config.faults)]
                self.faults.append(await self._inject(kind))
            await self._settle(producer.jetstream())
        finally:
            await producer.close()
        return await self._report(time.monotonic() - started_s)

    def _batches(self) -> Iterator[range]:
        size = -(-self.config.events // self.config.batches)  # ceiling division
        for start in range(0, self.config.events, size):
            yield range(start, min(start + size, self.config.events))

    async def _publish(self, producer: Client, batch: range) -> None:
        """Publish a batch, then wait until half of its pairs have reached a receiver."""
        await wait_for(lambda: producer.is_connected, RECONNECT_TIMEOUT_S, "producer offline")
        events = [(f"evt-{i}", job_event("job.completed", f"job-{i}")) for i in batch]
        await publish_events_async(producer.jetstream(), events)
        for event_id, event in events:
            self.ledger.publish(event_id, event["job_id"], self.urls)
        wanted = len(self.ledger.pairs) - len(events) * len(self.urls) // 2
        await self.bridges.wait_for(
            lambda: len(self.receiver.arrivals) >= wanted,
            PROGRESS_TIMEOUT_S,
            lambda: f"{len(self.receiver.arrivals)} of {wanted} pairs reached a receiver",
        )

    async def _inject(self, kind: FaultKind) -> Fault:
        if kind in ("nats", "nats-kill"):
            await (self.nats.restart() if kind == "nats" else self._kill_nats())
            return Fault(kind, "nats-server")
        victim = self._oldest_running()
        code = await (victim.kill() if kind == "kill" else victim.terminate())
        await self.bridges.start()
        return Fault(kind, victim.name, code)

    async def _kill_nats(self) -> None:
        await self.nats.kill()
        await self.nats.start()

    def _oldest_running(self) -> BridgeProcess:
        return next(bridge for bridge in self.bridges.started if bridge.running)

    async def _settle(self, js: JetStreamContext) -> None:
        await self.bridges.wait_for(
            lambda: self._idle(js),
            self.config.settle_timeout_s,
            lambda: f"deliveries still in flight; ledger so far:\n{self._partial()}",
        )

    async def _idle(self, js: JetStreamContext) -> bool:
        """Both consumers have nothing pending and nothing waiting for an ack."""
        try:
            infos = [
                await js.consumer_info(EVENTS_STREAM, DURABLE),
                await js.consumer_info(f"{DURABLE}-tasks", DURABLE),
            ]
        except (nats.errors.Error, TimeoutError):
            return False  # nats-server still coming back
        return all(info.num_pending == 0 and info.num_ack_pending == 0 for info in infos)

    def _partial(self) -> str:
        answered = sum(1 for pair in self.ledger.pairs if self.receiver.answered_2xx[pair])
        return f"{answered} of {len(self.ledger.pairs)} pairs answered 2xx"

    async def _report(self, seconds: float) -> ChaosReport:
        args = ("dlq", "list", "--json", "--all")
        result = await run_cli(args, self.bridges.base_env, timeout_s=DLQ_LIST_TIMEOUT_S)
        assert result.returncode == 0, result.stderr
        letters = letters_from_cli(result.stdout)
        ledger = reconcile(self.ledger, self.receiver, letters)
        published = self.ledger.pairs.values()
        plans: Counter[str] = Counter(self.rule.plan(pair.plan_key).kind for pair in published)
        requests: Counter[str] = Counter(self.receiver.modes)
        pairs = len(published)
        return ChaosReport(self.config, pairs, plans, requests, self.faults, ledger, seconds)


async def _expected_while_restarting(_error: Exception) -> None:
    """The producer reconnects by itself: its connection errors mean nats-server restarts."""


def _table_lines(report: ChaosReport) -> Iterator[str]:
    config, ledger = report.config, report.ledger
    dead = sum(ledger.dead_lettered.values())
    yield (
        f"chaos ledger, seed {config.seed}: {config.events} events x {config.endpoints} "
        f"endpoints = {report.pairs} pairs, {config.bridges} bridges, {config.batches} batches"
    )
    yield f"  plans            {_counts(report.plans)}"
    yield f"  requests         {sum(report.requests.values())} ({_counts(report.requests)})"
    yield f"  faults injected  {faults_summary(report.faults)}"
    yield f"  delivered        {ledger.verdicts['delivered']} pairs"
    yield f"  duplicates       {ledger.duplicates} (2xx answers beyond the first per pair)"
    yield f"  dead-lettered    {dead} pairs ({_counts(ledger.dead_lettered)})"
    yield f"  late answers     {len(ledger.late)} (the deciding answer missed the timeout: allowed)"
    yield f"  extra DLQ copies {ledger.letter_duplicates}"
    yield f"  lost             {ledger.missing}"
    yield f"  wrong            {ledger.wrong}"
    yield f"  elapsed          {report.seconds:.1f} s"
    yield from ledger.problems[:MAX_PROBLEMS_SHOWN]
    yield from ledger.late[:MAX_PROBLEMS_SHOWN]


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
