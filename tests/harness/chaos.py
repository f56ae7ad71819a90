"""A chaos receiver: how it answers each request is decided by a seeded rule, so a test knows
the outcome every (event, URL) pair must end with, whatever else fails meanwhile.

The rule gives each pair a plan, drawn from the seed, the event's job id and the endpoint's
path (not from the delivery id, whose URL holds the receiver's random port: so a seed replays
the same plans), and the plan gives each *arrival* of that pair's delivery id (the receiver
counts them, 1, 2, 3, ...) a mode: 200, 500, hang (longer than WEBHOOK_TIMEOUT, then
504), reset (the connection aborted with a TCP RST, no response) or 410. Four kinds of plan:

    ok      200 every time                               → delivered
    flaky   k failures (1 ≤ k ≤ max_retry), then 200     → delivered
    dead    failures only                                → dead letter `max_retries_exceeded`
    gone    j failures (0 ≤ j ≤ max_retry), then 410     → dead letter `gone`

Why arrivals, and why the outcomes hold exactly under crashes. The bridge numbers its attempts
itself (1..max_retry+1, carried in its task messages); the receiver cannot see that number.
Every attempt the bridge counts as failed reached this receiver: it is on loopback and always
listening; its keep-alive outlasts any run, so no attempt dies on a stale pooled connection;
its accept queue is long enough that no connection attempt is dropped (at aiohttp's default
of 128 some were, and the SYN retransmit a second later read as a timeout that never
arrived); and a request the bridge timed out on is still counted when the receiver gets to it,
which would have to take longer than the whole retry schedule to reorder arrivals. So by the
time the bridge makes attempt n of a delivery, this receiver has seen at least n arrivals of
it, counting the one in flight: arrival number ≥ attempt number. A crash only adds arrivals
without adding attempts: a bridge killed (or drained by SIGTERM) mid-attempt has its message
redelivered and repeats that attempt; an event whose ack was lost in a nats-server restart,
or whose handler failed to queue a retry, is handled again; a retry queued twice (same
Nats-Msg-Id, so only outside the duplicate window) runs twice. Hence:
- flaky: the bridge's last permitted attempt (max_retry + 1) comes at arrival ≥ max_retry + 1
  > k, which answers 200, so no branch can run out of retries: delivered. Duplicates only
  make a 200 come sooner.
- dead: no arrival ever answers 2xx or 410, so every branch ends `max_retries_exceeded`.
- gone: arrivals after j answer 410 and attempt j + 1 ≤ max_retry + 1 comes at arrival
  ≥ j + 1, so every branch meets a 410 before its retries run out: `gone`, and never 2xx.
- ok: delivered; never dead-lettered.
The one case the rule cannot decide is an answer the bridge never saw: a 200 or 410 on its
last permitted attempt that reached it only after WEBHOOK_TIMEOUT (a starved machine), which
by the SPEC is a failed attempt; the ledger (harness.ledger) allows exactly that, and lists it.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from aiohttp import web

from harness.receiver import Receiver

Mode = Literal["200", "500", "hang", "reset", "410"]
Kind = Literal["ok", "flaky", "dead", "gone"]
Expected = Literal["delivered", "max_retries_exceeded", "gone"]
KINDS: tuple[Kind, ...] = ("ok", "flaky", "dead", "gone")
FAILURES: tuple[Mode, ...] = ("500", "reset", "hang")
FAILURE_WEIGHTS = (2, 1, 1)  # a hang holds an endpoint slot for a whole timeout: fewer
EXPECTED: dict[Kind, Expected] = {
    "ok": "delivered",
    "flaky": "delivered",
    "dead": "max_retries_exceeded",
    "gone": "gone",
}
HANG_FACTOR = 3  # a hang outlasts the bridge's timeout this many times over
PLAN_CACHE_SIZE = 65536


@dataclass(frozen=True)
class Plan:
    """Arrival n answers `script[n-1]`; arrivals past the script answer `then`."""

    kind: Kind
    script: tuple[Mode, ...]
    then: Mode

    def mode(self, arrival: int) -> Mode:
        return self.script[arrival - 1] if arrival <= len(self.script) else self.then

    @property
    def expected(self) -> Expected:
        return EXPECTED[self.kind]

    def __str__(self) -> str:
        return f"{self.kind}({' '.join(self.script)} then {self.then})"


@dataclass(frozen=True)
class Rule:
    """Seeded and pure: the same seed, key (`plan_key`) and max_retry give the same plan.

    `weights` are the shares of ok, flaky, dead and gone plans.
    """

    seed: int
    max_retry: int
    weights: tuple[float, float, float, float] = (0.55, 0.25, 0.1, 0.1)

    def plan(self, key: str) -> Plan:
        return _plan(self, key)


def plan_key(job_id: str, path: str) -> str:
    """What a pair's plan is drawn from; both parts are in every request."""
    return f"{job_id} {path}"


@lru_cache(maxsize=PLAN_CACHE_SIZE)
def _plan(rule: Rule, key: str) -> Plan:
    rand = random.Random(f"{rule.seed}/{key}")  # str seeds are stable across runs
    kind = rand.choices(KINDS, rule.weights)[0]
    if kind == "ok":
        return Plan(kind, (), "200")
    if kind == "flaky":
        return Plan(kind, _failures(rand, rand.randint(1, rule.max_retry)), "200")
    if kind == "dead":
        return Plan(kind, _failures(rand, rule.max_retry + 1), "500")
    return Plan(kind, _failures(rand, rand.randint(0, rule.max_retry)), "410")


def _failures(rand: random.Random, count: int) -> tuple[Mode, ...]:
    return tuple(rand.choices(FAILURES, FAILURE_WEIGHTS, k=count))


class ChaosReceiver(Receiver):
    """Answers by `rule` (see the module docstring); counts arrivals and 2xx answers per
    delivery id. `timeout_s` is the bridge's WEBHOOK_TIMEOUT, which a hang outlasts.

    It keeps counts only, not every request like a Receiver: a bench run makes hundreds of
    thousands of them.
    """

    def __init__(self, rule: Rule, timeout_s: float) -> None:
        super().__init__()
        self.rule = rule
        self.hang_s = timeout_s * HANG_FACTOR
        self.arrivals: Counter[str] = Counter()
        self.answered_2xx: Counter[str] = Counter()
        self.modes: Counter[Mode] = Counter()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        delivery_id = request.headers.get("X-Greenlight-Delivery", "")
        mode = await self._arrival(request, delivery_id)
        if mode == "hang":
            await asyncio.sleep(self.hang_s)  # the bridge has given up by then
            return web.Response(status=504)
        if mode == "reset":
            return _reset(request)
        if mode == "200":
            self.answered_2xx[delivery_id] += 1
        return web.Response(status=int(mode))

    async def _arrival(self, request: web.Request, delivery_id: str) -> Mode:
        """Count the arrival; the mode its plan gives it."""
        plan = self.rule.plan(plan_key((await request.json())["job_id"], request.path))
        self.arrivals[delivery_id] += 1
        mode = plan.mode(self.arrivals[delivery_id])
        self.modes[mode] += 1
        return mode


def _reset(request: web.Request) -> web.StreamResponse:
    """Abort the connection with a TCP RST: the client gets no response at all."""
    transport = request.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return web.Response(status=500)  # never written: the transport is gone
