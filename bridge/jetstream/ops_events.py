"""Operational events (SPEC §11): `endpoint.down`, `endpoint.recovered`, `webhook.disabled`.

Each is a JSON record `{kind, endpoint, webhook, reason, time}` stored on the stream
`GREENLIGHT_WEBHOOKS_OPS`, subject `greenlight.webhooks.ops.<kind>` (outside the events
stream's subjects, so the bridge never consumes its own ops events as events), and queued,
as an ordinary delivery task (signed, retried, dead-lettered like any), to each webhook named
in `OPS_WEBHOOKS`. The replica that makes a change emits its event, once.
"""

from __future__ import annotations

import time
import uuid

import msgspec

from bridge.jetstream import bus
from bridge.jetstream.bus import BusError, JetStream
from bridge.observability.logs import log
from bridge.policy.ops import Kind, OpsEvent, subject_for
from bridge.policy.routing import Router, delivery_id, named_target
from bridge.policy.tasks import DeliveryTask, encode_task, timestamp

PUBLISH_PATIENCE_S = 2.0


class OpsEvents:
    """Stores each event and queues it for the `OPS_WEBHOOKS`; never raises (an event that
    cannot be stored is logged: the change it reports has happened anyway)."""

    def __init__(
        self, js: JetStream, router: Router, ops_webhooks: tuple[str, ...], tasks_subject: str
    ) -> None:
        self._js = js
        self._router = router
        self._ops_webhooks = ops_webhooks
        self._tasks_subject = tasks_subject

    async def emit(
        self, kind: Kind, *, endpoint: str | None, webhook: str | None, reason: str
    ) -> None:
        now_s = time.time()
        event = OpsEvent(
            kind=kind, endpoint=endpoint, webhook=webhook, reason=reason, time=timestamp(now_s)
        )
        event_id = f"ops-{uuid.uuid4().hex}"
        body = msgspec.json.encode(event)
        try:
            await bus.publish(self._js, subject_for(kind), body, event_id, PUBLISH_PATIENCE_S)
            for task in self._tasks(kind, event_id, body, now_s):
                payload = encode_task(task)
                await bus.publish(
                    self._js, self._tasks_subject, payload, task.message_id, PUBLISH_PATIENCE_S
                )
        except BusError as error:
            log.error("operational event not stored", kind=kind, error=str(error))

    def _tasks(self, kind: str, event_id: str, body: bytes, now_s: float) -> list[DeliveryTask]:
        tasks = []
        for webhook_id in self._ops_webhooks:
            hook = self._router.named(webhook_id)
            if hook is None:
                log.warning("OPS_WEBHOOKS names an unknown webhook", webhook=webhook_id)
                continue
            target = named_target(hook)
            tasks.append(
                DeliveryTask(
                    delivery_id=delivery_id(event_id, target.url),
                    event_id=event_id,
                    event=kind,
                    job_id=None,
                    tenant_id=None,
                    target=target,
                    body=body,
                    published_at_s=now_s,
                )
            )
        return tasks
