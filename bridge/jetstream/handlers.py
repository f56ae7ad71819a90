"""What happens to each event message and each task message; a handler returns its decision.

Events: decode → remember/recall per-job webhooks → route → one first attempt per target,
made inline when the endpoint has a free slot or soon will (a fast endpoint's short queue),
else deferred as a task → ack the event once every target is delivered, queued for retry or
dead-lettered. The common path (first attempt succeeds) costs one fetch and one ack, like a
plain consumer; retries and deferrals pay for themselves by publishing a task. An event whose
handling fails is handed back, and dead-lettered after a few failures (`bridge.jetstream.failures`).

Tasks: wait until due (nak with the time left), take an endpoint slot (bounded queue, else
hand back with the endpoint's overflow delay), attempt, then ack once the follow-up is
published. A batch of deferrals is handed back whole while its endpoint is saturated, else
split.

Records (dead letters, tasks) are published before the handler returns, so its decision is
only ever taken once they are stored. Handlers are given their collaborators (`bridge.app`
builds them) and return a decision (`bridge.policy.decisions`); the fetch loop
(`bridge.jetstream.consumers`) carries it out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import msgspec
from nats.aio.msg import Msg

from bridge.config.settings import Settings
from bridge.delivery.slots import EndpointLimiter
from bridge.jetstream import failures
from bridge.jetstream.bus import batch_subject, tasks_subject
from bridge.jetstream.dispatch import Dispatcher
from bridge.jetstream.holding import Holding
from bridge.jetstream.job_webhooks import JobWebhooks
from bridge.jetstream.ordering import Turns
from bridge.jetstream.rate_limits import RateLimits
from bridge.observability.logs import log
from bridge.observability.metrics import Metrics
from bridge.observability.tracing import Spans
from bridge.policy import dead_letter, ordering, transform
from bridge.policy.decisions import ACK, TERM, Decision, Nak
from bridge.policy.entries import Admitted
from bridge.policy.events import Event, InvalidEvent, decode_event, subject_prefixes
from bridge.policy.routing import Route, Router, Target, delivery_id
from bridge.policy.tasks import DeliveryTask, decode_batch, decode_task, handed_on
from bridge.policy.trace_context import TraceContext, from_headers, new_trace, trace_id_of

RECORD_HEADROOM_BYTES = 64 * 1024
INLINE_WAIT_S = 0.25
TASK_WAIT_S = 1.0
UNKNOWN_TASK_DELAY_S = 60.0
PAUSED_RECHECK_S = 5.0  # a paused webhook's waiting deliveries look again this often
RATE_INLINE_S = 0.25  # a rate-limited delivery waits this long in place, else as a task
RATE_LATE_S = 1.0  # a booked slot missed by more than this is booked again
LEAVE_FOR_NEWER = Nak(UNKNOWN_TASK_DELAY_S)
DUE_MARGIN_S = 0.01  # a task due this soon runs now


class EventHandler:
    """Turns one event message into first attempts, deferrals and dead letters."""

    def __init__(
        self,
        settings: Settings,
        *,
        router: Router,
        jobs: JobWebhooks,
        dispatcher: Dispatcher,
        limiter: EndpointLimiter,
        rates: RateLimits,
        metrics: Metrics,
        max_event_bytes: int,
        clock: Callable[[], float] = time.time,
        spans: Spans | None = None,
        holding: Holding | None = None,
    ) -> None:
        self._holding = holding
        self._max_event_bytes = max_event_bytes
        self._spans = spans
        self._pacing = Pacing(dispatcher, rates, clock)
        self._max_webhooks = settings.job_webhook_max
        self._max_failures = settings.event_max_failures
        self._router = router
        self._jobs = jobs
        self._dispatcher = dispatcher
        self._limiter = limiter
        self._metrics = metrics
        self._prefixes = subject_prefixes(settings.nats_subjects)
        self._ordering = settings.ordering

    async def __call__(self, msg: Msg) -> Decision:
        event = self._decode(msg)
        if self._spans is None:
            return await self._handle(event)
        with self._spans.consume(event) as trace:
            return await self._handle(msgspec.structs.replace(event, trace=trace))

    async def _handle(self, event: Event | InvalidEvent) -> Decision:
        if isinstance(event, InvalidEvent):
            await self._invalid(event)
        else:
            await self._route(event)
        return ACK

    def _decode(self, msg: Msg) -> Event | InvalidEvent:
        meta = msg.metadata
        headers = msg.headers or {}
        event_id = headers.get("Nats-Msg-Id") or f"{meta.stream}-{meta.sequence.stream}"
        return decode_event(
            msg.data,
            subject=msg.subject,
            event_id=event_id,
            published_at_s=meta.timestamp.timestamp(),
            max_bytes=self._max_event_bytes,
            prefixes=self._prefixes,
            max_webhooks=self._max_webhooks,
            trace=self._trace(headers),
            sequence=meta.sequence.stream,
        )

    def _trace(self, headers: dict[str, str]) -> TraceContext | None:
        """The message's trace context; else a new trace, or none yet when the consume span
        will start one."""
        found = from_headers(headers) if headers else None
        return found if found is not None or self._spans is not None else new_trace()

    async def failed(self, msg: Msg, error: Exception) -> Decision:
        """Hand the event back, or give up on it (`bridge.jetstream.failures`)."""
        delivered = msg.metadata.num_delivered or 1
        if not failures.gives_up(delivered, self._max_failures, error):
            return failures.HAND_BACK
        decoded = self._decode(msg)
        event = decoded if isinstance(decoded, Event) else None
        text = str(error) or repr(error)
        log.error(
            "event dead-lettered after failing",
            event_id=decoded.id,
            delivered=delivered,
            trace_id=trace_id_of(decoded.trace),
        )
        record = dead_letter.from_failure(decoded.id, event, msg.data, text, decoded.trace)
        settled = await failures.settle(record, self._dispatcher.publish_dead_letter)
        return failures.HAND_BACK if settled is None else settled

    async def _invalid(self, event: InvalidEvent) -> None:
        log.warning(
            "invalid event",
            event_id=event.id,
            subject=event.subject,
            error=event.error,
            trace_id=trace_id_of(event.trace),
        )
        self._metrics.invalid(event.reason)
        await self._dispatcher.publish_dead_letter(dead_letter.from_invalid(event))

    async def _route(self, event: Event) -> None:
        self._metrics.received(event.name)
        entries = await self._job_webhooks(event)
        if entries.dropped or event.dropped_webhooks:  # rare: the common event builds nothing
            await self._too_many(event, (*entries.dropped, *event.dropped_webhooks))
            event = _without(event, entries.dropped)
        route = self._route_of(event, entries.kept)
        for unknown in route.unknown_ids:
            log.warning(
                "unknown webhook id",
                event_id=event.id,
                webhook=unknown,
                trace_id=trace_id_of(event.trace),
            )
            await self._dispatcher.publish_dead_letter(dead_letter.from_unknown(event, unknown))
        if route.targets:
            await self._first_attempts(event, route.targets)

    def _route_of(self, event: Event, kept: tuple[str, ...]) -> Route:
        if self._spans is None:
            return self._router.route(event, kept)
        with self._spans.route(event):
            return self._router.route(event, kept)

    async def _first_attempts(self, event: Event, targets: tuple[Target, ...]) -> None:
        """Concurrently. A target whose endpoint is saturated is deferred at once, batched
        with the others for that URL; of the rest, the first runs in this task, so a single
        target (the common case) costs no task, and a fan-out to n costs n - 1."""
        deferred: list[asyncio.Future[None]] = []
        now: list[DeliveryTask] = []
        for target in targets:
            task = first_task(event, target)
            if target.webhook_id is not None:
                shaped = await self._shaped(task)
                if shaped is None:
                    continue
                task = shaped
            task = ordering.in_turn(
                task, self._dispatcher.webhook(task), self._ordering, event.sequence
            )
            held = self._holding.first(task) if self._holding else None
            if held is not None or task.order_seq or self._saturated(target.url):
                deferred.append(self._dispatcher.defer(held or task))  # ordered: as a task
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

    async def _shaped(self, task: DeliveryTask) -> DeliveryTask | None:
        """The task with its webhook's transform applied, or None once dead-lettered."""
        hook = self._dispatcher.webhook(task)
        if hook is None or hook.transform is None:
            return task
        try:
            body = transform.apply(hook.transform, task.body)
        except transform.TransformFailed as failed:
            record = dead_letter.from_task(task, "transform_error")
            await self._dispatcher.publish_dead_letter(
                msgspec.structs.replace(record, error=str(failed))
            )
            return None
        return msgspec.structs.replace(task, body=body)

    async def _attempts(self, tasks: list[DeliveryTask]) -> None:
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
        log.warning(
            "per-job webhooks dropped",
            event_id=event.id,
            count=len(dropped),
            trace_id=trace_id_of(event.trace),
        )
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
        limiter = self._limiter
        return not limiter.has_room(url, limiter.inline_queue(url, INLINE_WAIT_S))

    async def _first(self, task: DeliveryTask) -> None:
        """Attempt now, or after a short wait for a slot of an endpoint that answers fast
        enough to serve the queue within INLINE_WAIT_S; else defer it as a task. A healthy
        endpoint under a backlog so costs no task round trip, and a slow or hanging one holds
        an event for INLINE_WAIT_S at most."""
        if task.target.webhook_id is not None and not await self._pacing.may_start(task):
            return
        limiter, url = self._limiter, task.target.url
        queue = limiter.inline_queue(url, INLINE_WAIT_S)
        if await limiter.acquire(url, max_waiting=queue, timeout_s=INLINE_WAIT_S):
            await self._dispatcher.attempt(task)
        else:
            await self._dispatcher.defer(task)


