"""Back-off and Retry-After, with randomness and the clock pinned."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from bridge.policy.retry import backoff_s, parse_retry_after, retry_delay_s

MIN_S = 1.0
MAX_S = 30.0
NOW_S = 1_768_386_600.0  # 2026-01-14T10:30:00Z


def fixed(value: float) -> Callable[[], float]:
    return lambda: value


# Un-jittered waits for min 1s, max 30s: 1, 2, 4, 8, 16, then the cap.
# rand 0.0 scales by 0.8, rand 0.5 by 1.0, rand 1.0 by 1.2; then clamped to [1, 30].
BACKOFF_TABLE = [
    # n, rand 0.0, rand 0.5, rand 1.0
    (1, 1.0, 1.0, 1.2),
    (2, 1.6, 2.0, 2.4),
    (3, 3.2, 4.0, 4.8),
    (4, 6.4, 8.0, 9.6),
    (5, 12.8, 16.0, 19.2),
    (6, 24.0, 30.0, 30.0),
    (7, 24.0, 30.0, 30.0),
    (8, 24.0, 30.0, 30.0),
    (9, 24.0, 30.0, 30.0),
    (10, 24.0, 30.0, 30.0),
]


@pytest.mark.parametrize(("n", "at_0", "at_half", "at_1"), BACKOFF_TABLE)
def test_backoff_table(n: int, at_0: float, at_half: float, at_1: float) -> None:
    assert backoff_s(n, MIN_S, MAX_S, fixed(0.0)) == pytest.approx(at_0)
    assert backoff_s(n, MIN_S, MAX_S, fixed(0.5)) == pytest.approx(at_half)
    assert backoff_s(n, MIN_S, MAX_S, fixed(1.0)) == pytest.approx(at_1)


@pytest.mark.parametrize("n", [64, 1000, 1025, 10**6, 10**30])
@pytest.mark.parametrize(("rand", "expected"), [(0.0, 24.0), (0.5, 30.0), (1.0, 30.0)])
def test_backoff_big_retry_numbers_do_not_overflow(n: int, rand: float, expected: float) -> None:
    assert backoff_s(n, MIN_S, MAX_S, fixed(rand)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("n", "min_s", "max_s", "rand", "expected"),
    [
        (1, 5.0, 5.0, 0.0, 5.0),  # min == max: jitter cannot leave the range
        (1, 5.0, 5.0, 1.0, 5.0),
        (3, 0.5, 1.0, 1.0, 1.0),  # 2.0 capped, jitter up clamped to max
        (1, 0.5, 60.0, 0.0, 0.5),  # jitter down clamped to min
        (1, 0.0, 30.0, 1.0, 0.0),  # zero min wait stays zero
        (1000, 0.0, 30.0, 1.0, 0.0),
        (4, 0.25, 30.0, 0.5, 2.0),
    ],
)
def test_backoff_clamps(n: int, min_s: float, max_s: float, rand: float, expected: float) -> None:
    assert backoff_s(n, min_s, max_s, fixed(rand)) == pytest.approx(expected)


def test_backoff_default_rand_stays_within_jitter() -> None:
    for _ in range(200):
        assert 3.2 <= backoff_s(3, MIN_S, MAX_S) <= 4.8


@pytest.mark.parametrize(
    ("n", "min_s", "max_s"),
    [(0, 1.0, 30.0), (-1, 1.0, 30.0), (1, 31.0, 30.0), (1, -1.0, 30.0)],
)
def test_backoff_refuses_nonsense(n: int, min_s: float, max_s: float) -> None:
    with pytest.raises(ValueError, match=r"."):
        backoff_s(n, min_s, max_s, fixed(0.5))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("120", 120.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("007", 7.0),
        ("-5", None),  # not delta-seconds: fall back to back-off
        ("1.5", None),
        ("soon", None),
        ("120s", None),
        ("9" * 5000, math.inf),  # absurd but valid: the caller caps it
        ("Wed, 14 Jan 2026 10:32:00 GMT", 120.0),
        ("Wednesday, 14-Jan-26 10:32:00 GMT", 120.0),  # RFC 850 form
        ("Wed Jan 14 10:32:00 2026", 120.0),  # asctime form, no zone: UTC
        ("Wed, 14 Jan 2026 10:32:00 -0000", 120.0),
        ("Wed, 14 Jan 2026 11:32:00 +0100", 120.0),
        ("Wed, 14 Jan 2026 10:30:00 GMT", 0.0),
        ("Wed, 14 Jan 2026 10:00:00 GMT", 0.0),  # in the past: never negative
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0),
        ("Wed, 32 Jan 2026 10:32:00 GMT", None),
        ("Wed, 14 Foo 2026 10:32:00 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW_S) == expected


@pytest.mark.parametrize(
    ("retry_after_s", "rand", "expected"),
    [
        (None, 0.5, 4.0),  # no header: back-off for n = 3
        (None, 0.0, 3.2),
        (10.0, 0.0, 10.0),  # header replaces back-off, no jitter
        (0.5, 0.5, 0.5),  # below min wait: the receiver knows when it is ready
        (0.0, 1.0, 0.0),
        (30.0, 0.5, 30.0),
        (3600.0, 0.5, 30.0),  # capped at max wait
        (math.inf, 0.5, 30.0),
        (-5.0, 0.5, 0.0),  # never negative
    ],
)
def test_retry_delay(retry_after_s: float | None, rand: float, expected: float) -> None:
    assert retry_delay_s(3, MIN_S, MAX_S, retry_after_s, fixed(rand)) == pytest.approx(expected)


def test_retry_delay_from_header() -> None:
    after_s = parse_retry_after("Wed, 14 Jan 2026 12:30:00 GMT", NOW_S)
    assert retry_delay_s(1, MIN_S, MAX_S, after_s, fixed(0.5)) == MAX_S


def test_retry_delay_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="retry_number"):
        retry_delay_s(0, MIN_S, MAX_S, 5.0)
