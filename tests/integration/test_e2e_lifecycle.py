"""Process lifecycle under load: kill -9 loses nothing; SIGTERM drains, exits 0, loses nothing."""

from __future__ import annotations

from collections import Counter

import pytest
from harness.bridge import BridgeProcess, Bridges
from harness.publish import job_event, publish_events_async
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]


class Arrivals:
    """How often each job id reached one path; parsed incrementally (requests only grow)."""

    def __init__(self, receiver: Receiver, path: str) -> None:
        self._receiver = receiver
        self._path = path
        self._parsed = 0
        self.counts: Counter[str] = Counter()

    def distinct(self) -> int:
        requests = self._receiver.received(self._path)
        for request in requests[self._parsed :]:
            self.counts[request.json()["job_id"]] += 1
        self._parsed = len(requests)
        return len(self.counts)

    def duplicates(self) -> int:
        return sum(self.counts.values()) - len(self.counts)


async def _publish_stream(js: JetStreamContext, count: int) -> None:
    events = ((f"evt-{i}", job_event("job.progress", f"job-{i}")) for i in range(count))
    await publish_events_async(js, events)


async def _wait_all(bridges: Bridges, arrivals: Arrivals, count: int) -> None:
    await bridges.wait_for(
        lambda: arrivals.distinct() >= count,
        40,
        lambda: f"lost events: only {arrivals.distinct()} of {count} job ids ever arrived",
    )


async def _stream_under_way(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, total: int, arrived: int
) -> tuple[dict[str, str], BridgeProcess, Arrivals]:
    """A bridge delivering `total` events to /bulk, returned once `arrived` have landed."""
    env = {"DEFAULT_WEBHOOK_URLS": receiver.url("/bulk"), "NATS_ACK_WAIT": "3s"}
    bridge = await bridges.start(env)
    arrivals = Arrivals(receiver, "/bulk")
    await _publish_stream(js, total)
    await bridges.wait_for(lambda: arrivals.distinct() >= arrived, 30, "the stream never got going")
    return env, bridge, arrivals


async def test_kill_9_mid_stream_loses_nothing(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    total = 2000
    env, first, arrivals = await _stream_under_way(js, receiver, bridges, total, 300)

    assert await first.kill() == -9
    at_kill = arrivals.distinct()
    await bridges.start(env)
    await _wait_all(bridges, arrivals, total)
    print(f"kill -9 after {at_kill}/{total} events: {arrivals.duplicates()} duplicate deliveries")


async def test_sigterm_drains_exits_0_and_a_new_bridge_finishes(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    total = 1000
    env, first, arrivals = await _stream_under_way(js, receiver, bridges, total, 200)

    assert await first.terminate() == 0
    at_term = arrivals.distinct()
    await bridges.start(env)
    await _wait_all(bridges, arrivals, total)
    duplicates = arrivals.duplicates()
    print(f"SIGTERM after {at_term}/{total} events: {duplicates} duplicate deliveries")
    # SPEC §3: duplicates may only come from a process dying mid-attempt, not from a drain.
    assert duplicates == 0