class Pacing:
    """Deliveries to a webhook with a `rate_limit` start at slots booked across replicas
    (`bridge.jetstream.rate_limits`): one due within RATE_INLINE_S waits in place, a later one
    is stored as a task for its slot, durably and without spending a retry."""

    def __init__(
        self, dispatcher: Dispatcher, rates: RateLimits, clock: Callable[[], float]
    ) -> None:
        self._dispatcher = dispatcher
        self._rates = rates
        self._clock = clock

    async def may_start(self, task: DeliveryTask) -> bool:
        """True once the task may start; False when it was stored for a later slot."""
        hook = self._dispatcher.webhook(task)
        if hook is None or hook.rate_limit is None:
            return True
        if task.rate_slot_s and self._clock() <= task.rate_slot_s + RATE_LATE_S:
            return True  # its slot, booked before it was stored
        slot_s = await self._rates.book(hook.id, hook.rate_limit)
        wait_s = slot_s - self._clock()
        if wait_s > RATE_INLINE_S:
            await self._dispatcher.queue_at(task, slot_s)
            return False
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        return True


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


def first_task(event: Event, target: Target) -> DeliveryTask:
    return DeliveryTask(
        delivery_id=delivery_id(event.id, target.url),
        event_id=event.id,
        event=event.name,
        job_id=event.job_id,
        tenant_id=event.tenant_id,
        target=target,
        body=event.body,
        published_at_s=event.published_at_s,
        trace=event.trace,
    )


