"""A webhook's success ratio over time (`GET /webhooks/{id}/history`): its attempts counted in
equal time buckets, oldest first. Pure: the attempts and the clock come in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bridge.admin.responses import Bucket
from bridge.policy.tasks import timestamp

BUCKETS = 60


def unix_s(at: str) -> float:
    """An attempt's RFC 3339 time as Unix seconds."""
    return datetime.fromisoformat(at).timestamp()


def buckets(
    attempts: Iterable[tuple[float, bool]], now_s: float, within_s: float, count: int = BUCKETS
) -> tuple[Bucket, ...]:
    """(time, succeeded) pairs counted in `count` buckets covering the `within_s` before
    `now_s`; attempts outside that span are left out."""
    width_s = within_s / count
    start_s = now_s - within_s
    tried, succeeded = [0] * count, [0] * count
    for at_s, ok in attempts:
        index = int((at_s - start_s) // width_s)
        if 0 <= index < count:
            tried[index] += 1
            succeeded[index] += ok
    return tuple(
        Bucket(start=timestamp(start_s + i * width_s), attempts=tried[i], succeeded=succeeded[i])
        for i in range(count)
    )
