"""Per-endpoint slots, the bounded wait queue, overflow spacing and forgetting idle endpoints."""

from __future__ import annotations

import asyncio
import random

import pytest
from harness.clock import FakeClock

from bridge.delivery import slots
from bridge.delivery.slots import MAX_OVERFLOW_DELAY_S, EndpointLimiter

URL = "https://hooks.example.com/h"
OTHER = "https://other.example.com/h"


async def let_waiters_run() -> None:
    """Yield to the loop (no timed wait) so started tasks reach their first await."""
    for _ in range(5):
        await asyncio.sleep(0)


async def fill(limiter: EndpointLimiter, url: str, count: int) -> None:
    for _ in range(count):
        assert await limiter.acquire(url)


@pytest.mark.parametrize("limit", [1, 2, 16])
async def test_saturated_endpoint_refuses_without_waiting(limit: int) -> None:
    limiter = EndpointLimiter(limit)
    await fill(limiter, URL, limit)
    assert limiter.in_use(URL) == limit
    assert not await limiter.acquire(URL)
    assert not await limiter.acquire(URL, max_waiting=0)
    assert await limiter.acquire(OTHER)  # endpoints are independent
    limiter.release(URL)
    assert await limiter.acquire(URL)


async def test_waiter_gets_the_slot_on_release() -> None:
    limiter = EndpointLimiter(1)
    await fill(limiter, URL, 1)
    waiter = asyncio.create_task(limiter.acquire(URL, max_waiting=1))
    await let_waiters_run()
    assert not waiter.done()
    assert limiter.in_use(URL) == 1
    limiter.release(URL)
    assert await waiter
    assert limiter.in_use(URL) == 1


@pytest.mark.parametrize(("limit", "max_waiting"), [(1, 1), (1, 3), (2, 2)])
async def test_waiters_are_bounded(limit: int, max_waiting: int) -> None:
    limiter = EndpointLimiter(limit)
    await fill(limiter, URL, limit)
    waiters = [
        asyncio.create_task(limiter.acquire(URL, max_waiting=max_waiting))
        for _ in range(max_waiting)
    ]
    await let_waiters_run()
    assert not any(w.done() for w in waiters)
    assert not await limiter.acquire(URL, max_waiting=max_waiting)
    for _ in waiters:
        limiter.release(URL)
    assert all(await asyncio.gather(*waiters))
    assert limiter.in_use(URL) == limit


async def test_cancelled_waiter_leaves_the_queue() -> None:
    limiter = EndpointLimiter(1)
    await fill(limiter, URL, 1)
    waiter = asyncio.create_task(limiter.acquire(URL, max_waiting=1))
    await let_waiters_run()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    second = asyncio.create_task(limiter.acquire(URL, max_waiting=1))
    await let_waiters_run()
    assert not second.done()  # the cancelled waiter's place is free again
    limiter.release(URL)
    assert await second
    limiter.release(URL)
    assert limiter._endpoints == {}


# Initial duration estimate 0.1s: each call reserves the next slot 0.1/limit later.
@pytest.mark.parametrize(
    ("limit", "calls", "delays_s"),
    [
        (1, 3, [0.1, 0.2, 0.3]),
        (2, 3, [0.05, 0.1, 0.15]),
        (4, 4, [0.025, 0.05, 0.075, 0.1]),
    ],
)
def test_overflow_delay_spacing(limit: int, calls: int, delays_s: list[float]) -> None:
    limiter = EndpointLimiter(limit)
    got = [limiter.overflow_delay_s(URL, now_s=50.0) for _ in range(calls)]
    assert got == pytest.approx(delays_s)
    assert limiter.overflow_delay_s(OTHER, now_s=50.0) == pytest.approx(0.1 / limit)


@pytest.mark.parametrize(
    ("elapsed_s", "delay_s"),
    [(0.0, 0.3), (0.05, 0.25), (0.2, 0.1), (5.0, 0.1)],  # the schedule never lags behind now
)
def test_overflow_delay_follows_the_clock(elapsed_s: float, delay_s: float) -> None:
    limiter = EndpointLimiter(1)
    limiter.overflow_delay_s(URL, now_s=50.0)
    limiter.overflow_delay_s(URL, now_s=50.0)
    assert limiter.overflow_delay_s(URL, now_s=50.0 + elapsed_s) == pytest.approx(delay_s)


