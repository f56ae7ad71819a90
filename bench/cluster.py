"""`python -m bench.cluster`: deliveries per second through the death of a stream leader.

    python -m bench.cluster [--events 20000] [--rate 1000] [--kill-at 0.3] [--workdir DIR]

The setup of tests/integration/test_cluster.py at a larger size, from the same harness: a
3-node nats-server cluster on loopback (tests/harness/cluster.py), `webhook-bridge run` with
NATS_REPLICAS=3 and all three URLs in NATS_URL, one receiver (tests/harness/receiver.py, in
this process; it records every request). Events are published at `--rate` with a
Nats-Msg-Id, each retried through the election as a producer must; once `--kill-at` of them
are published, the events stream's leader gets kill -9 and publishing goes on. Prints the
deliveries of each second around the kill and the totals: lost (must be 0) and duplicates.
Exit status 1 when anything was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import nats
import uvloop
from nats.aio.client import Client

# The harness lives with the tests; the bench uses it as they do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness.bridge import BridgeProcess
from harness.cluster import NatsCluster, publish_through_elections
from harness.publish import event_subject, job_event
from harness.receiver import Receiver

STREAM = "GREENLIGHT_EVENTS"
PUBLISHERS = 16
PUBLISH_PATIENCE_S = 120.0
DRAIN_TIMEOUT_S = 120.0
BRIDGE_ENV = {
    "NATS_REPLICAS": "3",
    "WEBHOOK_SECRET": "bench-secret",
    "WEBHOOK_ENDPOINT_CONCURRENCY": "256",  # one endpoint gets the whole process's slots
    "WEBHOOK_TIMEOUT": "2s",
    "NATS_ACK_WAIT": "5s",  # the ack deadline becomes 9 s (twice the timeout + 5 s)
    "LOG_LEVEL": "warning",
}


@dataclass(frozen=True)
class Plan:
    """How many events, how fast, and after which share of them the leader dies."""

    events: int
    rate_per_s: float
    kill_at: float


@dataclass(frozen=True)
class Outcome:
    """What the receiver saw, and when the leader was killed (time.monotonic())."""

    events: int
    arrivals: list[float]
    job_ids: list[str]
    killed_at: float
    leader: str
    failed_tries: int


async def run(plan: Plan, workdir: Path) -> Outcome:
    cluster, receiver = NatsCluster(workdir / "cluster"), Receiver()
    await cluster.start()
    await receiver.start()
    env = BRIDGE_ENV | {"NATS_URL": cluster.urls, "DEFAULT_WEBHOOK_URLS": receiver.url("/hook")}
    bridge = BridgeProcess(env, workdir, "bridge")
    nc = await nats.connect(cluster.urls.split(","), max_reconnect_attempts=-1)
    try:
        await bridge.start()
        await bridge.wait_ready()
        return await _publish_and_kill(plan, nc, cluster, receiver)
    finally:
        await bridge.terminate()
        await nc.close()
        await receiver.stop()
        await cluster.stop()


async def _publish_and_kill(
    plan: Plan, nc: Client, cluster: NatsCluster, receiver: Receiver
) -> Outcome:
    kill_now = asyncio.Event()
    publishing = asyncio.create_task(_publish(plan, nc, kill_now))
    await kill_now.wait()
    leader = await cluster.stream_leader(STREAM)
    await cluster.kill(leader)
    killed_at = time.monotonic()
    _progress(f"killed {leader.name}, the leader of {STREAM}")
    failed_tries = await publishing
    await _drain(receiver, plan.events)
    arrivals = [r.at for r in receiver.received("/hook")]
    job_ids = [r.json()["job_id"] for r in receiver.received("/hook")]
    return Outcome(plan.events, arrivals, job_ids, killed_at, leader.name, failed_tries)


async def _publish(plan: Plan, nc: Client, kill_now: asyncio.Event) -> int:
    """Paced by PUBLISHERS concurrent producers; sets `kill_now` once `kill_at` of the
    events are published. Returns the number of failed tries."""
    js, start, queue = nc.jetstream(), time.monotonic(), iter(range(plan.events))
    acked = 0

    async def producer() -> int:
        nonlocal acked
        failures = 0
        for i in queue:
            await asyncio.sleep(max(0.0, start + i / plan.rate_per_s - time.monotonic()))
            data = json.dumps(job_event("job.progress", f"job-{i}")).encode()
            subject, msg_id = event_subject("job.progress"), f"evt-{i}"
            failures += await publish_through_elections(
                js, subject, data, msg_id, PUBLISH_PATIENCE_S
            )
            acked += 1
            if acked >= plan.events * plan.kill_at:
                kill_now.set()
        return failures

    return sum(await asyncio.gather(*(producer() for _ in range(PUBLISHERS))))


async def _drain(receiver: Receiver, events: int) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if len({r.json()["job_id"] for r in receiver.received("/hook")}) >= events:
            return
        await asyncio.sleep(1.0)
    _progress(f"gave up waiting after {DRAIN_TIMEOUT_S:.0f}s")


def report(outcome: Outcome) -> list[str]:
    buckets = Counter(int((at - outcome.killed_at) // 1) for at in outcome.arrivals)
    lines = ["second  deliveries  (0 = the second after kill -9)"]
    lines += [f"{s:>6}  {buckets.get(s, 0):>10,}" for s in range(min(buckets), max(buckets) + 1)]
    before = [buckets.get(s, 0) for s in range(min(buckets) + 1, 0)]  # whole seconds only
    unique = len(set(outcome.job_ids))
    lines += [
        f"leader killed: {outcome.leader}; publish tries that failed meanwhile: "
        f"{outcome.failed_tries}",
        f"before the kill: median {statistics.median(before or [0]):,.0f} deliveries/s",
        f"longest pause after the kill: {_longest_gap_s(outcome):.1f} s; "
        f"back to that rate after {_recovery_s(buckets, before)}; "
        f"peak while catching up {max(buckets.get(s, 0) for s in range(max(buckets) + 1)):,}/s",
        f"events {outcome.events:,}  deliveries {len(outcome.job_ids):,}  "
        f"lost {outcome.events - unique:,}  duplicates {len(outcome.job_ids) - unique:,}",
    ]
    return lines


def _longest_gap_s(outcome: Outcome) -> float:
    after = sorted(at for at in outcome.arrivals if at >= outcome.killed_at)
    edges = [outcome.killed_at, *after]
    return max((b - a for a, b in itertools.pairwise(edges)), default=0.0)


def _recovery_s(buckets: Counter[int], before: list[int]) -> str:
    """The first second after the kill whose deliveries reach 80% of the median before."""
    target = 0.8 * statistics.median(before or [0])
    late = [s for s in range(0, max(buckets) + 1) if buckets.get(s, 0) >= target]
    return f"{late[0]} s" if late else "never"


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="events published per second")
    parser.add_argument("--kill-at", type=float, default=0.3, help="share published before")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    outcome = uvloop.run(run(Plan(args.events, args.rate, args.kill_at), workdir))
    print("\n".join(report(outcome)))
    sys.exit(1 if len(set(outcome.job_ids)) < outcome.events else 0)


if __name__ == "__main__":
    main()
