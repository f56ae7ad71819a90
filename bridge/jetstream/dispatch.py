"""One delivery attempt in stages: prepare and sign → call → decide → carry out the decision.

The decision is pure (`next_step`): delivered, retry at a time, or give up with a reason.
Carrying it out is the only I/O besides the call: a retry is published as a new task (the
attempt history travels with it), a give-up is published as a dead letter.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from nats.aio.client import Client

from bridge import __version__
from bridge.config.settings import Settings
from bridge.config.webhooks import NamedWebhook
from bridge.delivery.attempt import AttemptResult, Request, Sender
from bridge.delivery.slots import EndpointLimiter
from bridge.jetstream import bus, dlq
from bridge.jetstream.deferrals import BATCH_MAX_BYTES, Deferrals
from bridge.jetstream.delivery_log import DeliveryLog, Result, entry_for
from bridge.jetstream.endpoint_health import EndpointHealth
from bridge.jetstream.receiver_signals import ReceiverSignals
from bridge.observability.logs import log
from bridge.observability.metrics import Metrics
from bridge.observability.throttle import Throttle
from bridge.observability.tracing import Spans
from bridge.policy import retry
from bridge.policy.dead_letter import DeadLetter, Reason, from_task
from bridge.policy.framing import NO_HEADERS, framed
from bridge.policy.routing import Router, Standing, host_of, standing
from bridge.policy.signals import ABORT
from bridge.policy.signing import signature_headers
from bridge.policy.tasks import Attempt, DeliveryTask, encode_task, handed_on, timestamp
from bridge.policy.trace_context import TRACEPARENT, TRACESTATE, attempt_headers, trace_id_of

USER_AGENT = f"webhook-bridge/{__version__}"
FAILURE_LOG_BURST = 10  # failure lines per endpoint per window; the rest are counted
FAILURE_LOG_WINDOW_S = 60.0


class Delivered(msgspec.Struct, frozen=True):
    pass


class RetryAt(msgspec.Struct, frozen=True):
    not_before_s: float


class GiveUp(msgspec.Struct, frozen=True):
    reason: Reason


class Held(msgspec.Struct, frozen=True):
    """The endpoint is down: wait for it, without spending a retry (SPEC §11)."""

    not_before_s: float


Step = Delivered | RetryAt | GiveUp | Held


def next_step(
    task: DeliveryTask,
    result: AttemptResult,
    settings: Settings,
    now_s: float,
    max_retry: int | None = None,
) -> Step:
    """What follows an attempt; `task.attempt` is the attempt that just ran (1-based), of
    which `task.charged_attempts + 1` count against the retry budget. `max_retry` is the
    webhook's own, when it overrides WEBHOOK_MAX_RETRY."""
    if result.ok:
        return Delivered()
    if result.outcome == "blocked":
        return GiveUp("blocked_url")
    if result.status_code == 410:
        return GiveUp("gone")
    if result.signal == ABORT:
        return GiveUp("aborted_by_receiver")
    charged = task.charged_attempts + 1
    if charged > (settings.max_retry if max_retry is None else max_retry):
        return GiveUp("max_retries_exceeded")
    retry_after_s = retry.parse_retry_after(result.retry_after, now_s)
    delay_s = retry.retry_delay_s(
        charged, settings.retry_min_wait_s, settings.retry_max_wait_s, retry_after_s
    )
    return RetryAt(now_s + delay_s)


