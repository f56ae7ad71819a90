"""Per-job ordering end to end (SPEC §12), with real `webhook-bridge run` processes.

Each event carries its `step` within its job (0, 1, 2... in publish order). The receiver
records, per path, every request in arrival order with the status it answered. The ledger's
rule, per (URL, job): no request for step k arrives before the first 2xx answered to step
k - 1 (a dead-lettered step excepted, where said). So the steps first received successfully
are in publish order, and duplicates (a replica killed mid-attempt may resend a step it had
sent) are allowed only for steps already delivered.

The receiver's paths share one origin, so failures meant for one job would open its
endpoint breaker (SPEC §11) and hold every job: tests about one failing job keep the breaker
shut (NO_BREAKER); the two-replica test keeps it, probing fast, so holds meet ordering there.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from harness.bridge import Bridges
from harness.publish import job_event, publish_events_async, read_dead_letters
from harness.receiver import Received, Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

NAMES = ("job.queued", "job.started", "job.progress", "job.progress", "job.completed")
STEPS = len(NAMES)
Fails = Callable[[str, str, int], bool]  # (path, job, step) → answer 503
NO_BREAKER = {"WEBHOOK_BREAKER_FAILURES": "1000"}


@dataclass
class Ledger:
    """What the receiver answered, in arrival order: (path, job, step, status)."""

    fails: Fails
    log: list[tuple[str, str, int, int]] = field(default_factory=list)
    ok: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def judge(self, receiver: Receiver, *paths: str) -> None:
        for path in paths:
            receiver.judge(path, self._decider(path))

    def _decider(self, path: str) -> Callable[[Received], int]:
        def decide(request: Received) -> int:
            body = request.json()
            job, step = body["job_id"], body["step"]
            status = 503 if self.fails(path, job, step) else 200
            self.log.append((path, job, step, status))
            steps = self.ok.setdefault((path, job), [])
            if status == 200 and step not in steps:
                steps.append(step)
            return status

        return decide

    def delivered(self, path: str, job: str) -> list[int]:
        """The steps of `job` first answered 2xx at `path`, in the order they were."""
        return self.ok.get((path, job), [])

    def attempted(self, path: str, job: str) -> list[int]:
        return [step for where, who, step, _ in self.log if (where, who) == (path, job)]

    def complete(self, path: str, jobs: list[str]) -> bool:
        return all(len(self.delivered(path, job)) == STEPS for job in jobs)

    def out_of_order(self, skipped: frozenset[tuple[str, str, int]] = frozenset()) -> list[str]:
        """Requests for a step before the previous step's first 2xx (or its dead letter,
        for the `skipped` (path, job, step))."""
        done: dict[tuple[str, str], int] = {}
        wrong = []
        for index, (path, job, step, status) in enumerate(self.log):
            last = done.get((path, job), -1)
            while (path, job, last + 1) in skipped and last + 1 < step:
                last += 1
            if step > last + 1:
                wrong.append(f"#{index} {path} {job}: step {step} before step {last + 1}")
            if status == 200 and step == last + 1:
                last = step
            done[path, job] = last
        return wrong


def job_events(jobs: list[str], rng: random.Random | None = None) -> list[tuple[str, dict]]:
    """Every job's steps in order; jobs one after the other, or interleaved at random."""
    queue = [(job, step) for job in jobs for step in range(STEPS)]
    if rng is not None:
        left = dict.fromkeys(jobs, 0)
        queue = []
        while left:
            job = rng.choice(sorted(left))
            queue.append((job, left[job]))
            left[job] += 1
            if left[job] == STEPS:
                del left[job]
    return [(f"{job}-{step}", job_event(NAMES[step], job, step=step)) for job, step in queue]


