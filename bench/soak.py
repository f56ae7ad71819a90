"""`python -m bench.soak`: the bridge for many minutes at a steady rate, with faults, sampled.

    python -m bench.soak [--minutes 11] [--rate 200] [--sample-s 15] [--warmup-minutes 2]
                         [--fault-every-s 45] [--fault-s 20] [--drain-timeout-s 900]
                         [--workdir DIR]

It starts its own nats-server, four `bench.soak_receiver` processes (`steady`; `flaky`,
answering 2% of requests with 500; `slow`, 50 ms; `faulty`) and `webhook-bridge run` with
every feature on: named webhooks with event and tenant filters and their own secrets and
headers, both signatures, per-job webhooks remembered in KV (one job in ten names a URL of
its own on `steady`), the delivery log, and a JSON log line per attempt at info, to a file.
It publishes job events (`job.started`, then `job.completed` of the same job) at `--rate`
events/s and injects one fault every `--fault-every-s`, each lasting `--fault-s`, in turn:
`flaky` answering only 500s, `faulty` hanging past WEBHOOK_TIMEOUT (2 s), `faulty` resetting
connections, nats-server stopped and restarted on the same store, `steady` stopped and
restarted. No fault is in progress during the last samples of the steady phase.

Every `--sample-s` it samples the bridge process (bench.sampling); after the warm-up the
verdict says whether RSS, file descriptors, sockets and asyncio tasks stayed flat. Then it
stops publishing, waits for the bridge to drain and reconciles: every (event, URL) pair must
be in a receiver's ledger (delivered) or in the dead-letter stream. Progress goes to stderr;
the table, verdict and reconciliation to stdout. Exit status 1 when anything was lost or
the bridge did not exit cleanly; the flatness verdict is reported, not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import msgspec
import nats
import nats.errors
import uvloop
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from bench.processes import (
    PYTHON,
    RECEIVER_START_TIMEOUT_S,
    Child,
    Receiver,
    python_env,
    start_bridge,
)
from bench.sampling import EDGE_SAMPLES, Sample, metric_sums, process_figures, table, verdict
from bridge.config.settings import Settings, load_settings
from bridge.jetstream import bus
from bridge.jetstream.embedded import EmbeddedNats, free_port
from bridge.policy.routing import delivery_id

SECRET = "soak-secret"
DURABLE = "soak"
EVENTS = ("job.started", "job.completed")  # two events per job, in this order
JOB_HOOK_EVERY = 10  # one job in ten carries a webhook of its own
PUBLISH_TIMEOUT_S = 2.0
PUBLISH_RETRY_S = 0.5
READY_TIMEOUT_S = 60.0
POLL_S = 1.0
BODY = {
    "tenant_id": "acme",
    "document_id": "12345",
    "tasks": ["convert-fdx-to-screenjson", "validate-screenjson"],
    "status": "success",
    "outputs": [{"task": "convert-fdx-to-screenjson", "keys": ["screenplays/out/script.json"]}],
}


@dataclass(frozen=True)
class Endpoint:
    name: str
    args: tuple[str, ...] = ()


ENDPOINTS = (
    Endpoint("steady"),
    Endpoint("flaky", ("--fail-ratio", "0.02")),
    Endpoint("slow", ("--delay-ms", "50")),
    Endpoint("faulty"),
)


@dataclass(frozen=True)
class Fault:
    """A fault injected for `--fault-s`: `begin` starts it, `end` puts things right."""

    name: str
    begin: Callable[[], Awaitable[object]]
    end: Callable[[], Awaitable[object]]


class DeadLetterId(msgspec.Struct):
    delivery_id: str
    reason: str


def event_id(index: int) -> str:
    return f"soak-{index}"


def has_job_hook(index: int) -> bool:
    return (index // len(EVENTS)) % JOB_HOOK_EVERY == 0


def event_message(index: int, job_url: str) -> tuple[str, bytes]:
    """Subject and body of event `index`: the job's first event names its own webhook."""
    name = EVENTS[index % len(EVENTS)]
    event = {"event": name, "job_id": f"j_{index // len(EVENTS)}", **BODY}
    if has_job_hook(index) and index % len(EVENTS) == 0:
        event["webhook"] = job_url
    return f"greenlight.events.{name}", json.dumps(event).encode()


def expected_ids(published: int, urls: list[str], job_url: str) -> set[str]:
    """Every (event, URL) pair the bridge owes, as the delivery ids it sends."""
    expected = set()
    for index in range(published):
        for url in (*urls, *([job_url] if has_job_hook(index) else [])):
            expected.add(delivery_id(event_id(index), url))
    return expected