def test_the_overflow_clock_never_runs_further_ahead_than_the_cap() -> None:
    """A long hang must not push hand-backs far beyond the cap once the endpoint recovers."""
    limiter = EndpointLimiter(1)
    for _ in range(4000):
        limiter.overflow_delay_s(URL, now_s=50.0)
    assert limiter._endpoints[URL].next_free_s == 50.0 + MAX_OVERFLOW_DELAY_S
    assert limiter.overflow_delay_s(URL, now_s=50.0 + MAX_OVERFLOW_DELAY_S) == pytest.approx(0.1)


def test_overflow_delay_is_capped() -> None:
    limiter = EndpointLimiter(1)
    delays = [limiter.overflow_delay_s(URL, now_s=50.0) for _ in range(4000)]
    assert max(delays) == MAX_OVERFLOW_DELAY_S
    assert delays[-1] == MAX_OVERFLOW_DELAY_S
    assert delays == sorted(delays)


# EWMA with weight 0.2 from 0.1s; limit 2, so the spacing is half the estimate.
@pytest.mark.parametrize(
    ("durations_s", "interval_s"),
    [
        ([], 0.05),
        ([None], 0.05),
        ([0.1], 0.05),
        ([10.0], 1.04),
        ([10.0, 10.0], 1.832),
        ([0.0], 0.04),
        ([100.0], 10.04),
    ],
)
async def test_release_updates_the_duration_estimate(
    clock: FakeClock, durations_s: list[float | None], interval_s: float
) -> None:
    limiter = EndpointLimiter(2, clock=clock)
    await fill(limiter, URL, 1)  # keeps the endpoint busy, so its state is kept
    for duration_s in durations_s:
        await fill(limiter, URL, 1)
        limiter.release(URL, duration_s)
    assert limiter.overflow_delay_s(URL, now_s=clock()) == pytest.approx(interval_s)


async def test_slow_endpoint_hits_the_cap(clock: FakeClock) -> None:
    limiter = EndpointLimiter(2, clock=clock)
    await fill(limiter, URL, 2)
    await fill(limiter, OTHER, 2)
    limiter.release(OTHER, 10_000.0)
    assert limiter.overflow_delay_s(OTHER, now_s=clock()) == MAX_OVERFLOW_DELAY_S
    assert limiter.overflow_delay_s(URL, now_s=clock()) == pytest.approx(0.05)


async def test_idle_endpoint_is_forgotten(clock: FakeClock) -> None:
    limiter = EndpointLimiter(2, clock=clock)
    await fill(limiter, URL, 2)
    await fill(limiter, OTHER, 1)
    assert not await limiter.acquire(URL)
    limiter.release(URL, 0.5)
    limiter.release(URL, 0.5)
    limiter.release(OTHER, 0.5)
    assert limiter._endpoints == {}
    assert limiter.in_use(URL) == 0


async def test_overflowed_endpoint_is_forgotten_once_its_slot_has_passed(clock: FakeClock) -> None:
    limiter = EndpointLimiter(1, clock=clock)
    await fill(limiter, URL, 1)
    delay_s = limiter.overflow_delay_s(URL, now_s=clock())
    limiter.release(URL)
    assert URL in limiter._endpoints  # the reserved slot is still ahead
    clock.now_s += delay_s + 1
    await fill(limiter, URL, 1)
    limiter.release(URL)
    assert limiter._endpoints == {}


async def test_overflowed_endpoints_do_not_pile_up(clock: FakeClock) -> None:
    limiter = EndpointLimiter(1, clock=clock)
    for i in range(100):
        url = f"https://job-{i}.example.com/h"
        await fill(limiter, url, 1)
        limiter.overflow_delay_s(url, now_s=clock())
        limiter.release(url)  # the overflowed task went to another replica
    clock.now_s += MAX_OVERFLOW_DELAY_S + 1
    await fill(limiter, OTHER, 1)
    limiter.release(OTHER)
    assert len(limiter._endpoints) < 100


