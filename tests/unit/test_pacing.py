"""The replay rate limit: each call books the next slot, never earlier than itself."""

from __future__ import annotations

import pytest
from harness.clock import FakeClock

from bridge.policy.pacing import Pacer


@pytest.mark.parametrize(
    ("rate_per_s", "call_times_s", "delays_s"),
    [
        # calls arriving together are spaced one interval apart
        (10, [0, 0, 0, 0], [0, 0.1, 0.2, 0.3]),
        # calls slower than the rate never wait
        (10, [0, 0.5, 1.0], [0, 0, 0]),
        # a slow stretch buys no burst: the slot after a late call is one interval later
        (2, [0, 3, 3, 3], [0, 0, 0.5, 1.0]),
        # a call in the middle of its slot waits for the rest of it
        (4, [0, 0.1], [0, 0.15]),
        (0.5, [0, 0], [0, 2.0]),
    ],
)
def test_slots(rate_per_s: float, call_times_s: list[float], delays_s: list[float]) -> None:
    clock = FakeClock()
    pacer = Pacer(rate_per_s, clock)
    booked = []
    for at_s in call_times_s:
        clock.now_s = 100.0 + at_s
        booked.append(pacer.book())
    assert booked == pytest.approx(delays_s)


@pytest.mark.parametrize("rate_per_s", [0, -1])
def test_rate_must_be_positive(rate_per_s: float) -> None:
    with pytest.raises(ValueError, match="greater than zero"):
        Pacer(rate_per_s)
