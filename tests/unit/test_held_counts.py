"""What `GET /endpoints` says is held, and that counting it keeps no entry per delivery."""

from __future__ import annotations

from typing import Any

from harness.tasks import plain_task

from bridge.config.settings import load_settings
from bridge.delivery.slots import EndpointLimiter
from bridge.jetstream.endpoint_health import EndpointHealth
from bridge.policy import breaker as breakers
from bridge.policy.tasks import DeliveryTask

URL = "http://127.0.0.1:9/hook"
ORIGIN = "http://127.0.0.1:9"


class Clock:
    def __init__(self) -> None:
        self.now_s = 1_000.0

    def __call__(self) -> float:
        return self.now_s


def task(index: int) -> DeliveryTask:
    return plain_task(URL, index)


def health(clock: Clock) -> EndpointHealth:
    settings = load_settings({"WEBHOOK_PROBE_INTERVAL": "5s"})
    none: Any = None
    held = EndpointHealth(none, settings, limiter=EndpointLimiter(8), ops=none, clock=clock)
    held._breakers[ORIGIN] = (breakers.opened(ORIGIN, clock.now_s, 5.0), 1)
    return held


def test_first_attempts_held_are_counted_without_an_entry_each() -> None:
    clock = Clock()
    counts = health(clock)
    for index in range(10_000):  # 100 a second for 100 s, each waiting 5 s
        clock.now_s = 1_000.0 + index / 100
        counts.note_held(task(index), 1, 5.0, arriving=True)
    assert sum(len(held) for held in counts._held.values()) <= 8  # the last seconds only
    (status,) = counts.statuses()
    assert status.endpoint == ORIGIN
    assert 500 <= status.held <= 700  # those that wait now: about 5.5 s worth


def test_batches_held_are_counted_until_they_look_again() -> None:
    clock = Clock()
    counts = health(clock)
    counts.note_held(task(1), 40, 5.0)
    counts.note_held(task(2), 2, 5.0, arriving=True)
    assert [status.held for status in counts.statuses()] == [42]
    clock.now_s += 6.0
    assert [status.held for status in counts.statuses()] == [0]  # none has been seen lately
