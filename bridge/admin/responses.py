"""The admin API's bodies as types: what each route answers, and what `POST /dlq/replay` takes.

The routes encode these Structs, and the OpenAPI document's schemas are generated from them
(bridge/admin/openapi.py), so the document cannot drift from the answers. Field names, nesting and
which fields are null or left out are the public contract of docs/contract.md §6.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from bridge.jetstream.delivery_log import Entry
from bridge.policy.audit import AuditRecord
from bridge.policy.dead_letter import DeadLetter

WebhookStatus = Literal["pending", "success", "error"]
MAX_LIMIT = 1000  # the most entries `?limit=` may ask for


class Status(msgspec.Struct, frozen=True):
    """Liveness or readiness."""

    status: str


class Error(msgspec.Struct, frozen=True):
    """Why a request failed, in one line."""

    error: str


class Webhook(msgspec.Struct, frozen=True):
    """A configured webhook (URL password redacted) and how its latest attempt went."""

    id: str
    source: Literal["named", "default"]
    default: bool
    url: str
    status: WebhookStatus
    message: str
    last: Entry | None


class Webhooks(msgspec.Struct, frozen=True):
    """The effective configuration (secrets redacted), each webhook, the latest attempts."""

    config: dict[str, Any]
    webhooks: tuple[Webhook, ...]
    recent_attempts: tuple[Entry, ...]


class Deliveries(msgspec.Struct, frozen=True):
    """The delivery log of a job or an event (both null: the latest attempts)."""

    job_id: str | None
    event_id: str | None
    deliveries: tuple[Entry, ...]


# Positional, so that `seq` and `replayed_at` come before the record's own fields.
class StoredDeadLetter(DeadLetter, frozen=True, kw_only=False):
    """A dead letter (URL password redacted) with its stream sequence and replay mark."""

    seq: int
    replayed_at: str | None


class DeadLetters(msgspec.Struct, frozen=True):
    """How many dead letters match, and the latest `limit` of them."""

    count: int
    dead_letters: tuple[StoredDeadLetter, ...]


class ReplayRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which dead letters to replay; every field optional, null is the same as absent."""

    event: str | None = None
    endpoint: str | None = None
    since: str | None = None
    all: bool | None = None
    dry_run: bool | None = None


class ReplayResult(msgspec.Struct, frozen=True):
    """What a replay did, or with `dry_run` would do."""

    dry_run: bool
    replayed: int
    skipped: int
    delivery_ids: tuple[str, ...]


class AuditTrail(msgspec.Struct, frozen=True):
    """The latest audit records the caller may see, oldest first."""

    audit: tuple[AuditRecord, ...]
