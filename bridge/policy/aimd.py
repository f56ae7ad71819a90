"""Adaptive concurrency of one endpoint (SPEC §11), pure: additive increase, multiplicative
decrease (AIMD, as TCP does it).

The limit grows by one per round (a round: as many successes as the limit) while attempts
succeed at about their usual latency, and halves on a failure or when an attempt takes much
longer than usual, at most once per round, so the attempts already in flight when trouble
starts cut it once, not once each. It never leaves [1, ceiling]. An endpoint that comes back
starts at one attempt in flight and is refilled as it keeps up, not hit with its backlog.
"""

from __future__ import annotations

LATENCY_RISE = 2.0  # an attempt this many times slower than usual is congestion...
LATENCY_SLACK_S = 0.05  # ...and at least this much slower (fast endpoints jitter)
BASELINE_WEIGHT = 0.1
DECREASE = 0.5


class Aimd:
    """The in-flight limit of one endpoint; `limit` is what the slots enforce."""

    __slots__ = ("_baseline_s", "_ceiling", "_limit", "_since_cut")

    def __init__(self, ceiling: int, start: float = 1.0) -> None:
        self._ceiling = ceiling
        self._limit = max(1.0, min(float(ceiling), start))
        self._baseline_s: float | None = None
        self._since_cut = ceiling  # the first trouble cuts at once

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def full(self) -> bool:
        """At the ceiling: the endpoint takes all it may."""
        return self._limit >= self._ceiling

    def succeeded(self, duration_s: float) -> None:
        self._since_cut += 1
        baseline_s = self._baseline_s
        self._baseline_s = (
            duration_s
            if baseline_s is None
            else baseline_s + BASELINE_WEIGHT * (duration_s - baseline_s)
        )
        if baseline_s is not None and _congested(duration_s, baseline_s):
            self._cut()
        else:
            self._limit = min(float(self._ceiling), self._limit + 1.0 / self._limit)

    def failed(self) -> None:
        self._since_cut += 1
        self._cut()

    def _cut(self) -> None:
        if self._since_cut < self._limit:
            return  # cut once per round
        self._limit = max(1.0, self._limit * DECREASE)
        self._since_cut = 0


def _congested(duration_s: float, baseline_s: float) -> bool:
    return duration_s > baseline_s * LATENCY_RISE and duration_s > baseline_s + LATENCY_SLACK_S
