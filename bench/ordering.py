"""What per-job ordering costs: the same backlog delivered with and without it.

    python -m bench.ordering [--jobs 4000] [--steps 5] [--publish rounds|jobs] [--runs 1]

N jobs x 5 events go to one fast receiver (`bench.receiver`) through `webhook-bridge run`,
once with `WEBHOOK_ORDERING=none` and once with `job`, each with its own durable on the same
backlog (in alternating order from run to run). `--publish rounds` publishes every job's
first event, then every job's second... (a job's events far apart in the stream, as when
many jobs run at once); `jobs` publishes each job's events one after the other, so they are
fanned out together and wait on one another. Prints both rates, the CPU per delivery and
the ratio; figures are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import nats
import uvloop
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from bench.processes import Child, Meter, Receiver, start_bridge, start_nats
from bench.report import Measurement
from bench.run import PUBLISH_WINDOW, SECRET, STREAM, Sampler

NAMES = ("job.queued", "job.started", "job.progress", "job.progress", "job.completed")
EVENT = '{"event":"%s","job_id":"j_%d","tenant_id":"acme","step":%d,"status":"running"}'
DEADLINE_S = 600.0
MODES = ("none", "job")


def backlog(jobs: int, steps: int, publish: str) -> list[tuple[int, int]]:
    """(job, step) in publish order."""
    if publish == "jobs":
        return [(job, step) for job in range(jobs) for step in range(steps)]
    return [(job, step) for step in range(steps) for job in range(jobs)]


async def publish(js: JetStreamContext, order: list[tuple[int, int]]) -> None:
    pending = []
    for job, step in order:
        name = NAMES[step % len(NAMES)]
        body = (EVENT % (name, job, step)).encode()
        headers = {"Nats-Msg-Id": f"j_{job}-{step}"}
        pending.append(await js.publish_async(f"greenlight.events.{name}", body, headers=headers))
        if len(pending) >= PUBLISH_WINDOW:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)


async def measure(nats_url: str, mode: str, expected: int, workdir: Path) -> Measurement:
    """One bridge with its own durable (named after `workdir`) reading the whole backlog."""
    receiver = await Receiver.start(workdir / f"receiver-{mode}.log")
    env = {
        "NATS_URL": nats_url,
        "NATS_DURABLE": f"bench-{workdir.name}-{mode}",
        "DEFAULT_WEBHOOK_URLS": receiver.url(),
        "WEBHOOK_ORDERING": mode,
        "WEBHOOK_ENDPOINT_CONCURRENCY": "256",
        "WEBHOOK_SECRET": SECRET,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": "0",
        "LOG_FORMAT": "json",
    }
    bridge: Child = await start_bridge(workdir / f"bridge-{mode}.log", env, 1)
    try:
        async with aiohttp.ClientSession() as session:
            sampler = Sampler(bridge, Meter(bridge.pid), [receiver], session)
            return await sampler.until(expected, time.monotonic() + DEADLINE_S)
    finally:
        await bridge.stop()
        await receiver.child.stop()


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, list[Measurement]]:
    server = await start_nats(workdir / "nats")
    found: dict[str, list[Measurement]] = {mode: [] for mode in MODES}
    try:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        config = StreamConfig(
            name=STREAM, subjects=["greenlight.events.>"], storage=StorageType.FILE
        )
        await js.add_stream(config)
        await publish(js, backlog(args.jobs, args.steps, args.publish))
        await nc.close()
        for index in range(args.runs):
            for mode in MODES if index % 2 == 0 else MODES[::-1]:
                rundir = workdir / f"run-{index}"
                rundir.mkdir(exist_ok=True)
                expected = args.jobs * args.steps
                found[mode].append(await measure(server.url, mode, expected, rundir))
                print(
                    f"run {index + 1} {mode}: {found[mode][-1].rate_per_s:,.0f}/s", file=sys.stderr
                )
    finally:
        await server.stop()
    return found


def report(args: argparse.Namespace, found: dict[str, list[Measurement]]) -> str:
    def median(mode: str, field: str) -> float:
        return statistics.median(getattr(m, field) for m in found[mode])

    off, on = median("none", "rate_per_s"), median("job", "rate_per_s")
    lines = [
        f"{args.jobs} jobs x {args.steps} events, published by {args.publish}, {args.runs} run(s)",
        f"ordering none: {off:,.0f} deliveries/s, {median('none', 'cpu_us'):.0f} µs CPU each",
        f"ordering job:  {on:,.0f} deliveries/s, {median('job', 'cpu_us'):.0f} µs CPU each",
        f"ratio (job / none): {on / off:.2f}",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ordering", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--publish", choices=("rounds", "jobs"), default="rounds")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ordering-") as workdir:
        found = uvloop.run(run(args, Path(workdir)))
    print(report(args, found))


if __name__ == "__main__":
    main()
