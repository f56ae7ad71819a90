"""The fetch loops: one per pull subscription, running a handler per message as a task.

A handler returns its decision (`bridge.policy.decisions`): ack, nak with a delay, or
terminate; `carry_out` here is the one place a decision reaches the NATS message. A handler
that raises is handed to its failure handler, whose decision is carried out the same way.
The loop keeps held messages alive (`in_progress`) and, at shutdown, hands back what is left.

A handler that has run for STALLED_S waits on something slow (an attempt to an endpoint that
hangs until its timeout): it stops counting against the loop's capacity, for as many handlers
again at most. An endpoint that hangs so holds its own attempts, not the loop: the events for
every other endpoint keep flowing at full pace until its breaker opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bridge.jetstream.bus import BusError, fetch, stragglers
from bridge.jetstream.failures import hand_back
from bridge.observability.logs import log
from bridge.policy.decisions import Ack, Decision, Nak

Handler = Callable[[Msg], Awaitable[Decision]]
FailureHandler = Callable[[Msg, Exception], Awaitable[Decision]]
FETCH_TIMEOUT_S = 1.0
MAX_BATCH = 128
ERROR_PAUSE_S = 1.0
STRAGGLER_MARGIN_S = 0.2
CANCEL_GRACE_S = 2.0
REFILL_FRACTION = 4  # a full loop fetches again once a quarter of its capacity is free
STALLED_S = 0.5  # longer than a first attempt waits for a slot (handlers.INLINE_WAIT_S)
MIN_WAIT_S = 0.01


class ConsumerLoop:
    """One fetch loop over a pull subscription; handlers run as tasks, at most `capacity`."""

    def __init__(
        self,
        name: str,
        sub: JetStreamContext.PullSubscription,
        handle: Handler,
        capacity: int,
        on_failure: FailureHandler | None = None,
    ) -> None:
        self.name = name
        self._sub = sub
        self._handle = handle
        self._on_failure = on_failure or hand_back
        self._capacity = capacity
        self._refill = max(1, capacity // REFILL_FRACTION)
        self._running: dict[asyncio.Task[None], tuple[Msg, float]] = {}
        self._room = asyncio.Event()
        self._last_fetch_s = 0.0

    async def run(self, stopping: asyncio.Event, ack_wait_s: float) -> None:
        last_touch = time.monotonic()
        while not stopping.is_set():
            try:
                await self._wait_for_room(stopping)
                await self._fetch_and_start(stopping)
            except Exception as error:  # the loop must outlive any one failure
                log.error("consumer loop error", consumer=self.name, error=repr(error))
                await _pause(stopping, ERROR_PAUSE_S)
            if time.monotonic() - last_touch > ack_wait_s / 3:
                last_touch = time.monotonic()
                await self._keep_alive(ack_wait_s / 3)

    async def _wait_for_room(self, stopping: asyncio.Event) -> None:
        """Until a batch worth fetching is free: refilling one slot at a time would cost a
        pull request per message. After FETCH_TIMEOUT_S, whatever room there is will do."""
        give_up_s = time.monotonic() + FETCH_TIMEOUT_S
        while not stopping.is_set():
            self._room.clear()  # before the check, so a handler finishing now is not missed
            now_s = time.monotonic()
            room, stalls_s = self._room_left(now_s)
            if room >= self._refill or now_s >= give_up_s:
                return
            wait_s = max(MIN_WAIT_S, min(give_up_s, stalls_s) - now_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), wait_s)

    def _room_left(self, now_s: float) -> tuple[int, float]:
        """Free capacity, not counting handlers that have stalled (up to `capacity` of them),
        and when the oldest of the others would stall. Handlers are kept in the order they
        started: the walk stops at the first one that has not stalled."""
        cutoff_s, stalled = now_s - STALLED_S, 0
        for _msg, started_s in self._running.values():
            if started_s > cutoff_s or stalled == self._capacity:
                return self._capacity - len(self._running) + stalled, started_s + STALLED_S
            stalled += 1
        return self._capacity - len(self._running) + stalled, now_s + FETCH_TIMEOUT_S

    async def _fetch_and_start(self, stopping: asyncio.Event) -> None:
        room, _stalls_s = self._room_left(time.monotonic())
        if room <= 0:
            return
        self._last_fetch_s = time.monotonic()
        try:
            messages = await fetch(self._sub, min(room, MAX_BATCH), FETCH_TIMEOUT_S)
        except BusError as error:
            log.warning("fetch failed", consumer=self.name, error=str(error))
            await _pause(stopping, ERROR_PAUSE_S)
            return
        for msg in messages:
            self._start(msg)

    def _start(self, msg: Msg) -> None:
        task = asyncio.create_task(self._guarded(msg))
        self._running[task] = (msg, time.monotonic())
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        refill = self._refill
        if (
            self._capacity - len(self._running) >= refill
            or self._room_left(time.monotonic())[0] >= refill
        ):
            self._room.set()

    async def _guarded(self, msg: Msg) -> None:
        try:
            await carry_out(msg, await self._handle(msg))
        except asyncio.CancelledError:
            raise
        except BusError as error:  # NATS unreachable or refusing: one line
            log.warning("handler failed", consumer=self.name, error=str(error))
            await _quietly(self._recover(msg, error))
        except Exception as error:
            log.error("handler failed", consumer=self.name, error=str(error), exc_info=True)
            await _quietly(self._recover(msg, error))

    async def _recover(self, msg: Msg, error: Exception) -> None:
        await carry_out(msg, await self._on_failure(msg, error))

    async def _keep_alive(self, older_than_s: float) -> None:
        """Extend the ack deadline of messages held long (queued behind a busy endpoint)."""
        cutoff = time.monotonic() - older_than_s
        for msg, started in list(self._running.values()):
            if started < cutoff:
                await _quietly(msg.in_progress())

    async def drain(self, deadline_s: float) -> None:
        """Let running handlers finish until the deadline; hand the rest back to JetStream."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=deadline_s)
        leftovers = list(self._running.items())
        for task, (msg, _started) in leftovers:
            task.cancel()
            await _quietly(msg.nak())
        if leftovers:
            # bounded: on 3.11 a handler inside asyncio.wait_for can swallow its cancellation
            await asyncio.wait([task for task, _ in leftovers], timeout=CANCEL_GRACE_S)
            log.warning("handed back unfinished messages", consumer=self.name, count=len(leftovers))
        await self._hand_back_stragglers()
        await _quietly(self._sub.unsubscribe())

    async def _hand_back_stragglers(self) -> None:
        """The last pull request may still deliver until it expires: wait, then nak those."""
        expiry_s = self._last_fetch_s + FETCH_TIMEOUT_S + STRAGGLER_MARGIN_S - time.monotonic()
        await asyncio.sleep(max(0.0, expiry_s))
        for msg in stragglers(self._sub):
            await _quietly(msg.nak())


async def carry_out(msg: Msg, decision: Decision) -> None:
    """The one place a handler's decision reaches its message."""
    if isinstance(decision, Ack):
        await msg.ack()
    elif isinstance(decision, Nak):
        await msg.nak(delay=decision.delay_s)
    else:
        await msg.term()


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def _quietly(action: Awaitable[None]) -> None:
    """Acks and naks on a lost connection are best effort: JetStream redelivers anyway."""
    try:
        await action
    except Exception as error:
        log.debug("ack or nak not sent", error=str(error))