class TaskHandler:
    """Runs one task message: wait until due, take a slot, attempt, ack. `clock` is wall-clock
    seconds, what a task's `not_before_s` is written in."""

    def __init__(
        self,
        settings: Settings,
        *,
        dispatcher: Dispatcher,
        limiter: EndpointLimiter,
        rates: RateLimits,
        turns: Turns,
        clock: Callable[[], float] = time.time,
        holding: Holding | None = None,
    ) -> None:
        self._holding = holding
        self._dispatcher = dispatcher
        self._turns = turns
        self._pacing = Pacing(dispatcher, rates, clock)
        self._limiter = limiter
        self._clock = clock
        self._task_subject = tasks_subject(settings)
        self._batch_prefix = batch_subject(settings).removesuffix("*")
        self._ordered_prefix = ordering.prefix(settings.tasks_stream)

    async def __call__(self, msg: Msg) -> Decision:
        batch = msg.subject.startswith(self._batch_prefix)
        single = msg.subject == self._task_subject or msg.subject.startswith(self._ordered_prefix)
        if not batch and not single:
            # a kind of task only a newer version writes (a rolling upgrade): hand it back
            log.error("task of an unknown kind left for a newer replica", subject=msg.subject)
            return LEAVE_FOR_NEWER
        try:
            items = decode_batch(msg.data) if batch else None
            first = decode_task(items[0] if items else msg.data)
        except msgspec.DecodeError:
            log.error("dropping unreadable task", seq=msg.metadata.sequence.stream)
            return TERM
        if items is None:
            return await self._due(first, msg.metadata.num_delivered or 1)
        return await self._split(items, first)

    async def _due(self, task: DeliveryTask, delivered: int) -> Decision:
        wait_s = task.not_before_s - self._clock()
        if wait_s > DUE_MARGIN_S:
            return Nak(wait_s)
        if task.order_seq:
            return await self._in_turn(task, delivered)
        return await self._run(task)

    async def _in_turn(self, task: DeliveryTask, delivered: int) -> Decision:
        """An ordered delivery runs once the earlier ones of its job and URL are done."""
        if not_yet := await self._turns.wait(task, delivered):
            return not_yet
        try:
            return await self._run(task)
        finally:
            self._turns.ended(task)

    async def _run(self, task: DeliveryTask) -> Decision:
        standing = self._dispatcher.standing(task)
        if standing == "paused":
            return Nak(PAUSED_RECHECK_S)
        if standing == "gone":
            log.warning(
                "webhook deleted: delivery dead-lettered",
                delivery_id=task.delivery_id,
                trace_id=trace_id_of(task.trace),
            )
            record = dead_letter.from_task(task, "unknown_webhook")
            await self._dispatcher.publish_dead_letter(record)
            return ACK
        if self._holding is not None and (held := await self._holding.single(task)) is not None:
            return held  # its endpoint is down
        if task.target.webhook_id is not None and not await self._pacing.may_start(task):
            return ACK  # stored again, to run at its booked slot
        limiter, url = self._limiter, task.target.url
        limiter.redeem(url)
        if not await limiter.acquire(url, max_waiting=self._queue(url)):
            return Nak(limiter.overflow_delay_s(url))
        await self._dispatcher.attempt(task)
        return ACK

    def _queue(self, url: str) -> int:
        """An endpoint may queue what it serves within TASK_WAIT_S: a stalled one none, so
        its tasks do not hold the waiting budget that healthy endpoints' events need."""
        return self._limiter.inline_queue(url, TASK_WAIT_S)

    async def _split(self, items: list[msgspec.Raw], first: DeliveryTask) -> Decision:
        """A batch stays one message while its endpoint is saturated or down. Once it has
        room, as many tasks as fit go back as single tasks, promised to the endpoint so that
        other batches do not take the same room, and the rest as a smaller batch."""
        holding = self._holding
        if holding is not None and (held := await holding.batch(first, len(items))) is not None:
            return held
        limiter, url = self._limiter, first.target.url
        room = limiter.room(url, self._queue(url))
        if not room:
            return Nak(limiter.overflow_delay_s(url, count=len(items)))
        tasks = [handed_on(decode_task(item)) for item in items]
        limiter.promise(url, min(room, len(tasks)))
        await self._dispatcher.requeue(tasks[:room], tasks[room:])
        return ACK