async def test_process_wide_waiting_budget() -> None:
    limiter = EndpointLimiter(1, max_total_waiting=2)
    urls = [f"https://hang-{i}.example/h" for i in range(3)]
    for url in urls:
        await fill(limiter, url, 1)
    waiters = [asyncio.create_task(limiter.acquire(url, max_waiting=5)) for url in urls[:2]]
    await asyncio.sleep(0)  # let both reach their wait
    # a third endpoint may not park a handler: the budget of two waiters is spent
    assert await limiter.acquire(urls[2], max_waiting=5) is False
    for url in urls[:2]:
        limiter.release(url)
    assert all(await asyncio.gather(*waiters))


@pytest.mark.parametrize(
    ("limit", "durations_s", "max_wait_s", "queue"),
    [
        (16, [], 0.25, 16),  # unknown endpoint: as many as its slots
        (16, [0.005], 0.25, 49),  # one fast attempt moves the estimate a fifth of the way
        (16, [0.005] * 30, 0.25, 781),
        (16, [15.0], 0.25, 1),  # a timeout: hardly any queue
        (16, [15.0] * 5, 0.25, 0),
        (2, [0.0] * 60, 0.25, 500),  # instant answers: capped at 1 ms per attempt
    ],
)
async def test_inline_queue_follows_the_observed_duration(
    limit: int, durations_s: list[float], max_wait_s: float, queue: int
) -> None:
    limiter = EndpointLimiter(limit)
    if durations_s:
        await fill(limiter, URL, 1)  # keeps the endpoint busy, so its state is kept
    for duration_s in durations_s:
        await fill(limiter, URL, 1)
        limiter.release(URL, duration_s)
    assert limiter.inline_queue(URL, max_wait_s) == queue


async def test_waiting_gives_up_after_the_timeout() -> None:
    limiter = EndpointLimiter(1)
    await fill(limiter, URL, 1)
    assert not await limiter.acquire(URL, max_waiting=1, timeout_s=0.01)
    assert limiter.in_use(URL) == 1  # the slot holder only; the waiter left
    limiter.release(URL)
    assert await limiter.acquire(URL, max_waiting=1, timeout_s=0.01)  # free: no wait at all


async def test_endpoint_that_finishes_nothing_gets_no_queue(clock: FakeClock) -> None:
    limiter = EndpointLimiter(2, clock=clock)
    await fill(limiter, URL, 2)  # two attempts that hang
    assert limiter.inline_queue(URL, 0.25) == 2  # just started, unmeasured: as many as slots
    clock.now_s += 0.3
    assert limiter.inline_queue(URL, 0.25) == 0  # nothing finished for longer than the wait
    limiter.release(URL, 0.1)
    assert limiter.inline_queue(URL, 0.25) == 5  # answering again


def test_overflow_delay_of_a_batch_reserves_a_slot_per_task() -> None:
    limiter = EndpointLimiter(2)  # 0.1 s estimate: a slot every 0.05 s
    assert limiter.overflow_delay_s(URL, now_s=50.0, count=4) == pytest.approx(0.05)
    assert limiter.overflow_delay_s(URL, now_s=50.0) == pytest.approx(0.25)


@pytest.mark.parametrize(("silent_s", "interval_s"), [(0.0, 0.05), (0.05, 0.05), (6.0, 3.0)])
async def test_an_endpoint_silent_for_a_while_is_spaced_by_that_while(
    clock: FakeClock, silent_s: float, interval_s: float
) -> None:
    """A hanging endpoint has not timed out yet: its attempts already took `silent_s`."""
    limiter = EndpointLimiter(2, clock=clock)
    await fill(limiter, URL, 2)
    clock.now_s += silent_s
    assert limiter.overflow_delay_s(URL, now_s=clock()) == pytest.approx(interval_s)