class Dispatcher:
    """Runs attempts for tasks whose endpoint slot the caller has reserved in `limiter`."""

    def __init__(
        self,
        settings: Settings,
        router: Router,
        sender: Sender,
        nc: Client,
        *,
        metrics: Metrics,
        limiter: EndpointLimiter,
        spans: Spans | None = None,
        health: EndpointHealth | None = None,
    ) -> None:
        js = nc.jetstream()
        self._spans = spans
        self.health = health
        self.signals: ReceiverSignals | None = None  # set once its collaborators exist
        self._settings = settings
        self._router = router
        self._sender = sender
        self._js = js
        self.metrics = metrics
        self._delivery_log = DeliveryLog(js, nc, metrics)
        self._attempt_log = AttemptLog(metrics)
        self._limiter = limiter
        self._slots = asyncio.Semaphore(settings.concurrency)
        # an unacked message is redelivered after ack_wait: give up publishing well before
        self._patience_s = settings.effective_ack_wait_s / 3
        self._record_max_bytes = bus.max_body_bytes(nc)
        batch_bytes = min(BATCH_MAX_BYTES, nc.max_payload // 2)
        self._deferrals = Deferrals(self._publish_tasks, batch_bytes)

    async def attempt(self, task: DeliveryTask) -> None:
        """Attempt with a reserved endpoint slot (released here), then act on the result."""
        result = await self._call(task)
        await self.follow_up(task, result)

    async def _call(self, task: DeliveryTask) -> AttemptResult:
        started_s = time.monotonic()
        try:
            async with self._slots:
                self.metrics.inflight += 1
                try:
                    if self._spans is None:
                        return await self._sender.post(self.prepare(task, int(time.time())))
                    return await self._traced_post(self._spans, task)
                finally:
                    self.metrics.inflight -= 1
        finally:
            self._limiter.release(task.target.url, time.monotonic() - started_s)

    async def _traced_post(self, spans: Spans, task: DeliveryTask) -> AttemptResult:
        """The attempt in a span of its own, which the request names as its parent."""
        span = spans.attempt(task)
        try:
            result = await self._sender.post(self.prepare(task, int(time.time()), span.traceparent))
        except BaseException:
            span.end(None, "cancelled", "the attempt was cancelled")
            raise
        span.end(result.status_code, result.outcome, None if result.ok else result.message)
        return result

    def defer(self, task: DeliveryTask) -> asyncio.Future[None]:
        """Queue a first attempt for the task consumer while its endpoint is saturated; done
        once stored. Deferrals to one URL in one loop iteration share a batch message; an
        ordered delivery waits alone on its own subject (`bridge.policy.ordering`)."""
        if task.order_seq:
            return asyncio.ensure_future(self._queue(task))
        return self._deferrals.submit(task)

    async def requeue(self, singles: list[DeliveryTask], rest: list[DeliveryTask]) -> None:
        """Split a batch: `singles` as single tasks, `rest` as a smaller batch."""
        publishing = [self._queue(task) for task in singles]
        if rest:
            publishing.append(self._publish_tasks(rest, [encode_task(task) for task in rest]))
        await asyncio.gather(*publishing)

    async def queue_at(self, task: DeliveryTask, slot_s: float) -> None:
        """Store the task to run at the slot booked for it under its webhook's rate limit."""
        booked = handed_on(task)
        await self._queue(msgspec.structs.replace(booked, not_before_s=slot_s, rate_slot_s=slot_s))

    async def _queue(self, task: DeliveryTask) -> None:
        await bus.publish_task(self._js, self._settings, task, self._patience_s)

    async def _publish_tasks(self, tasks: list[DeliveryTask], payloads: list[bytes]) -> None:
        await bus.publish_tasks(self._js, self._settings, tasks, payloads, self._patience_s)

    def webhook(self, task: DeliveryTask) -> NamedWebhook | None:
        """The named webhook of the task as it is configured now."""
        webhook_id = task.target.webhook_id
        return None if webhook_id is None else self._router.named(webhook_id)

    def standing(self, task: DeliveryTask) -> Standing:
        return standing(task.target, self.webhook(task))

    def prepare(self, task: DeliveryTask, now_s: int, traceparent: str | None = None) -> Request:
        """The signed request of the task's next attempt; `traceparent` names the attempt's
        span when there is one (`bridge.policy.trace_context.attempt_headers` otherwise)."""
        hook = self.webhook(task)
        secrets, extra = self._credentials(hook, time.time())
        body, framing = task.body, NO_HEADERS  # raw: no call on the hot path
        if hook is not None and hook.format != "raw":
            body, framing = framed(hook.format, task, self._settings.ce_source)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Greenlight-Event": task.event,
            "X-Greenlight-Delivery": task.delivery_id,
            **framing,
            **extra,
            **signature_headers(secrets, task.delivery_id, now_s, body),
        }
        parent, state = attempt_headers(task.trace)
        headers[TRACEPARENT] = traceparent or parent
        if state is not None:
            headers[TRACESTATE] = state
        timeout_s = hook.timeout_s if hook else None
        return Request(task.target.url, body, headers, task.target.trusted, timeout_s)

    def _credentials(
        self, hook: NamedWebhook | None, now_s: float
    ) -> tuple[list[str], dict[str, str]]:
        default = [self._settings.secret.reveal()]
        if hook is None:
            return default, {}
        secrets = [s.reveal() for s in hook.signing_secrets(now_s)] or default
        return secrets, {name: value.reveal() for name, value in hook.headers}

    async def send_test(self, task: DeliveryTask) -> AttemptResult:
        """One attempt and no follow-up (`POST /webhooks/{id}/test`): metrics, a log line and
        a delivery-log record, no retry and no dead letter."""
        result = await self._sender.post(self.prepare(task, int(time.time())))
        self.metrics.attempted(task.target.endpoint, result.outcome, result.duration_s)
        log.info("test attempt", **_attempt_fields(task, result, None))
        await self._delivery_log.write(task.target.url, entry_for(task, result, "tested", None))
        return result

    async def follow_up(self, task: DeliveryTask, result: AttemptResult) -> None:
        hook = self.webhook(task)
        max_retry = hook.max_retry if hook else None
        step = self._held(
            task, result, next_step(task, result, self._settings, time.time(), max_retry)
        )
        await self._record(task, result, step)
        if isinstance(step, Held):
            await self._queue(_waiting(task, result, step.not_before_s))
        elif isinstance(step, RetryAt):
            self.metrics.retry_scheduled(task.target.endpoint)
            await self._queue(_with_attempt(task, result, not_before_s=step.not_before_s))
        elif isinstance(step, GiveUp):
            await self.dead_letter(_with_attempt(task, result), step.reason)
        else:
            self.metrics.delivered(task.target.endpoint, task.published_at_s)
        if self.signals is not None:
            await self.signals.act(task, result)

    def _held(self, task: DeliveryTask, result: AttemptResult, step: Step) -> Step:
        """The step, or Held when it would spend a retry on an endpoint that is down."""
        health = self.health
        if health is None:
            return step
        health.record(task, result)
        spends = isinstance(step, RetryAt) or step == GiveUp("max_retries_exceeded")
        breaker = health.breaker(task.target.url) if spends else None
        if breaker is None:
            return step
        wait_s = health.hold_s(breaker)
        health.note_held(task, 1, wait_s)
        return Held(time.time() + wait_s)

    async def _record(self, task: DeliveryTask, result: AttemptResult, step: Step) -> None:
        """Metrics, the log line and the delivery log record of the attempt that just ran."""
        self.metrics.attempted(task.target.endpoint, result.outcome, result.duration_s)
        self._attempt_log.write(task, result, step)
        entry = entry_for(task, result, *_result_of(step))
        await self._delivery_log.write(task.target.url, entry)

    async def flush(self, timeout_s: float) -> None:
        await self._delivery_log.flush(timeout_s)

    async def dead_letter(self, task: DeliveryTask, reason: Reason) -> None:
        await self.publish_dead_letter(from_task(task, reason))

    async def publish_dead_letter(self, record: DeadLetter) -> None:
        await dlq.publish(self._js, record, self._patience_s, self._record_max_bytes)
        if self._spans is not None:
            self._spans.dead_letter(record)
        endpoint = record.endpoint.id or host_of(record.endpoint.url or "")
        # an invalid event never became a delivery: it has a dead letter but no endpoint
        self.metrics.dead_lettered(endpoint or None, record.reason)


