"""Log flood control: a burst per key per window, then counts of what was dropped."""

from __future__ import annotations

import pytest

from bridge.observability.throttle import Throttle, Verdict


def _run(burst: int, window_s: float, calls: list[tuple[str, float]]) -> list[Verdict]:
    throttle = Throttle(burst, window_s)
    return [throttle.admit(key, now_s) for key, now_s in calls]


L, D = Verdict(log=True), Verdict(log=False)


@pytest.mark.parametrize(
    ("burst", "calls", "expected"),
    [
        pytest.param(2, [("a", 0), ("a", 1), ("a", 2)], [L, L, D], id="burst-then-drop"),
        pytest.param(
            1,
            [("a", 0), ("a", 1), ("a", 2), ("a", 60)],
            [L, D, D, Verdict(log=True, suppressed=2)],
            id="next-window-reports-suppressed",
        ),
        pytest.param(1, [("a", 0), ("b", 0), ("a", 1)], [L, L, D], id="keys-independent"),
        pytest.param(
            1,
            [("a", 0), ("a", 1), ("a", 60), ("a", 120)],
            [L, D, Verdict(log=True, suppressed=1), L],
            id="count-reset-once-reported",
        ),
        pytest.param(0, [("a", 0), ("a", 1)], [D, D], id="zero-burst-logs-nothing"),
    ],
)
def test_admit(burst: int, calls: list[tuple[str, float]], expected: list[Verdict]) -> None:
    assert _run(burst, 60.0, calls) == expected


def test_memory_is_bounded_by_distinct_keys() -> None:
    throttle = Throttle(1, 60.0)
    for n in range(25_000):
        assert throttle.admit(f"host-{n}", 0.0).log
    assert len(throttle._windows) <= 10_000
