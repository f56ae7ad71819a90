"""Per-endpoint concurrency: slots per URL and per origin, a short bounded queue, and an
overflow schedule.

Each URL has its own slots, so one hanging path cannot hold back another; the URLs of one
origin (scheme, host, port) also share a larger cap, so an event that lists many paths on
one host cannot turn into as many concurrent requests to it (fan-out amplification). An
attempt takes its URL's slot, then its origin's.

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
import functools
import time
from collections.abc import Callable
from urllib.parse import urlsplit

# A backlog for an endpoint that hangs comes back at least this often, so it drains within
# this long of the endpoint answering again (nak'd messages cannot be called back sooner).
MAX_OVERFLOW_DELAY_S = 30.0
SWEEP_INTERVAL_S = 10.0
PROMISE_S = 1.0
_INITIAL_DURATION_S = 0.1
_MIN_DURATION_S = 0.001
_EWMA_WEIGHT = 0.2


class _Origin:
    """The slots that every URL of one origin shares; `endpoints` counts the URLs kept.
    `cap` is its adaptive limit (`bridge.policy.aimd`), at most `limit`."""

    __slots__ = ("cap", "endpoints", "holders", "limit", "semaphore", "waiting")

    def __init__(self, limit: int, cap: int) -> None:
        self.semaphore = asyncio.Semaphore(limit)
        self.limit = limit
        self.cap = min(limit, cap)
        self.endpoints = 0
        self.holders = 0
        self.waiting = 0

    def free(self) -> int:
        return max(0, self.cap - self.holders - self.waiting)

    def capped(self) -> bool:
        """Its adaptive limit is reached: callers are refused, never queued past it."""
        return self.cap < self.limit and self.holders + self.waiting >= self.cap


class _Endpoint:
    __slots__ = (
        "duration_s",
        "never_released",
        "next_free_s",
        "origin",
        "promised",
        "promised_until_s",
        "released_s",
        "semaphore",
        "users",
        "waiting",
    )

    def __init__(self, limit: int, origin: _Origin, now_s: float) -> None:
        self.semaphore = asyncio.Semaphore(limit)
        self.origin = origin
        self.users = 0
        self.waiting = 0
        self.duration_s = _INITIAL_DURATION_S
        self.next_free_s = 0.0
        self.released_s = now_s
        self.never_released = True
        self.promised = 0
        self.promised_until_s = 0.0

    def estimate_s(self, now_s: float) -> float:
        """How long an attempt takes: the running average, or longer if nothing finished
        for longer than that (a hanging endpoint that has not timed out yet)."""
        return max(self.duration_s, now_s - self.released_s)

    def rescale_backlog(self, now_s: float, before_s: float) -> None:
        """Reserved service slots keep their number when the estimate changes: an endpoint
        that recovers serves a backlog scheduled at its hanging pace much sooner."""
        if self.next_free_s > now_s:
            scale = self.estimate_s(now_s) / max(before_s, _MIN_DURATION_S)
            backlog_s = (self.next_free_s - now_s) * scale
            self.next_free_s = now_s + min(backlog_s, MAX_OVERFLOW_DELAY_S)

    def busy(self, limit: int) -> bool:
        """No free slot here or at the origin, or others wait for one already:
        `semaphore.locked()` without its walk over the waiters, which a long queue makes
        costly on every call."""
        origin = self.origin
        if self.waiting or self.users - self.waiting >= limit:
            return True
        return origin.holders + origin.waiting >= origin.cap

    def holders(self) -> int:
        return self.users - self.waiting


class EndpointLimiter:
    """At most `limit` attempts in flight per endpoint URL, and `origin_limit` per origin,
    in this process. `clock` is monotonic seconds (tests pass a fake)."""

    def __init__(
        self,
        limit: int,
        max_total_waiting: int | None = None,
        origin_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._limit = limit
        self._origin_limit = origin_limit or limit
        self._max_total_waiting = max_total_waiting
        self._total_waiting = 0
        self._endpoints: dict[str, _Endpoint] = {}
        self._origins: dict[str, _Origin] = {}
        self._caps: dict[str, int] = {}  # origins under an adaptive limit
        self._next_sweep_s = 0.0

    async def acquire(
        self, url: str, *, max_waiting: int = 0, timeout_s: float | None = None
    ) -> bool:
        """Take a slot, waiting only if fewer than `max_waiting` wait for this endpoint and
        the process-wide waiting budget is not spent (many hanging endpoints must not park
        every handler), and for at most `timeout_s`; False when the caller should hand the
        work back instead."""
        self._sweep()
        endpoint = self._endpoints.get(url) or self._endpoint(url)
        if not endpoint.busy(self._limit):  # the common case: both slots free, no suspension
            endpoint.users += 1
            await endpoint.semaphore.acquire()
            await endpoint.origin.semaphore.acquire()
            endpoint.origin.holders += 1
            return True
        if endpoint.origin.capped() or not self._may_wait(endpoint, max_waiting):
            self._forget_if_idle(url, endpoint)
            return False
        return await self._wait(url, endpoint, timeout_s)

    async def _wait(self, url: str, endpoint: _Endpoint, timeout_s: float | None) -> bool:
        """Queue for both slots, for at most `timeout_s`."""
        endpoint.users += 1
        endpoint.waiting += 1
        self._total_waiting += 1
        try:
            await _take(endpoint, timeout_s)
        except TimeoutError:
            self._leave(url, endpoint)
            return False
        except asyncio.CancelledError:
            self._leave(url, endpoint)
            raise
        finally:
            endpoint.waiting -= 1
            self._total_waiting -= 1
        return True

    def _endpoint(self, url: str) -> _Endpoint:
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            endpoint = self._endpoints[url] = _Endpoint(
                self._limit, self._origin(url), self._clock()
            )
            endpoint.origin.endpoints += 1
        return endpoint

    def _origin(self, url: str) -> _Origin:
        key = origin_of(url)
        origin = self._origins.get(key)
        if origin is None:
            cap = self._caps.get(key, self._origin_limit)
            origin = self._origins[key] = _Origin(self._origin_limit, cap)
        return origin

    def cap_origin(self, origin: str, cap: int | None) -> None:
        """Limit an origin's attempts in flight to `cap` (its adaptive limit); None lifts it."""
        if cap is None:
            self._caps.pop(origin, None)
        else:
            self._caps[origin] = cap
        present = self._origins.get(origin)
        if present is not None:
            present.cap = min(present.limit, self._origin_limit if cap is None else cap)

    def inline_queue(self, url: str, max_wait_s: float) -> int:
        """How many may wait for `url` if none should wait longer than `max_wait_s`, judged
        by the endpoint's observed attempt duration: a slow endpoint gets a short queue, and
        one that finished nothing for `max_wait_s` (hanging, not yet timed out) gets none.
        One not measured yet gets a queue as long as its slots: if it hangs, no more events
        than that wait for it while its first attempts are still open."""
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            return self._limit
        if self._clock() - endpoint.released_s > max_wait_s:
            return 0
        if endpoint.never_released:
            return self._limit
        return int(max_wait_s * self._limit / max(endpoint.duration_s, _MIN_DURATION_S))

    def has_room(self, url: str, max_waiting: int) -> bool:
        """Whether `acquire(url, max_waiting=...)` would take a slot or queue, not refuse."""
        endpoint = self._endpoints.get(url)
        if endpoint is not None:
            if not endpoint.busy(self._limit):
                return True
            return not endpoint.origin.capped() and self._may_wait(endpoint, max_waiting)
        origin = self._origins.get(origin_of(url))
        if origin is None or origin.free() > 0:
            return True
        return not origin.capped() and self._may_wait(None, max_waiting)

    def room(self, url: str, max_waiting: int) -> int:
        """How many `acquire(url, max_waiting=...)` calls made now would not be refused,
        less the tasks promised to this endpoint that have not arrived yet."""
        endpoint = self._endpoints.get(url)
        if endpoint is None:
            key = origin_of(url)
            origin, cap = self._origins.get(key), self._caps.get(key, self._origin_limit)
            slots = min(self._limit, origin.free() if origin else cap)
            return slots + (0 if cap < self._origin_limit else self._queue_room(max_waiting))
        origin = endpoint.origin
        slots = min(max(0, self._limit - endpoint.holders()), origin.free())
        queue = 0 if origin.cap < origin.limit else max_waiting - endpoint.waiting
        free = slots + self._queue_room(queue)
        return max(0, free - _promised(endpoint, self._clock()))

    def _queue_room(self, max_waiting: int) -> int:
        queue = max(0, max_waiting)
        if self._max_total_waiting is None:
            return queue
        return min(queue, max(0, self._max_total_waiting - self._total_waiting))

    def promise(self, url: str, count: int) -> None:
        """`count` tasks for `url` were just queued to run soon: count them against its room
        until they arrive (`redeem`), for PROMISE_S at most (another replica may take them)."""
        now_s = self._clock()
        endpoint = self._endpoint(url)
        endpoint.promised = _promised(endpoint, now_s) + count
        endpoint.promised_until_s = now_s + PROMISE_S

    def redeem(self, url: str) -> None:
        """A task for `url` arrived: one promise fewer."""
        endpoint = self._endpoints.get(url)
        if endpoint is not None and endpoint.promised:
            endpoint.promised -= 1

    def _may_wait(self, endpoint: _Endpoint | None, max_waiting: int) -> bool:
        cap = self._max_total_waiting
        budget_left = cap is None or self._total_waiting < cap
        return (endpoint.waiting if endpoint else 0) < max_waiting and budget_left

    def release(self, url: str, duration_s: float | None = None) -> None:
        endpoint, now_s = self._endpoints[url], self._clock()
        before_s = endpoint.estimate_s(now_s)
        if duration_s is not None:
            endpoint.duration_s += _EWMA_WEIGHT * (duration_s - endpoint.duration_s)
        endpoint.origin.holders -= 1
        endpoint.origin.semaphore.release()
        endpoint.semaphore.release()
        endpoint.released_s = now_s
        endpoint.never_released = False
        endpoint.rescale_backlog(now_s, before_s)
        self._leave(url, endpoint)

    def overflow_delay_s(self, url: str, now_s: float | None = None, count: int = 1) -> float:
        """Reserve the next `count` virtual service slots of a saturated endpoint; seconds
        until the first of them."""
        now_s = self._clock() if now_s is None else now_s
        endpoint = self._endpoint(url)
        interval_s = endpoint.estimate_s(now_s) / self._limit
        horizon_s = now_s + MAX_OVERFLOW_DELAY_S
        first_s = min(max(now_s, endpoint.next_free_s) + interval_s, horizon_s)
        endpoint.next_free_s = min(first_s + interval_s * (count - 1), horizon_s)
        return min(MAX_OVERFLOW_DELAY_S, max(interval_s, first_s - now_s))

    def in_use(self, url: str) -> int:
        endpoint = self._endpoints.get(url)
        return endpoint.holders() if endpoint else 0

    def origin_in_use(self, url: str) -> int:
        origin = self._origins.get(origin_of(url))
        return origin.holders if origin else 0

    def _leave(self, url: str, endpoint: _Endpoint) -> None:
        endpoint.users -= 1
        self._forget_if_idle(url, endpoint)

    def _forget_if_idle(self, url: str, endpoint: _Endpoint) -> None:
        now_s = self._clock()
        if endpoint.users == 0 and max(endpoint.next_free_s, endpoint.promised_until_s) <= now_s:
            del self._endpoints[url]
            endpoint.origin.endpoints -= 1
            if not endpoint.origin.endpoints:
                del self._origins[origin_of(url)]

    def _sweep(self) -> None:
        """Drop idle endpoints now and then: per-job URLs may never come back."""
        now_s = self._clock()
        if now_s < self._next_sweep_s:
            return
        self._next_sweep_s = now_s + SWEEP_INTERVAL_S
        for url, endpoint in list(self._endpoints.items()):
            self._forget_if_idle(url, endpoint)


def _promised(endpoint: _Endpoint, now_s: float) -> int:
    return endpoint.promised if now_s < endpoint.promised_until_s else 0


async def _take(endpoint: _Endpoint, timeout_s: float | None) -> None:
    """Both slots; TimeoutError after `timeout_s` with neither held."""
    if timeout_s is None:
        await _take_both(endpoint)
        return
    async with asyncio.timeout(timeout_s):
        await _take_both(endpoint)


async def _take_both(endpoint: _Endpoint) -> None:
    """The URL's slot, then the origin's (always in that order: no cycle of waits)."""
    await endpoint.semaphore.acquire()
    origin = endpoint.origin
    origin.waiting += 1
    try:
        await origin.semaphore.acquire()
    except BaseException:
        endpoint.semaphore.release()
        raise
    finally:
        origin.waiting -= 1
    origin.holders += 1


@functools.lru_cache(maxsize=4096)
def origin_of(url: str) -> str:
    """`scheme://host:port`, the default port spelled out, so that the spellings of one
    origin share its slots; a URL too malformed to split is its own origin."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return url
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"
