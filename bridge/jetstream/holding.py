"""Deliveries to an endpoint that is down wait in the tasks stream (SPEC §11): durably, without
spending their retries, until it recovers, for `WEBHOOK_HOLD_MAX` at most (then a dead letter,
reason `endpoint_down`).

A first attempt whose endpoint is down is stored as a held task at once (batched with the
others for its URL), stamped with when its hold began. A task that comes due while its
endpoint is still down waits again, unless it is the endpoint's probe: `nak` until the next
probe is due (nothing can release it sooner), or while a probe runs, for as long as it has
run (`policy.breaker.recheck_s`). A task queued before its endpoint went down counts its
hold from the breaker's opening. The decision is returned; the fetch loop carries it out.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from bridge.jetstream.dispatch import Dispatcher
from bridge.jetstream.endpoint_health import EndpointHealth
from bridge.policy.breaker import Breaker
from bridge.policy.decisions import ACK, Decision, Nak
from bridge.policy.tasks import DeliveryTask


class Holding:
    """What the handlers ask before attempting a delivery; `clock` is wall-clock seconds."""

    def __init__(
        self,
        health: EndpointHealth,
        dispatcher: Dispatcher,
        hold_max_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._health = health
        self._dispatcher = dispatcher
        self._hold_max_s = hold_max_s
        self._clock = clock

    def first(self, task: DeliveryTask) -> DeliveryTask | None:
        """A first attempt as it is stored to wait for its endpoint; None while healthy."""
        breaker = self._health.breaker(task.target.url)
        if breaker is None:
            return None
        now_s, wait_s = self._clock(), self._health.hold_s(breaker)
        self._health.note_held(task, 1, wait_s, arriving=True)
        return msgspec.structs.replace(task, held_since_s=now_s, not_before_s=now_s + wait_s)

    async def single(self, task: DeliveryTask) -> Decision | None:
        """None when the task may be attempted now: its endpoint is healthy, or this is its
        probe. Else it waits again, or is dead-lettered once held too long."""
        breaker = self._health.breaker(task.target.url)
        if breaker is not None and self._expired(task, breaker):
            self._health.released(task)
            await self._dispatcher.dead_letter(task, "endpoint_down")
            return ACK
        if breaker is None or await self._health.may_probe(task):
            self._health.released(task)
            return None
        return self._wait(task, 1, breaker)

    async def batch(self, first: DeliveryTask, count: int) -> Decision | None:
        """A batch led by `first` waits as one message while its endpoint is down. None: split
        it as usual (its endpoint is healthy; its hold is over and each is dead-lettered; or
        `first` is leased as the probe and goes ahead alone)."""
        breaker = self._health.breaker(first.target.url)
        if breaker is None or self._expired(first, breaker):
            return None
        if await self._health.may_probe(first):
            return None
        return self._wait(first, count, breaker)

    def _wait(self, task: DeliveryTask, count: int, breaker: Breaker) -> Decision:
        wait_s = self._health.hold_s(breaker)
        self._health.note_held(task, count, wait_s)
        return Nak(wait_s)

    def _expired(self, task: DeliveryTask, breaker: Breaker) -> bool:
        held_since_s = task.held_since_s or breaker.since_s
        return self._clock() - held_since_s > self._hold_max_s
