"""Acting on what receivers signal (SPEC §11; the signals are `bridge.policy.signals`'s).

Each signal acted on is counted (`receiver_signals_total{signal}`), logged once and written to
the audit trail (actor `webhook-bridge`); a disabled webhook also emits `webhook.disabled`.
Acting is idempotent across deliveries and replicas: a webhook is disabled by compare-and-set
only while it is active, a per-job URL forgotten only while its job holds it, so a burst of
410s from one receiver disables it once. Webhooks from the YAML cannot be rewritten: they are
disabled in the router of every replica through a record in the endpoints bucket
(`bridge.jetstream.endpoint_health`). A raw `DEFAULT_WEBHOOK_URLS` URL has nothing to
disable: its signal is logged and counted only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from bridge.config.webhooks import NamedWebhook
from bridge.delivery.attempt import AttemptResult
from bridge.delivery.slots import origin_of
from bridge.jetstream import audit
from bridge.jetstream.bus import BusError, Conflict, JetStream
from bridge.jetstream.endpoint_health import EndpointHealth
from bridge.jetstream.job_webhooks import JobWebhooks
from bridge.jetstream.ops_events import OpsEvents
from bridge.jetstream.webhook_store import WebhookStore
from bridge.observability.logs import log
from bridge.observability.metrics import Metrics
from bridge.policy.audit import Action, AuditRecord, redact_change
from bridge.policy.routing import Router
from bridge.policy.signals import DISABLED_REASONS, Signal, signal_of
from bridge.policy.tasks import DeliveryTask, timestamp

ACTOR = "webhook-bridge"
DISABLE_TRIES = 3
DisableConfig = Callable[[NamedWebhook, str], Awaitable[bool]]


class ReceiverSignals:
    """Acts on the signal of an attempt's answer, if it carries one."""

    def __init__(
        self,
        js: JetStream,
        *,
        router: Router,
        store: WebhookStore,
        jobs: JobWebhooks,
        metrics: Metrics,
        ops: OpsEvents,
        disable_config: DisableConfig,
        health: EndpointHealth,
        disable_after_s: float,
    ) -> None:
        self._health = health
        self._disable_after_s = disable_after_s
        self._js = js
        self._router = router
        self._store = store
        self._jobs = jobs
        self._metrics = metrics
        self._ops = ops
        self._disable_config = disable_config

    async def act(self, task: DeliveryTask, result: AttemptResult) -> None:
        signal = signal_of(result.status_code, result.signal, result.ok)
        if signal is None and not result.ok and self._failing_too_long(task):
            signal = "failing"
        if signal is not None:
            await self.apply(signal, task)

    def _failing_too_long(self, task: DeliveryTask) -> bool:
        """A named webhook whose endpoint has been down for WEBHOOK_DISABLE_AFTER (0: never)."""
        if not self._disable_after_s or task.target.webhook_id is None:
            return False
        breaker = self._health.breaker(task.target.url)
        return breaker is not None and time.time() - breaker.since_s >= self._disable_after_s

    async def apply(self, signal: Signal, task: DeliveryTask) -> None:
        """Never raises for NATS: a signal that cannot be stored is logged and comes again
        with the next attempt."""
        try:
            record = await self._applied(signal, task)
        except BusError as error:
            log.error("receiver signal not applied", signal=signal, error=str(error))
            return
        if record is None:
            return
        self._metrics.receiver_signal(signal)
        log.warning(
            "receiver signal",
            signal=signal,
            action=record.action,
            webhook=record.webhook_id,
            endpoint=origin_of(task.target.url),
            delivery_id=task.delivery_id,
        )
        await audit.write(self._js, record)

    async def _applied(self, signal: Signal, task: DeliveryTask) -> AuditRecord | None:
        """What was done, as its audit record; None when there was nothing (left) to do."""
        tenants = (task.tenant_id,) if task.tenant_id else ()
        if signal == "abort":
            return _record("abort", task.target.webhook_id, tenants, delivery_id=task.delivery_id)
        hook = self._router.named(task.target.webhook_id or "")
        if hook is not None:
            return await self._disable(hook, DISABLED_REASONS[signal])
        job_id, url = task.job_id, task.target.url
        if signal == "gone" and job_id and task.target.source == "job":
            forgotten = await self._jobs.forget(job_id, url)
            return _record("forget", None, tenants, job_id=job_id, url=url) if forgotten else None
        return None

    async def _disable(self, hook: NamedWebhook, reason: str) -> AuditRecord | None:
        if hook.source == "api":
            done = await self._disable_api(hook.id, reason)
        else:
            done = await self._disable_config(hook, reason)
        if not done:
            return None
        self._metrics.webhooks_disabled.labels(reason=reason).inc()
        await self._ops.emit(
            "webhook.disabled", endpoint=origin_of(hook.url), webhook=hook.id, reason=reason
        )
        change = {"active": False, "disabled_reason": reason}
        return _record("disable", hook.id, hook.tenants, **change)

    async def _disable_api(self, webhook_id: str, reason: str) -> bool:
        for _ in range(DISABLE_TRIES):
            found = await self._store.get(webhook_id)
            if found is None or not found[0].active:
                return False
            hook, stored = found
            disabled = msgspec.structs.replace(hook, active=False, disabled_reason=reason)
            try:
                await self._store.update(disabled, stored.created_at)
            except Conflict:
                continue  # changed meanwhile: look again
            return True
        return False


def _record(
    action: Action, webhook_id: str | None, tenants: tuple[str, ...], **change: Any
) -> AuditRecord:
    return AuditRecord(
        at=timestamp(time.time()),
        actor=ACTOR,
        action=action,
        webhook_id=webhook_id,
        tenants=tenants,
        change=redact_change(change),
    )
