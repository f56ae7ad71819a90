"""The endpoint breaker's pure rules (bridge/policy/breaker.py), in tables."""

from __future__ import annotations

import pytest

from bridge.policy import breaker
from bridge.policy.breaker import Breaker

T0 = 1_000_000.0
OPEN = breaker.opened("http://h:80", T0, 5.0)


@pytest.mark.parametrize(
    ("outcome", "status", "failure"),
    [
        ("connection_error", None, True),
        ("timeout", None, True),
        ("http_error", 500, True),
        ("http_error", 503, True),
        ("http_error", 429, True),
        ("http_error", 404, False),  # it answered: it is up
        ("http_error", 410, False),
        ("success", 200, False),
        ("blocked", None, False),
    ],
)
def test_what_counts_as_a_failure(outcome: str, status: int | None, failure: bool) -> None:
    assert breaker.is_failure(outcome, status) is failure


@pytest.mark.parametrize(
    ("state", "now_s", "may"),
    [
        (OPEN, T0 + 4.9, False),
        (OPEN, T0 + 5.0, True),
        (breaker.probing(OPEN, T0 + 5, 20.0, "dlv_1"), T0 + 10, False),  # a probe runs
        (breaker.probing(OPEN, T0 + 5, 20.0, "dlv_1"), T0 + 25, True),  # its lease ran out
    ],
)
def test_when_a_probe_may_start(state: Breaker, now_s: float, may: bool) -> None:
    assert breaker.may_probe(state, now_s) is may


@pytest.mark.parametrize(
    ("interval_s", "first_s", "expected_s"),
    [(5.0, 5.0, 10.0), (40.0, 5.0, 60.0), (60.0, 5.0, 60.0), (90.0, 90.0, 90.0)],
)
def test_a_failed_probe_doubles_the_interval_up_to_a_minute(
    interval_s: float, first_s: float, expected_s: float
) -> None:
    leased = breaker.probing(
        breaker.opened("http://h:80", T0, interval_s), T0 + interval_s, 20.0, "dlv_1"
    )
    again = breaker.probe_failed(leased, T0 + 30, first_s)
    assert (again.state, again.interval_s, again.prober) == ("open", expected_s, "")
    assert again.next_probe_s == T0 + 30 + expected_s
    assert again.since_s == T0  # the outage's start stays


@pytest.mark.parametrize(
    ("state", "now_s", "wait_s"),
    [
        (OPEN, T0, 5.0),  # the next probe is due in 5 s
        (OPEN, T0 + 4.9, 0.5),  # at least the shortest wait
        (breaker.opened("http://h:80", T0, 60.0), T0, 60.0),  # no sooner than it is due
        (breaker.probing(OPEN, T0 + 5, 0.5, "dlv_1"), T0 + 5, 0.5),  # until the probe's lease
        (breaker.probing(OPEN, T0 + 5, 20.0, "dlv_1"), T0 + 5, 1.0),  # its outcome comes soon
        (breaker.probing(OPEN, T0 + 5, 20.0, "dlv_1"), T0 + 9, 4.0),  # as long as it has run
        (breaker.probing(OPEN, T0 + 5, 20.0, "dlv_1"), T0 + 22, 3.0),  # until its lease ends
    ],
)
def test_how_long_a_held_delivery_waits(state: Breaker, now_s: float, wait_s: float) -> None:
    assert breaker.recheck_s(state, now_s, 1.0, 0.5) == pytest.approx(wait_s)


def test_a_breaker_reads_back_as_written() -> None:
    leased = breaker.probing(OPEN, T0 + 5, 20.0, "dlv_1")
    assert breaker.decode(breaker.encode(leased)) == leased