async def start_receiver(workdir: Path, endpoint: Endpoint, port: int = 0) -> Receiver:
    ledger = workdir / f"ledger-{endpoint.name}.txt"
    argv = [PYTHON, "-m", "bench.soak_receiver", "--ledger", str(ledger), "--port", str(port)]
    log_path = workdir / f"receiver-{endpoint.name}.log"
    child = await Child.start([*argv, *endpoint.args], log_path, python_env(), pipe=True)
    assert child.process.stdout is not None
    line = await asyncio.wait_for(child.process.stdout.readline(), RECEIVER_START_TIMEOUT_S)
    if not line.startswith(b"port "):
        raise RuntimeError(f"receiver {endpoint.name} did not start: {child.tail()}")
    return Receiver(child, int(line.split()[1]))


@dataclass(frozen=True)
class Options:
    minutes: float
    rate_per_s: float
    sample_s: float
    warmup_s: float
    fault_every_s: float
    fault_s: float
    drain_timeout_s: float


class Soak:
    """One soak run: its processes, the publisher, the faults, the sampler, the ledger."""

    def __init__(self, options: Options, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.receivers: dict[str, Receiver] = {}
        self.samples: list[Sample] = []
        self.faults: Counter[str] = Counter()
        self.fault = ""
        self.published = 0
        self.started_s = 0.0
        self.http_port = free_port()
        self.nats = EmbeddedNats(workdir / "nats", free_port())
        self.session: aiohttp.ClientSession  # set while the bridge runs
        self.settings: Settings

    @property
    def publish_end_s(self) -> float:
        return self.started_s + self.options.minutes * 60

    def urls(self) -> list[str]:
        return [self.receivers[e.name].url() for e in ENDPOINTS]

    def job_url(self) -> str:
        return self.receivers["steady"].url("/job")

    async def run(self) -> int:
        await self.nats.start()
        try:
            for endpoint in ENDPOINTS:
                self.receivers[endpoint.name] = await start_receiver(self.workdir, endpoint)
            return await self._with_bridge()
        finally:
            await asyncio.gather(*(r.child.stop() for r in self.receivers.values()))
            await self.nats.stop()

    async def _with_bridge(self) -> int:
        env = self._bridge_env()
        self.settings = load_settings(env)
        bridge = await start_bridge(self.workdir / "bridge.log", env, workers=1)
        nc = None
        try:
            async with aiohttp.ClientSession() as session:
                self.session = session
                await self._wait_ready(bridge)
                nc = await nats.connect(
                    self.nats.url,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=_expected_error,
                )
                lost = await self._soak(bridge, nc.jetstream())
        finally:
            exit_code = await bridge.stop()
            if nc is not None:
                await nc.close()
        print(f"bridge exit status {exit_code} after SIGTERM")
        return 0 if lost == 0 and exit_code == 0 else 1

    def _bridge_env(self) -> dict[str, str]:
        hooks = [
            {
                "id": endpoint.name,
                "url": self.receivers[endpoint.name].url(),
                "events": ["job.*"],
                "tenants": ["acme"],
                "secret": f"{SECRET}-{endpoint.name}",
                "headers": {"Authorization": f"Bearer {endpoint.name}-token"},
            }
            for endpoint in ENDPOINTS
        ]
        config = self.workdir / "bridge.yaml"
        config.write_text(json.dumps({"webhooks": hooks}))  # JSON is YAML
        return {
            "NATS_URL": self.nats.url,
            "NATS_DURABLE": DURABLE,
            "BRIDGE_CONFIG": str(config),
            "DEFAULT_WEBHOOKS": ",".join(e.name for e in ENDPOINTS),
            "WEBHOOK_SECRET": SECRET,
            "WEBHOOK_TIMEOUT": "2s",
            "WEBHOOK_ALLOWED_CIDRS": "127.0.0.1/32",  # the per-job URLs point at loopback
            "JOB_WEBHOOK_TTL": "2m",  # the KV mirror reaches its steady size in the warm-up
            "ADMIN_TOKEN": "soak-admin",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.http_port),
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
        }

    async def _wait_ready(self, bridge: Child) -> None:
        deadline_s = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline_s:
            if bridge.exited():
                raise RuntimeError(f"bridge exited: {bridge.tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with self.session.get(self._admin("/readyz")) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(POLL_S)
        raise RuntimeError(f"bridge never ready: {bridge.tail()}")

    def _admin(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    async def _soak(self, bridge: Child, js: JetStreamContext) -> int:
        self.started_s = time.monotonic()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._publish(js))
            group.create_task(self._inject_faults())
            group.create_task(self._sample_until_end(bridge))
        drained_s, queued = await self._drain(js)
        self.samples.append(await self._sample(bridge.pid, "drained"))
        print(table(self.samples))
        summary, flat = verdict(self.samples)
        print(summary)
        lost = await self._reconcile(js)
        if queued:
            print(
                f"NOT drained {drained_s:.0f} s after the publisher stopped: {queued:,d} "
                "deliveries still queued for a retry, counted as lost above"
            )
        else:
            print(f"drained in {drained_s:.0f} s after the publisher stopped")
        print(f"verdict: {'no leak' if flat else 'GROWING'}, {lost:,d} lost")
        return lost

    async def _publish(self, js: JetStreamContext) -> None:
        """Events at a steady rate; one held up by an outage is retried (same Nats-Msg-Id)."""
        job_url = self.job_url()
        while (due_s := self.started_s + self.published / self.options.rate_per_s) < (
            self.publish_end_s
        ):
            await asyncio.sleep(max(0.0, due_s - time.monotonic()))
            subject, body = event_message(self.published, job_url)
            await _publish_until_stored(js, subject, body, event_id(self.published))
            self.published += 1

    def _fault_kinds(self) -> list[Fault]:
        def mode(endpoint: str, mode: str) -> Callable[[], Awaitable[object]]:
            return lambda: self._mode(endpoint, mode)

        return [
            Fault("flaky answers 500", mode("flaky", "fail"), mode("flaky", "ok")),
            Fault("faulty hangs", mode("faulty", "hang"), mode("faulty", "ok")),
            Fault("faulty resets", mode("faulty", "reset"), mode("faulty", "ok")),
            Fault("nats-server restart", self.nats.stop, self.nats.start),
            Fault("steady restart", self._stop_steady, self._start_steady),
        ]

    async def _inject_faults(self) -> None:
        kinds = self._fault_kinds()
        # the verdict's end samples see no fault in progress
        last_end_s = self.publish_end_s - EDGE_SAMPLES * self.options.sample_s
        index = 1
        while (at_s := self.started_s + index * self.options.fault_every_s) + (
            self.options.fault_s
        ) <= last_end_s:
            await asyncio.sleep(max(0.0, at_s - time.monotonic()))
            await self._fault(kinds[(index - 1) % len(kinds)])
            index += 1

    async def _fault(self, fault: Fault) -> None:
        print(f"{self._now_s():6.0f} s  fault: {fault.name}", file=sys.stderr)
        self.fault = fault.name
        self.faults[fault.name] += 1
        await fault.begin()
        await asyncio.sleep(self.options.fault_s)
        await fault.end()
        self.fault = ""

    async def _mode(self, endpoint: str, mode: str) -> None:
        url = self.receivers[endpoint].url("/_mode")
        async with self.session.post(url, data=mode) as response:
            response.raise_for_status()

    async def _stop_steady(self) -> None:
        await self.receivers["steady"].child.stop()

    async def _start_steady(self) -> None:
        port = self.receivers["steady"].port
        self.receivers["steady"] = await start_receiver(self.workdir, ENDPOINTS[0], port)

    def _now_s(self) -> float:
        return time.monotonic() - self.started_s

    async def _sample_until_end(self, bridge: Child) -> None:
        taken = 0
        while (due_s := self.started_s + (taken + 1) * self.options.sample_s) <= (
            self.publish_end_s
        ):
            await asyncio.sleep(max(0.0, due_s - time.monotonic()))
            if bridge.exited():
                raise RuntimeError(f"bridge exited: {bridge.tail()}")
            phase = "warm-up" if self._now_s() < self.options.warmup_s else "steady"
            self.samples.append(sample := await self._sample(bridge.pid, phase))
            print(table([sample]).splitlines()[-1], file=sys.stderr)
            taken += 1

    async def _sample(self, pid: int, phase: str) -> Sample:
        rss_mb, fds, sockets = process_figures(pid)
        async with self.session.get(self._admin("/metrics")) as response:
            sums = metric_sums(await response.text())
        return Sample(
            at_s=self._now_s(),
            phase=phase,
            rss_mb=rss_mb,
            fds=fds,
            sockets=sockets,
            tasks=int(sums.get("event_loop_tasks", 0)),
            published=self.published,
            delivered=int(sums.get("deliveries_total:delivered", 0)),
            dead_lettered=int(sums.get("deliveries_total:dead_lettered", 0)),
            retries_pending=int(sums.get("retries_pending", 0)),
            fault=self.fault,
        )

    async def _drain(self, js: JetStreamContext) -> tuple[float, int]:
        """Seconds until nothing is pending (no event unacked, no task waiting or running),
        or until `--drain-timeout-s`; and how many deliveries were still queued then."""
        stopped_s = time.monotonic()
        while (queued := await _queued(js, self.settings)) != 0:
            if time.monotonic() - stopped_s > self.options.drain_timeout_s:
                break
            await asyncio.sleep(POLL_S)
        return time.monotonic() - stopped_s, max(queued, 0)

    async def _reconcile(self, js: JetStreamContext) -> int:
        """Print the ledger's figures; returns how many (event, URL) pairs were lost."""
        expected = expected_ids(self.published, self.urls(), self.job_url())
        accepted = Counter(
            line
            for endpoint in ENDPOINTS
            for line in (self.workdir / f"ledger-{endpoint.name}.txt").read_text().split()
        )
        dead = await _dead_letters(js, self.settings)
        delivered, dead_ids = set(accepted), set(dead)
        lost = expected - delivered - dead_ids
        reasons = Counter(dead.values())
        print(f"events published {self.published:,d}, (event, URL) pairs {len(expected):,d}")
        print(f"faults injected: {', '.join(f'{n} x {k}' for k, n in self.faults.items())}")
        duplicates = accepted.total() - len(delivered)
        print(f"delivered {len(delivered & expected):,d} (duplicate deliveries {duplicates:,d})")
        print(f"dead-lettered {len(dead_ids & expected):,d} ({_counts(reasons)})")
        unexpected = (delivered | dead_ids) - expected
        both = len(delivered & dead_ids)
        print(f"delivered and dead-lettered {both:,d}, unexpected {len(unexpected):,d}")
        print(f"lost {len(lost):,d}{f' e.g. {sorted(lost)[:3]}' if lost else ''}")
        return len(lost)


async def _expected_error(_error: Exception) -> None:
    """nats-py's default prints a traceback per failed reconnect; the soak stops the server
    on purpose, and the bridge's log tells how the bridge took it."""


async def _publish_until_stored(
    js: JetStreamContext, subject: str, body: bytes, msg_id: str
) -> None:
    while True:
        try:
            await js.publish(
                subject, body, timeout=PUBLISH_TIMEOUT_S, headers={"Nats-Msg-Id": msg_id}
            )
            return
        except (nats.errors.Error, TimeoutError):
            await asyncio.sleep(PUBLISH_RETRY_S)


async def _queued(js: JetStreamContext, settings: Settings) -> int:
    """Events not yet acked plus deliveries waiting in the tasks stream; -1 if NATS did not
    answer. 0 means drained: an event is acked only once its retries are queued."""
    try:
        events = await js.consumer_info(settings.nats_stream, settings.nats_durable)
        tasks = await js.stream_info(settings.tasks_stream)
    except (nats.errors.Error, TimeoutError):
        return -1
    return (events.num_pending or 0) + (events.num_ack_pending or 0) + tasks.state.messages


async def _dead_letters(js: JetStreamContext, settings: Settings) -> dict[str, str]:
    """Delivery id → reason, for every dead letter in the stream."""
    found: dict[str, str] = {}
    config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    decoder = msgspec.json.Decoder(DeadLetterId)
    async for msg in bus.read_all(js, settings.dlq_stream, "greenlight.webhooks.dlq.>", config):
        record = decoder.decode(msg.data)
        found[record.delivery_id] = record.reason
    return found


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {n:,d}" for name, n in counter.most_common()) or "none"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--minutes", type=float, default=11.0, help="how long to publish")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--sample-s", type=float, default=15.0, help="seconds between samples")
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        help="left out of the verdict (default: 2, at most a quarter)",
    )
    parser.add_argument("--fault-every-s", type=float, default=45.0)
    parser.add_argument("--fault-s", type=float, default=20.0, help="how long each fault lasts")
    parser.add_argument(
        "--drain-timeout-s", type=float, default=900.0, help="wait for the bridge to drain"
    )
    parser.add_argument("--workdir", help="where the store, ledgers and logs go (default: temp)")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    warmup_minutes = args.warmup_minutes
    if warmup_minutes is None:
        warmup_minutes = min(2.0, args.minutes / 4)
    return Options(
        minutes=args.minutes,
        rate_per_s=args.rate,
        sample_s=args.sample_s,
        warmup_s=warmup_minutes * 60,
        fault_every_s=args.fault_every_s,
        fault_s=args.fault_s,
        drain_timeout_s=args.drain_timeout_s,
    )


def main() -> None:
    args = _parser().parse_args()
    options = options_from(args)
    print(
        f"soak: {options.minutes:g} min at {options.rate_per_s:g} events/s to "
        f"{len(ENDPOINTS)} endpoints (+1 per-job), a sample every {options.sample_s:g} s, "
        f"warm-up {options.warmup_s:.0f} s, a fault every {options.fault_every_s:g} s "
        f"lasting {options.fault_s:g} s",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="soak-") as temp:
        workdir = Path(args.workdir or temp)
        workdir.mkdir(parents=True, exist_ok=True)
        status = uvloop.run(Soak(options, workdir).run())
    sys.exit(status)


if __name__ == "__main__":
    main()