@pytest.mark.parametrize(
    ("holders", "waiters", "max_waiting", "total_cap", "room"),
    [
        (0, 0, 0, None, 4),
        (2, 0, 0, None, 2),
        (4, 0, 3, None, 3),
        (4, 2, 3, None, 1),
        (4, 3, 3, None, 0),
        (4, 2, 1, None, 0),  # more wait already than a caller with this queue would join
        (4, 1, 3, 2, 1),  # the process-wide waiting budget is the tighter bound
        (4, 2, 3, 2, 0),
    ],
)
async def test_room_counts_the_acquires_that_would_not_be_refused(
    holders: int, waiters: int, max_waiting: int, total_cap: int | None, room: int
) -> None:
    limiter = EndpointLimiter(4, max_total_waiting=total_cap)
    await fill(limiter, URL, holders)
    waiting = [asyncio.create_task(limiter.acquire(URL, max_waiting=99)) for _ in range(waiters)]
    await let_waiters_run()
    assert limiter.room(URL, max_waiting) == room
    assert limiter.has_room(URL, max_waiting) == (room > 0)
    taken = [
        asyncio.create_task(limiter.acquire(URL, max_waiting=max_waiting)) for _ in range(room)
    ]
    await let_waiters_run()
    assert not any(task.done() and not task.result() for task in taken)
    assert await limiter.acquire(URL, max_waiting=max_waiting) is False  # one more is refused
    for task in waiting + taken:
        task.cancel()


@pytest.mark.parametrize("seed", range(20))
async def test_busy_agrees_with_the_semaphore(seed: int) -> None:
    """`busy` is `Semaphore.locked()` from the limiter's own counts, at every quiet point."""
    rng = random.Random(seed)
    limiter = EndpointLimiter(3)
    held = 0
    waiters: list[asyncio.Task[bool]] = []
    for _ in range(60):
        action = rng.choice(["acquire", "acquire", "release", "timeout", "cancel"])
        if action == "acquire":
            waiters.append(asyncio.create_task(limiter.acquire(URL, max_waiting=4)))
        elif action == "timeout":
            waiters.append(asyncio.create_task(limiter.acquire(URL, max_waiting=4, timeout_s=0)))
        elif action == "cancel" and waiters:
            waiters.pop(rng.randrange(len(waiters))).cancel()
        elif action == "release" and held:
            limiter.release(URL)
        await let_waiters_run()
        held = limiter.in_use(URL)
        endpoint = limiter._endpoints.get(URL)
        if endpoint is not None:
            assert endpoint.busy(3) == endpoint.semaphore.locked()
    for task in waiters:
        task.cancel()


@pytest.mark.parametrize(
    ("silent_s", "duration_s", "backlog_s"),
    [
        (6.0, 0.1, 0.2),  # 4 slots reserved at the hanging pace (12 s), served at 0.05 s each
        (0.0, 0.1, 0.2),  # same estimate: the reservation stands
        (0.0, 0.0, 0.16),  # answered in no time: the average falls to 0.08 s
    ],
)
async def test_a_release_rescales_the_reserved_backlog_to_the_new_estimate(
    clock: FakeClock, silent_s: float, duration_s: float, backlog_s: float
) -> None:
    limiter = EndpointLimiter(2, clock=clock)
    await fill(limiter, URL, 2)
    clock.now_s += silent_s
    for _ in range(4):
        limiter.overflow_delay_s(URL, now_s=clock())
    limiter.release(URL, duration_s)
    assert limiter._endpoints[URL].next_free_s - clock() == pytest.approx(backlog_s)


async def test_rescaling_from_a_zero_estimate_does_not_divide_by_zero(clock: FakeClock) -> None:
    limiter = EndpointLimiter(2, clock=clock)
    await fill(limiter, URL, 2)
    limiter.overflow_delay_s(URL, now_s=clock())
    limiter._endpoints[URL].duration_s = 0.0
    limiter.release(URL, 0.0)
    assert limiter._endpoints[URL].next_free_s == clock()  # nothing left reserved ahead


# --- per origin: the URLs of one host share a cap (fan-out amplification) ---