async def test_a_failing_delivery_holds_back_only_its_job_at_its_url(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    released = False

    def fails(path: str, job: str, step: int) -> bool:
        stuck = path == "/a" and job == "stuck" and not released
        return step == 1 and (stuck or (path == "/n" and job == "dead"))

    ledger = Ledger(fails)
    ledger.judge(receiver, "/a", "/b", "/n")
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"webhooks:\n  - id: ordered\n    url: {receiver.url('/n')}\n"
        "    ordering: job\n    max_retry: 1\n"
    )
    urls = f"{receiver.url('/a')},{receiver.url('/b')}"
    env = {"DEFAULT_WEBHOOK_URLS": urls, "WEBHOOK_ORDERING": "job", "WEBHOOK_MAX_RETRY": "100"}
    env |= NO_BREAKER
    await bridges.start(env | {"BRIDGE_CONFIG": str(config), "DEFAULT_WEBHOOKS": "ordered"})
    others = [f"ok-{i}" for i in range(10)]
    await publish_events_async(js, job_events(["stuck", "dead", *others]))

    def others_done() -> bool:
        healthy = ledger.complete("/a", [*others, "dead"]) and ledger.complete("/b", others)
        retried = ledger.attempted("/a", "stuck").count(1) >= 3
        return healthy and retried and ledger.complete("/b", ["stuck"])

    await bridges.wait_for(others_done, 60, lambda: f"others held back: {ledger.log[-20:]}")
    assert set(ledger.attempted("/a", "stuck")) == {0, 1}, "later steps went before step 1"
    released = True
    await bridges.wait_for(lambda: ledger.complete("/a", ["stuck"]), 30, "stuck never finished")
    await bridges.wait_for(lambda: len(ledger.delivered("/n", "dead")) == STEPS - 1, 30, "held")

    dead = [letter.body for letter in await read_dead_letters(js)]
    assert [(d["job_id"], d["reason"]) for d in dead] == [("dead", "max_retries_exceeded")]
    assert ledger.delivered("/n", "dead") == [0, 2, 3, 4]
    assert ledger.out_of_order(frozenset({("/n", "dead", 1)})) == []
    for job in ["stuck", *others]:
        assert ledger.delivered("/a", job) == list(range(STEPS))


async def test_order_holds_across_two_replicas_one_killed_and_a_restart(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    """The issue's test: 200 jobs x 5 events, 30% of requests failing at random (seeded),
    two replicas on one durable, one killed with -9 midway and a fresh one started."""
    dice = random.Random(18)
    ledger = Ledger(lambda _path, _job, _step: dice.random() < 0.3)
    ledger.judge(receiver, "/o")
    env = {
        "DEFAULT_WEBHOOK_URLS": receiver.url("/o"),
        "WEBHOOK_ORDERING": "job",
        "WEBHOOK_TIMEOUT": "1s",  # the ack deadline: max(NATS_ACK_WAIT, 2 x this + 5 s)
        "NATS_ACK_WAIT": "1s",
        "WEBHOOK_MAX_RETRY": "40",
        "WEBHOOK_RETRY_MIN_WAIT": "50ms",
        "WEBHOOK_RETRY_MAX_WAIT": "200ms",
        "WEBHOOK_PROBE_INTERVAL": "100ms",  # five 503s in a row open the breaker: probe soon
    }
    replicas = [await bridges.start(env) for _ in range(2)]
    jobs = [f"job-{i}" for i in range(200)]
    started_s = time.monotonic()
    await publish_events_async(js, job_events(jobs, random.Random(7)))
    total = len(jobs) * STEPS

    def delivered() -> int:
        return sum(len(ledger.delivered("/o", job)) for job in jobs)

    await bridges.wait_for(lambda: delivered() >= total // 3, 60, "no progress")
    at_kill = delivered()
    await replicas[0].kill()
    await bridges.start(env)
    await bridges.wait_for(
        lambda: delivered() == total, 90, lambda: f"{total - delivered()} deliveries missing"
    )
    took_s = time.monotonic() - started_s

    assert ledger.out_of_order() == []
    assert await read_dead_letters(js) == []
    requests = len(ledger.log)
    failed = sum(1 for *_, status in ledger.log if status != 200)
    duplicates = sum(1 for *_, status in ledger.log if status == 200) - total
    assert at_kill < total, "everything arrived before the kill"
    print(
        f"ordering: {total} deliveries in order in {took_s:.1f}s; {requests} requests, "
        f"{failed} answered 503, {duplicates} duplicates; {at_kill} delivered at the kill"
    )


async def test_an_api_webhook_asks_for_ordering(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    retried: dict[str, int] = {}

    def fails(_path: str, job: str, step: int) -> bool:
        """Step 1 of every job fails twice."""
        retried[job] = retried.get(job, 0) + (step == 1)
        return step == 1 and retried[job] <= 2

    ledger = Ledger(fails)
    ledger.judge(receiver, "/api")
    auth = {"Authorization": "Bearer ordering-token"}
    bridge = await bridges.start(
        {"ADMIN_TOKEN": "ordering-token", "WEBHOOK_ALLOW_PRIVATE_URLS": "1", **NO_BREAKER}
    )
    hook = {"id": "crm", "url": receiver.url("/api"), "scope": "global", "ordering": "job"}
    created = await bridge.call("POST", "/webhooks", hook, auth)
    assert created.status == 201, created.text
    assert created.json()["ordering"] == "job"
    refused = await bridge.call("PATCH", "/webhooks/crm", {"ordering": "stream"}, auth)
    assert refused.status == 400
    assert "ordering" in refused.json()["error"]

    jobs = [f"api-{i}" for i in range(5)]
    await publish_events_async(js, job_events(jobs))
    await bridges.wait_for(lambda: ledger.complete("/api", jobs), 60, "not all delivered")
    assert ledger.out_of_order() == []
