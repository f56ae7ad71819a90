"""Throughput with 1, 2, 3... replicas: separate `webhook-bridge run` processes sharing one
durable, on one fast endpoint.

    python -m bench.replicas [--events 20000] [--replicas 1,2,3] [--runs 3] [--workdir DIR]

Each replica count gets a fresh events stream (so message ids never collide with the dedup
window of an earlier run), a fresh receiver and its own durable. Events are published once
every replica has a pull request waiting, so no replica starts ahead of the others; the rate
is the receiver's arrivals over the first-to-last arrival span. On a machine with fewer
cores than replicas the extra processes compete for CPU with nats-server and the receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import nats
import nats.js.errors
import psutil  # type: ignore[import-untyped]
import uvloop
from nats.js import JetStreamContext

from bench.main import machine
from bench.processes import Child, Meter, Receiver, start_bridge, start_nats
from bench.run import SECRET, STREAM, publish_backlog

FETCHING_TIMEOUT_S = 60.0
DEADLINE_S = 300.0
SAMPLE_S = 0.1
ATTEMPT_LINE = b'"message":"attempt"'


@dataclass(frozen=True)
class Result:
    replicas: int
    rate_per_s: float
    cpu_us: float
    split: tuple[int, ...]  # deliveries logged by each replica
    machine_busy: float  # share of all cores busy meanwhile (receiver, nats-server, others)


def bridge_env(nats_url: str, durable: str, url: str) -> dict[str, str]:
    """Scenario 1 of `python -m bench` (one fast endpoint), info logs included."""
    return {
        "NATS_URL": nats_url,
        "NATS_DURABLE": durable,
        "DEFAULT_WEBHOOK_URLS": url,
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_ENDPOINT_CONCURRENCY": "256",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "json",
    }


async def measure(
    js: JetStreamContext, nats_url: str, workdir: Path, replicas: int, events: int
) -> Result:
    await _delete_stream(js)
    receiver = await Receiver.start(workdir / f"receiver-r{replicas}.log")
    durable = f"bench-r{replicas}"
    env = bridge_env(nats_url, durable, receiver.url())
    logs = [workdir / f"bridge-r{replicas}-{i}.log" for i in range(replicas)]
    bridges = [await start_bridge(log, env, workers=1) for log in logs]
    try:
        await _wait_fetching(js, durable, bridges)
        meters = [Meter(bridge.pid) for bridge in bridges]
        cpu_before_s = sum(meter.cpu_s() for meter in meters)  # start-up is not the work
        psutil.cpu_percent()  # starts the machine-wide measurement
        await publish_backlog(js, events)
        rate = await _until_delivered(receiver, bridges, events)
        cpu_s = sum(meter.cpu_s() for meter in meters) - cpu_before_s
        busy = psutil.cpu_percent() / 100
    finally:
        await asyncio.gather(*(bridge.stop() for bridge in bridges))
        await receiver.child.stop()
    split = tuple(log.read_bytes().count(ATTEMPT_LINE) for log in logs)
    return Result(replicas, rate, cpu_s / events * 1e6, split, busy)


async def _delete_stream(js: JetStreamContext) -> None:
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(STREAM)


async def _wait_fetching(js: JetStreamContext, durable: str, bridges: list[Child]) -> None:
    """Until every replica has a pull request waiting on the events consumer."""
    deadline_s = time.monotonic() + FETCHING_TIMEOUT_S
    while time.monotonic() < deadline_s:
        _check_alive(bridges)
        try:
            if ((await js.consumer_info(STREAM, durable)).num_waiting or 0) >= len(bridges):
                return
        except nats.js.errors.NotFoundError:
            pass  # the first replica has not created it yet
        await asyncio.sleep(SAMPLE_S)
    raise RuntimeError(f"replicas never all fetched: {bridges[0].tail()}")


async def _until_delivered(receiver: Receiver, bridges: list[Child], events: int) -> float:
    """Deliveries per second, first to last arrival, once `events` arrived."""
    deadline_s = time.monotonic() + DEADLINE_S
    async with aiohttp.ClientSession() as session:
        while (stats := await receiver.stats(session)).count < events:
            _check_alive(bridges)
            if time.monotonic() > deadline_s:
                raise RuntimeError(f"only {stats.count} of {events} arrived in {DEADLINE_S}s")
            await asyncio.sleep(SAMPLE_S)
    return (stats.count - 1) / max(stats.last_s - stats.first_s, 1e-6)


def _check_alive(bridges: list[Child]) -> None:
    for bridge in bridges:
        if bridge.exited():
            raise RuntimeError(f"a replica exited: {bridge.tail()}")


async def run(events: int, counts: list[int], runs: int, workdir: Path) -> list[list[Result]]:
    """Every replica count once per run, in alternating order (drift in load evens out)."""
    server = await start_nats(workdir / "nats")
    nc = await nats.connect(server.url)
    found: dict[int, list[Result]] = {replicas: [] for replicas in counts}
    try:
        for index in range(runs):
            for replicas in counts if index % 2 == 0 else counts[::-1]:
                rundir = workdir / f"run{index}"
                rundir.mkdir(parents=True, exist_ok=True)
                result = await measure(nc.jetstream(), server.url, rundir, replicas, events)
                found[replicas].append(result)
                print(
                    f"  run {index + 1}, {replicas} replica(s): {result.rate_per_s:.0f}/s",
                    file=sys.stderr,
                )
        return [found[replicas] for replicas in counts]
    finally:
        await nc.close()
        await server.stop()


def table(rows: list[list[Result]]) -> str:
    """Medians over runs; the split is the median run's."""
    lines = [
        "| replicas | deliveries/s (median) | min-max | vs first | bridge CPU µs/delivery "
        "| machine busy | deliveries per replica |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    base = _median_run(rows[0]).rate_per_s
    for results in rows:
        mid = _median_run(results)
        low, high = min(r.rate_per_s for r in results), max(r.rate_per_s for r in results)
        split = " / ".join(str(n) for n in mid.split)
        lines.append(
            f"| {mid.replicas} | {mid.rate_per_s:,.0f} | {low:,.0f}-{high:,.0f} "
            f"| {mid.rate_per_s / base:.2f}x | {mid.cpu_us:.0f} | {mid.machine_busy:.0%} "
            f"| {split} |"
        )
    return "\n".join(lines)


def _median_run(results: list[Result]) -> Result:
    ordered = sorted(results, key=lambda r: r.rate_per_s)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replicas", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--events", type=int, default=20_000, help="events per replica count")
    parser.add_argument("--replicas", default="1,2,3", help="comma-separated replica counts")
    parser.add_argument("--runs", type=int, default=3, help="runs per replica count (median)")
    parser.add_argument("--workdir", help="where the store and logs go (default: a temp dir)")
    args = parser.parse_args()
    counts = [int(n) for n in args.replicas.split(",")]
    started = machine()
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as temp:
        rows = uvloop.run(run(args.events, counts, args.runs, Path(args.workdir or temp)))
    print(f"machine: {started}")
    print(f"after:   load {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{args.events} events to one fast endpoint per replica count, {args.runs} runs")
    print(table(rows))


if __name__ == "__main__":
    main()
