"""The JetStream side: fetch loops, and what happens to each event and each task message.

Events: decode → remember/recall per-job webhooks → route → one first attempt per target,
made inline when the endpoint has a free slot or soon will (a fast endpoint's short queue),
else deferred as a task → ack the event once every target is delivered, queued for retry or
dead-lettered. The common path (first attempt succeeds) costs one fetch and one ack, like a
plain consumer; retries and deferrals pay for themselves by publishing a task. An event whose
handling fails is handed back, and dead-lettered after a few failures (`bridge.jetstream.failures`).

Tasks: wait until due (`nak(delay)`), take an endpoint slot (bounded queue, else hand back
with the endpoint's overflow delay), attempt, then ack once the follow-up is published. A
batch of deferrals is handed back whole while its endpoint is saturated, else split.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import msgspec
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bridge.config.settings import Settings
from bridge.jetstream import failures
from bridge.jetstream.bus import BusError, batch_subject, fetch, stragglers, tasks_subject
from bridge.jetstream.dispatch import Dispatcher
from bridge.jetstream.job_webhooks import JobWebhooks
from bridge.observability.logs import log
from bridge.policy import dead_letter
from bridge.policy.entries import Admitted
from bridge.policy.events import Event, InvalidEvent, decode_event, subject_prefixes
from bridge.policy.routing import Router, Target, delivery_id
from bridge.policy.tasks import Task, decode_batch, decode_task, handed_on

Handler = Callable[[Msg], Awaitable[None]]
FailureHandler = Callable[[Msg, Exception], Awaitable[None]]
FETCH_TIMEOUT_S = 1.0
MAX_BATCH = 128
ERROR_PAUSE_S = 1.0
RECORD_HEADROOM_BYTES = 64 * 1024
STRAGGLER_MARGIN_S = 0.2
CANCEL_GRACE_S = 2.0
INLINE_WAIT_S = 0.25
TASK_WAIT_S = 1.0
UNKNOWN_TASK_DELAY_S = 60.0
REFILL_FRACTION = 4  # a full loop fetches again once a quarter of its capacity is free


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
        while not stopping.is_set():
            self._room.clear()  # before the check, so a handler finishing now is not missed
            if self._capacity - len(self._running) >= self._refill:
                return
            try:
                await asyncio.wait_for(self._room.wait(), FETCH_TIMEOUT_S)
            except TimeoutError:
                return

    async def _fetch_and_start(self, stopping: asyncio.Event) -> None:
        room = self._capacity - len(self._running)
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
        if self._capacity - len(self._running) >= self._refill:
            self._room.set()

    async def _guarded(self, msg: Msg) -> None:
        try:
            await self._handle(msg)
        except asyncio.CancelledError:
            raise
        except BusError as error:  # NATS unreachable or refusing: one line
            log.warning("handler failed", consumer=self.name, error=str(error))
            await _quietly(self._on_failure(msg, error))
        except Exception as error:
            log.error("handler failed", consumer=self.name, error=str(error), exc_info=True)
            await _quietly(self._on_failure(msg, error))

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


class EventHandler:
    """Turns one event message into first attempts, deferrals and dead letters."""

    def __init__(
        self,
        settings: Settings,
        router: Router,
        jobs: JobWebhooks,
        dispatcher: Dispatcher,
        max_event_bytes: int,
    ) -> None:
        self._max_event_bytes = max_event_bytes
        self._max_webhooks = settings.job_webhook_max
        self._max_failures = settings.event_max_failures
        self._router = router
        self._jobs = jobs
        self._dispatcher = dispatcher
        self._metrics = dispatcher.metrics
        self._prefixes = subject_prefixes(settings.nats_subjects)

    async def __call__(self, msg: Msg) -> None:
        event = self._decode(msg)
        if isinstance(event, InvalidEvent):
            await self._invalid(event)
        else:
            await self._route(event)
        await msg.ack()

    def _decode(self, msg: Msg) -> Event | InvalidEvent:
        meta = msg.metadata
        event_id = (msg.headers or {}).get("Nats-Msg-Id") or (
            f"{meta.stream}-{meta.sequence.stream}"
        )
        return decode_event(
            msg.data,
            subject=msg.subject,
            event_id=event_id,
            published_at_s=meta.timestamp.timestamp(),
            max_bytes=self._max_event_bytes,
            prefixes=self._prefixes,
            max_webhooks=self._max_webhooks,
        )

    async def failed(self, msg: Msg, error: Exception) -> None:
        """Hand the event back, or give up on it (`bridge.jetstream.failures`)."""
        delivered = msg.metadata.num_delivered or 1
        if failures.gives_up(delivered, self._max_failures, error):
            decoded = self._decode(msg)
            event = decoded if isinstance(decoded, Event) else None
            text = str(error) or repr(error)
            log.error("event dead-lettered after failing", event_id=decoded.id, delivered=delivered)
            record = dead_letter.from_failure(decoded.id, event, msg.data, text)
            if await failures.settle(msg, record, self._dispatcher.publish_dead_letter):
                return
        await hand_back(msg, error)

    async def _invalid(self, event: InvalidEvent) -> None:
        log.warning("invalid event", event_id=event.id, subject=event.subject, error=event.error)
        self._metrics.invalid(event.reason)
        await self._dispatcher.publish_dead_letter(dead_letter.from_invalid(event))

    async def _route(self, event: Event) -> None:
        self._metrics.received(event.name)
        entries = await self._job_webhooks(event)
        if entries.dropped or event.dropped_webhooks:  # rare: the common event builds nothing
            await self._too_many(event, (*entries.dropped, *event.dropped_webhooks))
            event = _without(event, entries.dropped)
        route = self._router.route(event, entries.kept)
        for unknown in route.unknown_ids:
            log.warning("unknown webhook id", event_id=event.id, webhook=unknown)
            await self._dispatcher.publish_dead_letter(dead_letter.from_unknown(event, unknown))
        if route.targets:
            await self._first_attempts(event, route.targets)

    async def _first_attempts(self, event: Event, targets: tuple[Target, ...]) -> None:
        """Concurrently. A target whose endpoint is saturated is deferred at once, batched
        with the others for that URL; of the rest, the first runs in this task, so a single
        target (the common case) costs no task, and a fan-out to n costs n - 1."""
        deferred: list[asyncio.Future[None]] = []
        now: list[Task] = []
        for target in targets:
            task = first_task(event, target)
            if self._saturated(target.url):
                deferred.append(self._dispatcher.defer(task))
            else:
                now.append(task)
        try:
            await self._attempts(now)
            for waiter in deferred:
                await waiter
        except BaseException:
            for waiter in deferred:
                waiter.cancel()
            raise

    async def _attempts(self, tasks: list[Task]) -> None:
        if not tasks:
            return
        rest = [asyncio.create_task(self._first(task)) for task in tasks[1:]]
        try:
            await self._first(tasks[0])
        except BaseException:
            for running in rest:
                running.cancel()
            raise
        if rest:
            await asyncio.gather(*rest)

    async def _too_many(self, event: Event, dropped: tuple[str, ...]) -> None:
        log.warning("per-job webhooks dropped", event_id=event.id, count=len(dropped))
        record = dead_letter.from_too_many(event, dropped, self._max_webhooks)
        await self._dispatcher.publish_dead_letter(record)

    async def _job_webhooks(self, event: Event) -> Admitted:
        """Per-job entries; noted synchronously so later events in this process see them."""
        if event.job_id is None:
            return Admitted(())
        if not event.webhooks:
            return Admitted(await self._jobs.recall(event.job_id))
        self._jobs.note(event.job_id, event.webhooks)
        return await self._jobs.remember(event.job_id, event.webhooks)

    def _saturated(self, url: str) -> bool:
        limiter = self._dispatcher.limiter
        return not limiter.has_room(url, limiter.inline_queue(url, INLINE_WAIT_S))

    async def _first(self, task: Task) -> None:
        """Attempt now, or after a short wait for a slot of an endpoint that answers fast
        enough to serve the queue within INLINE_WAIT_S; else defer it as a task. A healthy
        endpoint under a backlog so costs no task round trip, and a slow or hanging one holds
        an event for INLINE_WAIT_S at most."""
        limiter, url = self._dispatcher.limiter, task.target.url
        queue = limiter.inline_queue(url, INLINE_WAIT_S)
        if await limiter.acquire(url, max_waiting=queue, timeout_s=INLINE_WAIT_S):
            await self._dispatcher.attempt(task)
        else:
            await self._dispatcher.defer(task)


def _without(event: Event, dropped: tuple[str, ...]) -> Event:
    """The event as routed when its job could not keep some of its entries."""
    if not dropped:
        return event
    kept = tuple(entry for entry in event.webhooks if entry not in dropped)
    return msgspec.structs.replace(event, webhooks=kept)


def event_size_limit(configured_bytes: int, max_payload_bytes: int) -> int:
    """Events must leave room to be carried in a retry task or a dead letter, or a failing
    delivery could never be scheduled and its event would be redelivered for ever."""
    return min(configured_bytes, max_payload_bytes - RECORD_HEADROOM_BYTES)


def first_task(event: Event, target: Target) -> Task:
    return Task(
        delivery_id=delivery_id(event.id, target.url),
        event_id=event.id,
        event=event.name,
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        target=target,
        body=event.body,
        published_at_s=event.published_at_s,
    )


class TaskHandler:
    """Runs one task message: wait until due, take a slot, attempt, ack."""

    def __init__(self, settings: Settings, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._task_subject = tasks_subject(settings)
        self._batch_prefix = batch_subject(settings).removesuffix("*")

    async def __call__(self, msg: Msg) -> None:
        batch = msg.subject.startswith(self._batch_prefix)
        if not batch and msg.subject != self._task_subject:
            await _leave_for_newer(msg)
            return
        try:
            items = decode_batch(msg.data) if batch else None
            first = decode_task(items[0] if items else msg.data)
        except msgspec.DecodeError:
            log.error("dropping unreadable task", seq=msg.metadata.sequence.stream)
            await msg.term()
            return
        if items is None:
            await self._due(msg, first)
        else:
            await self._split(msg, items, first.target.url)

    async def _due(self, msg: Msg, task: Task) -> None:
        wait_s = task.not_before_s - time.time()
        if wait_s > 0.01:
            await msg.nak(delay=wait_s)
            return
        await self._run(msg, task)

    async def _run(self, msg: Msg, task: Task) -> None:
        limiter, url = self._dispatcher.limiter, task.target.url
        limiter.redeem(url)
        if not await limiter.acquire(url, max_waiting=self._queue(url)):
            await msg.nak(delay=limiter.overflow_delay_s(url))
            return
        await self._dispatcher.attempt(task)
        await msg.ack()

    def _queue(self, url: str) -> int:
        """An endpoint may queue what it serves within TASK_WAIT_S: a stalled one none, so
        its tasks do not hold the waiting budget that healthy endpoints' events need."""
        return self._dispatcher.limiter.inline_queue(url, TASK_WAIT_S)

    async def _split(self, msg: Msg, items: list[msgspec.Raw], url: str) -> None:
        """A batch stays one message while its endpoint is saturated. Once it has room, as
        many tasks as fit go back as single tasks, promised to the endpoint so that other
        batches do not take the same room, and the rest as a smaller batch."""
        limiter = self._dispatcher.limiter
        room = limiter.room(url, self._queue(url))
        if not room:
            await msg.nak(delay=limiter.overflow_delay_s(url, count=len(items)))
            return
        tasks = [handed_on(decode_task(item)) for item in items]
        limiter.promise(url, min(room, len(tasks)))
        await self._dispatcher.requeue(tasks[:room], tasks[room:])
        await msg.ack()


async def hand_back(msg: Msg, _error: Exception) -> None:
    """After a failure: try again after a pause."""
    await msg.nak(delay=ERROR_PAUSE_S)


async def _leave_for_newer(msg: Msg) -> None:
    """A kind of task only a newer version writes (a rolling upgrade): hand it back."""
    log.error("task of an unknown kind left for a newer replica", subject=msg.subject)
    await msg.nak(delay=UNKNOWN_TASK_DELAY_S)


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def _quietly(action: Awaitable[None]) -> None:
    """Acks and naks on a lost connection are best effort: JetStream redelivers anyway."""
    try:
        await action
    except Exception as error:
        log.debug("ack or nak not sent", error=str(error))
