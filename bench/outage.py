"""`python -m bench.outage`: an endpoint down for minutes, with the seed's retry settings.

    python -m bench.outage [--events 1000] [--outage 180] [--reply-ms 200] [--workdir DIR]

`webhook-bridge run` (WEBHOOK_MAX_RETRY=4, back-off 1 s to 30 s: the defaults, so a delivery
would give up about a minute after its first failure) delivers `--events` events to two
receivers on loopback (tests/harness/receiver.py, in this process): one answers 503 for
`--outage` seconds, then 200 after `--reply-ms`; the other is healthy throughout. Prints the
requests the down endpoint received during the outage (against the deliveries times attempts
it would have cost without a breaker), the dead letters, the recovery time (recovery → every
delivery arrived) and the ramp-up: the most requests in flight at the endpoint in each second
after recovery. Exit status 1 when anything was dead-lettered or lost.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nats
import uvloop

from bench.processes import start_nats

# The harness lives with the tests; the bench uses it as they do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from harness.bridge import BridgeProcess
from harness.publish import job_event, publish_events_async
from harness.receiver import Receiver

DLQ_STREAM = "GREENLIGHT_WEBHOOKS_DLQ"
SAMPLE_S = 0.02
DRAIN_TIMEOUT_S = 600.0
SEED_ATTEMPTS = 5  # WEBHOOK_MAX_RETRY=4: five attempts per delivery without a breaker
BRIDGE_ENV = {"WEBHOOK_SECRET": "bench-secret", "LOG_LEVEL": "warning"}


@dataclass
class Outcome:
    events: int
    outage_s: float
    during: int = 0
    healthy_during: int = 0
    dead_letters: int = 0
    delivered: int = 0
    recovery_s: float = 0.0
    ramp: dict[int, int] = field(default_factory=dict)


async def run(events: int, outage_s: float, reply_s: float, workdir: Path) -> Outcome:
    server, down, healthy = await start_nats(workdir / "nats"), Receiver(), Receiver()
    await down.start()
    await healthy.start()
    down.reply("/down", 503)
    urls = f"{down.url('/down')},{healthy.url('/ok')}"
    bridge = BridgeProcess(
        BRIDGE_ENV | {"NATS_URL": server.url, "DEFAULT_WEBHOOK_URLS": urls}, workdir
    )
    nc = await nats.connect(server.url)
    try:
        await bridge.start()
        await bridge.wait_ready()
        return await _scenario(Outcome(events, outage_s), nc, down, healthy, reply_s)
    finally:
        await bridge.terminate()
        await nc.close()
        await down.stop()
        await healthy.stop()
        await server.stop()


async def _scenario(
    outcome: Outcome, nc: nats.NATS, down: Receiver, healthy: Receiver, reply_s: float
) -> Outcome:
    js = nc.jetstream()
    jobs = ((f"evt-{n}", job_event("job.completed", f"job-{n}")) for n in range(outcome.events))
    await publish_events_async(js, jobs)
    _progress(
        f"published {outcome.events} events; the endpoint answers 503 for {outcome.outage_s:.0f}s"
    )
    await asyncio.sleep(outcome.outage_s)
    outcome.during, outcome.healthy_during = down.count("/down"), healthy.count("/ok")
    down.slow("/down", reply_s)
    recovered_at = time.monotonic()
    _progress("the endpoint answers 200 again")
    outcome.ramp = await _drain(down, outcome, recovered_at)
    outcome.delivered = len({r.delivery_id for r in down.received("/down")[outcome.during :]})
    outcome.dead_letters = (await js.stream_info(DLQ_STREAM)).state.messages
    return outcome


async def _drain(down: Receiver, outcome: Outcome, recovered_at: float) -> dict[int, int]:
    """Sample the requests in flight until every delivery arrived; the most per second."""
    peaks: dict[int, int] = defaultdict(int)
    deadline = recovered_at + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        second = int(time.monotonic() - recovered_at)
        peaks[second] = max(peaks[second], down.in_flight)
        arrived = {r.delivery_id for r in down.received("/down")[outcome.during :]}
        if len(arrived) >= outcome.events and not down.in_flight:
            outcome.recovery_s = time.monotonic() - recovered_at
            break
        await asyncio.sleep(SAMPLE_S)
    return dict(peaks)


def report(outcome: Outcome) -> list[str]:
    without = outcome.events * SEED_ATTEMPTS
    ramp = " ".join(f"{outcome.ramp.get(s, 0)}" for s in range(max(outcome.ramp, default=0) + 1))
    return [
        f"outage: {outcome.outage_s:.0f}s of 503, {outcome.events} deliveries to the endpoint",
        f"requests received during the outage: {outcome.during} (without a breaker: {without})",
        f"healthy endpoint, delivered during the outage: {outcome.healthy_during}",
        f"dead letters: {outcome.dead_letters}",
        f"delivered after recovery: {outcome.delivered} of {outcome.events}",
        f"recovery time (recovery -> all delivered): {outcome.recovery_s:.1f}s",
        f"ramp-up, most requests in flight at the endpoint per second after recovery: {ramp}",
    ]


def _progress(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.outage", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--outage", type=float, default=180.0, help="seconds of 503")
    parser.add_argument("--reply-ms", type=float, default=200.0, help="latency once recovered")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-outage-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        outcome = uvloop.run(run(args.events, args.outage, args.reply_ms / 1000, workdir))
    print("\n".join(report(outcome)))
    sys.exit(1 if outcome.dead_letters or outcome.delivered < outcome.events else 0)


if __name__ == "__main__":
    main()
