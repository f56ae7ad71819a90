"""Per-endpoint concurrency: slots per URL, a short bounded queue, and an overflow schedule.

A delivery that finds its endpoint saturated either waits in a queue of bounded length (task
consumer) or does not wait at all (events consumer, which defers it as a task). A task that
finds the queue full is handed back to JetStream with a delay from `overflow_delay_s`: a
virtual clock per endpoint spaces such tasks at the endpoint's observed service rate, so a
backlog for a slow or dead receiver comes back about when it can be served instead of
churning through the consumer; never more than MAX_OVERFLOW_DELAY_S ahead, so a backlog
drains soon after its endpoint recovers.
"""

from __future__ import annotations

import asyncio
import time

# A backlog for an endpoint that hangs comes back at least this often, so it drains within
# this long of the endpoint answering again (nak'd messages cannot be called back sooner).
MAX_OVERFLOW_DELAY_S = 30.0
SWEEP_INTERVAL_S = 10.0
_INITIAL_DURATION_S = 0.1
_MIN_DURATION_S = 0.001
_EWMA_WEIGHT = 0.2


class _Endpoint:
    __slots__ = (
        "duration_s",
        "never_released",
        "next_free_s",
        "released_s",
        "semaphore",
        "users",
        "waiting",
    )

    def __init__(self, limit: int) -> None:
        self.semaphore = asyncio.Semaphore(limit)
        self.users = 0
        self.waiting = 0
        self.duration_s = _INITIAL_DURATION_S
        self.next_free_s = 0.0
        self.released_s = time.monotonic()
        self.never_released = True


class EndpointLimiter:
    """At most `limit` attempts in flight per endpoint URL in this process."""

    def __init__(self, limit: int, max_total_waiting: int | None = None) -> None:
        self._limit = limit
        self._max_total_waiting = max_total_waiting
        self._total_waiting = 0
        self._endpoints: dict[str, _Endpoint] = {}
        self._next_sweep_s = 0.0

    async def acquire(
        self, url: str, *, max_waiting: int = 0, timeout_s: float | None = None
    ) -> bool:
        """Take a slot, waiting only if fewer than `max_waiting` wait for this endpoint and
        the process-wide waiting budget is not spent (many hanging endpoints must not park
        every handler), and for at most `timeout_s`; False when the caller should hand the
        work back instead."""
        self._sweep()
        endpoint = self._endpoints.get(url) or self._endpoints.setdefault(
            url, _Endpoint(self._limit)
        )
        busy = endpoint.semaphore.locked()
        if busy and not self._may_wait(endpoint, max_waiting):
            self._forget_if_idle(url, endpoint)
            return False
        endpoint.users += 1
        endpoint.waiting += busy
        self._total_waiting += busy
        try:
            await _take(endpoint.semaphore, timeout_s if busy else None)
        except TimeoutError:
            self._leave(url, endpoint)
            return False
        except asyncio.CancelledError:
            self._leave(url, endpoint)
            raise
        finally:
            endpoint.waiting -= busy
            self._total_waiting -= busy
        return True

    def inline_queue(self, url: str, max_wait_s: float) -> int:
        """How many may wait for `url` if none should wait longer than `max_wait_s`, judged
        by the endpoint's observed attempt duration: a slow endpoint gets a short queue, and
        one that finished nothing for `max_wait_s` (hanging, not yet timed out) gets none.
        One not measured yet gets a queue as long as its slots: if it hangs, no more events
        than that wait for it while its first attempts are still open."""
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            return self._limit
        if time.monotonic() - endpoint.released_s > max_wait_s:
            return 0
        if endpoint.never_released:
            return self._limit
        return int(max_wait_s * self._limit / max(endpoint.duration_s, _MIN_DURATION_S))

    def _may_wait(self, endpoint: _Endpoint, max_waiting: int) -> bool:
        cap = self._max_total_waiting
        budget_left = cap is None or self._total_waiting < cap
        return endpoint.waiting < max_waiting and budget_left

    def release(self, url: str, duration_s: float | None = None) -> None:
        endpoint = self._endpoints[url]
        if duration_s is not None:
            endpoint.duration_s += _EWMA_WEIGHT * (duration_s - endpoint.duration_s)
        endpoint.semaphore.release()
        endpoint.released_s = time.monotonic()
        endpoint.never_released = False
        self._leave(url, endpoint)

    def overflow_delay_s(self, url: str, now_s: float | None = None) -> float:
        """Reserve the next virtual service slot of a saturated endpoint; seconds until it."""
        now_s = time.monotonic() if now_s is None else now_s
        endpoint = self._endpoints.setdefault(url, _Endpoint(self._limit))
        interval_s = endpoint.duration_s / self._limit
        next_free_s = max(now_s, endpoint.next_free_s) + interval_s
        endpoint.next_free_s = min(next_free_s, now_s + MAX_OVERFLOW_DELAY_S)
        return min(MAX_OVERFLOW_DELAY_S, max(interval_s, endpoint.next_free_s - now_s))

    def in_use(self, url: str) -> int:
        endpoint = self._endpoints.get(url)
        return endpoint.users - endpoint.waiting if endpoint else 0

    def _leave(self, url: str, endpoint: _Endpoint) -> None:
        endpoint.users -= 1
        self._forget_if_idle(url, endpoint)

    def _forget_if_idle(self, url: str, endpoint: _Endpoint) -> None:
        if endpoint.users == 0 and endpoint.next_free_s <= time.monotonic():
            del self._endpoints[url]

    def _sweep(self) -> None:
        """Drop idle endpoints now and then: per-job URLs may never come back."""
        now_s = time.monotonic()
        if now_s < self._next_sweep_s:
            return
        self._next_sweep_s = now_s + SWEEP_INTERVAL_S
        for url, endpoint in list(self._endpoints.items()):
            self._forget_if_idle(url, endpoint)


async def _take(semaphore: asyncio.Semaphore, timeout_s: float | None) -> None:
    """Acquire, raising TimeoutError after `timeout_s` (no timer when None: the common case)."""
    if timeout_s is None:
        await semaphore.acquire()
        return
    async with asyncio.timeout(timeout_s):
        await semaphore.acquire()
