"""Pacing: let calls through at most `rate_per_s` times a second (a replay's rate limit, and a
webhook's `rate_limit`, whose next free slot is shared by the replicas through NATS)."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """The n-th call waits for its slot, one `1 / rate_per_s` after the previous one's.

    A slot is never earlier than the call itself, so a slow stretch does not buy a burst later.
    """

    def __init__(self, rate_per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate must be greater than zero")
        self._interval_s = 1 / rate_per_s
        self._clock = clock
        self._next_slot_s: float | None = None

    def book(self) -> float:
        """Take the next slot; how many seconds from now it starts."""
        now_s = self._clock()
        slot_s, self._next_slot_s = next_slot(self._next_slot_s, now_s, self._interval_s)
        return slot_s - now_s


def next_slot(next_free_s: float | None, now_s: float, interval_s: float) -> tuple[float, float]:
    """The slot a call takes, and the next free one after it. A slot is never earlier than
    the call (GCRA without a burst): evenly spaced, whoever books."""
    slot_s = now_s if next_free_s is None else max(next_free_s, now_s)
    return slot_s, slot_s + interval_s
