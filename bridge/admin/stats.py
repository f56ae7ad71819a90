"""The overview of `GET /stats` (the console's first page), from this replica's own counters.

Rates are differences of the Prometheus counters between now and a baseline: the newest
reading at least `WINDOW_S` old, else the oldest kept (at worst the app's start, when every
counter was zero). Each call to `Overview.read` keeps its reading, and readings older than the
baseline are dropped, so memory stays bounded however often the console polls. The counters
are read with the collectors' public `collect()`, off the delivery path.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

import msgspec
from prometheus_client.metrics import MetricWrapperBase

from bridge.admin.responses import Stats
from bridge.observability.metrics import Metrics
from bridge.policy.tasks import timestamp

WINDOW_S = 10.0


class Reading(msgspec.Struct, frozen=True):
    """The counters that rates are made of, at `at_s` (Unix seconds)."""

    at_s: float
    delivered: float
    dead_lettered: float
    attempts: float
    succeeded: float


def total(metric: MetricWrapperBase, **labels: str) -> float:
    """The sum of a metric's samples (counters: their `_total`) whose labels match."""
    return sum(
        sample.value
        for family in metric.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
        and all(sample.labels.get(key) == value for key, value in labels.items())
    )


def reading(metrics: Metrics, now_s: float) -> Reading:
    return Reading(
        at_s=now_s,
        delivered=total(metrics.deliveries, result="delivered"),
        dead_lettered=total(metrics.deliveries, result="dead_lettered"),
        attempts=total(metrics.attempts),
        succeeded=total(metrics.attempts, outcome="success"),
    )


def baseline(kept: Iterable[Reading], now_s: float, window_s: float) -> Reading:
    """The newest reading at least `window_s` before `now_s`, else the oldest one."""
    ordered = list(kept)
    old_enough = [r for r in ordered if now_s - r.at_s >= window_s]
    return old_enough[-1] if old_enough else ordered[0]


def rates(old: Reading, new: Reading) -> tuple[float, float, float, float | None]:
    """Deliveries, attempts and dead letters per second between two readings, and the share
    of attempts that succeeded (None: no attempt between them)."""
    elapsed_s = max(new.at_s - old.at_s, 1e-9)
    attempts = new.attempts - old.attempts
    ratio = (new.succeeded - old.succeeded) / attempts if attempts > 0 else None
    return (
        (new.delivered - old.delivered) / elapsed_s,
        attempts / elapsed_s,
        (new.dead_lettered - old.dead_lettered) / elapsed_s,
        ratio,
    )


class Overview:
    """Readings kept between calls; `read` answers `GET /stats`."""

    def __init__(self, metrics: Metrics, started_s: float, window_s: float = WINDOW_S) -> None:
        self._metrics = metrics
        self._window_s = window_s
        start = Reading(at_s=started_s, delivered=0, dead_lettered=0, attempts=0, succeeded=0)
        self._kept: collections.deque[Reading] = collections.deque([start])

    def read(self, now_s: float, dead_letters: int) -> Stats:
        new = reading(self._metrics, now_s)
        old = baseline(self._kept, now_s, self._window_s)
        while self._kept[0] is not old:
            self._kept.popleft()
        self._kept.append(new)
        delivered, attempts, dead_lettered, ratio = rates(old, new)
        return Stats(
            at=timestamp(now_s),
            window_s=round(now_s - old.at_s, 3),
            deliveries_per_s=round(delivered, 3),
            attempts_per_s=round(attempts, 3),
            dead_lettered_per_s=round(dead_lettered, 3),
            success_ratio=None if ratio is None else round(ratio, 4),
            lag=int(total(self._metrics.consumer_pending)),
            oldest_pending_s=total(self._metrics.oldest_pending_age),
            retries_pending=int(total(self._metrics.retries_pending)),
            inflight=self._metrics.inflight,
            dead_letters=dead_letters,
        )
