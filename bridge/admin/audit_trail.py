"""The admin API's side of the audit trail: record an action, list what a caller may see.

Routes that change something call `audit(...)` after the change and before they answer:
the actor is the request's principal, the change is redacted (bridge/policy/audit.py), and
the answer waits for the stream to store the record. Configuration changes (create, update,
delete, rotate) are counted in `webhook_bridge_config_changes_total{action}`.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from aiohttp import web

from bridge.admin.auth import Principal, principal
from bridge.admin.responses import AuditTrail
from bridge.jetstream import audit as audit_stream
from bridge.jetstream.bus import BusError, JetStream
from bridge.observability.metrics import Metrics
from bridge.policy.audit import CONFIG_ACTIONS, Action, AuditRecord, redact_change
from bridge.policy.tasks import timestamp


class AuditBackend(Protocol):
    """What auditing needs of the admin server's backend."""

    js: JetStream | None
    metrics: Metrics


async def audit(
    request: web.Request,
    backend: AuditBackend,
    action: Action,
    webhook_id: str | None,
    *,
    tenants: tuple[str, ...],
    change: dict[str, Any],
    revision: int | None = None,
) -> None:
    """Store the record of `action` by the request's principal; BusError (503) if not stored.

    `tenants` are the webhook's (empty: every tenant); `change` is the request's fields as
    given, redacted here.
    """
    record = AuditRecord(
        at=timestamp(time.time()),
        actor=principal(request).name,
        action=action,
        webhook_id=webhook_id,
        tenants=tuple(tenants),
        revision=revision,
        change=redact_change(change),
    )
    if backend.js is None:
        raise BusError("not connected to NATS yet: the change cannot be audited")
    await audit_stream.write(backend.js, record)
    if action in CONFIG_ACTIONS:
        backend.metrics.config_changes.labels(action=action).inc()


async def trail(js: JetStream, who: Principal, webhook: str | None, limit: int) -> AuditTrail:
    """The latest `limit` records `who` may see: those of webhooks within its tenants."""

    def visible(record: AuditRecord) -> bool:
        return who.sees_webhook(record.tenants)

    found = await audit_stream.read(js, webhook=webhook, limit=limit, visible=visible)
    return AuditTrail(tuple(found))
