"""The audit trail's stream: writing a record (acknowledged) and reading the latest ones.

The record and its subject are bridge/policy/audit.py's. A write waits for the stream's
acknowledgement, so an admin request is answered only once its record is stored; a write that
NATS refuses or does not acknowledge within WRITE_PATIENCE_S raises BusError (the admin server
answers 503). Each write carries a fresh Nats-Msg-Id, so retrying through a short outage
stores the record once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bridge.jetstream import bus
from bridge.policy.audit import (
    AUDIT_STREAM,
    AuditRecord,
    decode,
    encode,
    subject_filter,
    subject_for,
)

WRITE_PATIENCE_S = 2.0
Visible = Callable[[AuditRecord], bool]


async def write(js: JetStreamContext, record: AuditRecord) -> None:
    """Store the record; BusError when the stream does not acknowledge it."""
    subject = subject_for(record.action, record.webhook_id)
    await bus.publish(js, subject, encode(record), uuid.uuid4().hex, WRITE_PATIENCE_S)


async def read(
    js: JetStreamContext, *, webhook: str | None, limit: int, visible: Visible
) -> list[AuditRecord]:
    """The latest `limit` records (of one webhook, or all) that `visible` accepts, oldest
    first. nats errors are the caller's to translate (`bus.nats_errors`)."""

    def kept(msg: Msg) -> AuditRecord | None:
        record = decode(msg.data)
        if webhook is not None and record.webhook_id != webhook:
            return None  # another id with the same short hash
        return record if visible(record) else None

    return await bus.read_latest(js, AUDIT_STREAM, subject_filter(webhook), limit, kept)