ORIGIN_URLS = [f"https://victim.example/{i}" for i in range(6)]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://h.example/a", "https://h.example/b?q=1", True),
        ("https://H.Example/a", "https://h.example:443/b", True),
        ("http://h.example/a", "http://h.example:80/b", True),
        ("https://u:p@h.example/a", "https://h.example/b", True),
        ("http://h.example/a", "https://h.example/a", False),
        ("https://h.example:8443/a", "https://h.example/a", False),
        ("https://a.h.example/a", "https://h.example/a", False),
        ("https://[::1]:8080/a", "https://[::1]:8080/b", True),
    ],
)
def test_origin_of(a: str, b: str, same: bool) -> None:
    assert (slots.origin_of(a) == slots.origin_of(b)) is same


async def test_urls_of_one_origin_share_its_cap() -> None:
    limiter = EndpointLimiter(4, origin_limit=6)
    await fill(limiter, ORIGIN_URLS[0], 4)
    await fill(limiter, ORIGIN_URLS[1], 2)
    assert limiter.origin_in_use(ORIGIN_URLS[5]) == 6
    assert not limiter.has_room(ORIGIN_URLS[2], 0)
    assert limiter.room(ORIGIN_URLS[2], 0) == 0
    assert not await limiter.acquire(ORIGIN_URLS[2])  # its own slots are free, the origin's not
    assert await limiter.acquire(OTHER)  # another origin is untouched
    limiter.release(ORIGIN_URLS[0])
    assert limiter.room(ORIGIN_URLS[2], 0) == 1
    assert await limiter.acquire(ORIGIN_URLS[2])


async def test_a_waiter_for_the_origin_gets_a_slot_another_url_releases() -> None:
    limiter = EndpointLimiter(2, origin_limit=2)
    await fill(limiter, ORIGIN_URLS[0], 2)
    waiter = asyncio.create_task(limiter.acquire(ORIGIN_URLS[1], max_waiting=1))
    await let_waiters_run()
    assert not waiter.done()
    limiter.release(ORIGIN_URLS[0])
    assert await waiter
    assert limiter.origin_in_use(ORIGIN_URLS[0]) == 2


async def test_giving_up_on_the_origin_frees_the_url_slot() -> None:
    limiter = EndpointLimiter(2, origin_limit=1)
    await fill(limiter, ORIGIN_URLS[0], 1)
    assert not await limiter.acquire(ORIGIN_URLS[1], max_waiting=1, timeout_s=0.01)
    cancelled = asyncio.create_task(limiter.acquire(ORIGIN_URLS[1], max_waiting=1))
    await let_waiters_run()
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert limiter.in_use(ORIGIN_URLS[1]) == 0
    limiter.release(ORIGIN_URLS[0])
    await fill(limiter, ORIGIN_URLS[1], 1)


async def test_fan_out_to_many_paths_never_exceeds_the_origin_cap() -> None:
    """1,000 distinct paths on one host, all wanting a slot at once."""
    limiter = EndpointLimiter(16, origin_limit=64)
    urls = [f"https://victim.example/{i}" for i in range(1000)]
    peak = 0

    async def attempt(url: str) -> None:
        nonlocal peak
        assert await limiter.acquire(url, max_waiting=1)
        peak = max(peak, limiter.origin_in_use(url))
        await asyncio.sleep(0)
        limiter.release(url)

    await asyncio.gather(*(attempt(url) for url in urls))
    assert peak == 64
    assert limiter._endpoints == {}
    assert limiter._origins == {}  # forgotten with the last of its URLs


async def test_an_origin_capped_by_its_adaptive_limit_refuses_past_it() -> None:
    """The cap is enforced by refusal, not by a queue: a capped origin's overflow is handed
    back (and has no room), whatever the URL's own slots say; lifting it restores the rest."""
    limiter = EndpointLimiter(4)
    limiter.cap_origin("http://a:80", 2)
    assert await limiter.acquire("http://a/1", max_waiting=10)
    assert await limiter.acquire("http://a/2", max_waiting=10)
    assert not await limiter.acquire("http://a/1", max_waiting=10)
    assert not limiter.has_room("http://a/3", 10)
    assert limiter.room("http://a/1", 10) == 0
    limiter.cap_origin("http://a:80", None)
    assert await limiter.acquire("http://a/1", max_waiting=10)
    assert limiter.origin_in_use("http://a/1") == 3
