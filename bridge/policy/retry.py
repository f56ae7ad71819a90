"""How long to wait before retry n of a failed delivery: exponential back-off or Retry-After.

Pure: randomness and the clock come in as arguments, so tests pin them.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime

JITTER = 0.2
_DELTA_SECONDS = re.compile(r"[0-9]+")


def backoff_s(
    retry_number: int,
    min_wait_s: float,
    max_wait_s: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """`min(max, min * 2**(n-1))` jittered by up to ±20%, clamped to [min, max].

    Jitter spreads the retries of many deliveries that failed together (one receiver
    down) so they do not come back in lockstep.
    """
    _check_policy(retry_number, min_wait_s, max_wait_s)
    base_s = _exponential_s(retry_number, min_wait_s, max_wait_s)
    factor = 1.0 - JITTER + 2.0 * JITTER * rand()
    return _clamp(base_s * factor, min_wait_s, max_wait_s)


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date.

    None when the header is missing or unreadable, so the caller falls back to back-off;
    a date in the past gives 0.0, never a negative wait.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        # float() of digits never fails: absurdly long values become inf, capped later.
        return float(text)
    return _seconds_until_http_date(text, now_s)


def retry_delay_s(
    retry_number: int,
    min_wait_s: float,
    max_wait_s: float,
    retry_after_s: float | None,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait before retry n: Retry-After (caller passes it only for 429/503) or back-off.

    Retry-After is honoured below the minimum wait (the receiver knows best when it is
    ready) but capped at the maximum, so a receiver cannot park a delivery for days.
    """
    if retry_after_s is None:
        return backoff_s(retry_number, min_wait_s, max_wait_s, rand)
    _check_policy(retry_number, min_wait_s, max_wait_s)
    return _clamp(retry_after_s, 0.0, max_wait_s)


def _check_policy(retry_number: int, min_wait_s: float, max_wait_s: float) -> None:
    if retry_number < 1:
        raise ValueError(f"retry_number starts at 1, got {retry_number}")
    if not 0.0 <= min_wait_s <= max_wait_s:
        raise ValueError(f"need 0 <= min_wait_s <= max_wait_s, got {min_wait_s}, {max_wait_s}")


def _exponential_s(retry_number: int, min_wait_s: float, max_wait_s: float) -> float:
    try:
        # ldexp scales by 2**(n-1) without building a huge int; past the float range
        # (n above ~1024) the wait is the cap anyway.
        return min(max_wait_s, math.ldexp(min_wait_s, retry_number - 1))
    except OverflowError:
        return max_wait_s


def _seconds_until_http_date(text: str, now_s: float) -> float | None:
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:  # "-0000": UTC with no zone known, never local time
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - now_s)
    except (ValueError, TypeError, IndexError, OverflowError):  # what the stdlib raises on junk
        return None


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))