def _with_attempt(
    task: DeliveryTask, result: AttemptResult, not_before_s: float = 0.0
) -> DeliveryTask:
    """The task after this attempt: its record in the history, the next attempt number."""
    record = Attempt(
        attempt=task.attempt,
        at=timestamp(time.time() - result.duration_s),
        status_code=result.status_code,
        error=None if result.ok else result.message,
        duration_ms=result.duration_ms,
        outcome=result.outcome,
    )
    history = (*task.history, record)
    return msgspec.structs.replace(
        task,
        attempt=task.attempt + 1,
        history=history,
        not_before_s=not_before_s,
        rate_slot_s=0.0,  # a retry books a slot of its own
    )


def _waiting(task: DeliveryTask, result: AttemptResult, not_before_s: float) -> DeliveryTask:
    """The task after an attempt its endpoint's outage made free: held, no retry spent."""
    after = _with_attempt(task, result, not_before_s)
    return msgspec.structs.replace(
        after,
        free_attempts=task.free_attempts + 1,
        held_since_s=task.held_since_s or time.time(),
    )


def _result_of(step: Step) -> tuple[Result, str | float | None]:
    if isinstance(step, RetryAt | Held):
        return "retry", step.not_before_s
    if isinstance(step, GiveUp):
        return "dead_letter", step.reason
    return "delivered", None


class AttemptLog:
    """One log line per attempt; repeated failures of one endpoint are throttled."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._throttle = Throttle(FAILURE_LOG_BURST, FAILURE_LOG_WINDOW_S)

    def write(self, task: DeliveryTask, result: AttemptResult, step: Step) -> None:
        if result.ok:
            log.info("attempt", **_attempt_fields(task, result, step))
            return
        verdict = self._throttle.admit(task.target.endpoint, time.monotonic())
        if not verdict.log:
            self._metrics.log_suppressed.inc()
            return
        extra = {"suppressed": verdict.suppressed} if verdict.suppressed else {}
        log.warning("attempt", **_attempt_fields(task, result, step), **extra)


def _attempt_fields(
    task: DeliveryTask, result: AttemptResult, step: Step | None
) -> dict[str, object]:
    """`task.attempt` is the attempt that just ran."""
    return {
        "event_id": task.event_id,
        "delivery_id": task.delivery_id,
        "job_id": task.job_id,
        "_event": task.event,
        "endpoint": task.target.endpoint,
        "trace_id": trace_id_of(task.trace),
        "attempt": task.attempt,
        "status_code": result.status_code,
        "duration_ms": result.duration_ms,
        "outcome": result.outcome,
        "error": None if result.ok else result.message,
        "next": _describe(step),
    }


def _describe(step: Step | None) -> str:
    if step is None:
        return "none (a test)"
    if isinstance(step, RetryAt):
        return f"retry in {max(0.0, step.not_before_s - time.time()):.1f}s"
    if isinstance(step, Held):
        return "held: endpoint down"
    if isinstance(step, GiveUp):
        return f"dead letter ({step.reason})"
    return "delivered"
