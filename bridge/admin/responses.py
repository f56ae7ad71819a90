"""The admin API's bodies as types: what each route answers, and what `POST /dlq/replay` takes.

The routes encode these Structs, and the OpenAPI document's schemas are generated from them
(bridge/admin/openapi.py), so the document cannot drift from the answers. Field names, nesting and
which fields are null or left out are the public contract of docs/contract.md §6.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from bridge.config.webhooks import Format
from bridge.jetstream.delivery_log import Entry
from bridge.jetstream.endpoint_health import EndpointStatus
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


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook of `GET /webhooks` (URL password redacted) and how its latest attempt went.
    `default`: it receives every matching event (scope global, or a DEFAULT_WEBHOOK_URLS URL)."""

    id: str
    source: Literal["config", "api", "env"]
    default: bool
    url: str
    status: WebhookStatus
    message: str
    last: Entry | None
    active: bool
    disabled_reason: str | None
    revision: int | None
    scope: Literal["global", "on_demand"]
    events: tuple[str, ...]
    tenants: tuple[str, ...]
    description: str


class WebhookDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One named webhook as the API shows it: no secret, except `secret` once, when the bridge
    generated it (create, rotate). Header values are redacted. `public_key`: `whpk_...`, what
    receivers verify `v1a,` signatures with, when the current secret is an ed25519 key."""

    id: str
    source: Literal["config", "api"]
    url: str
    description: str
    scope: Literal["global", "on_demand"]
    events: tuple[str, ...]
    tenants: tuple[str, ...]
    active: bool
    disabled_reason: str | None
    headers: dict[str, str]
    transform: str | None
    rate_limit: float | None
    timeout: str | None
    max_retry: int | None
    format: Format
    ordering: Literal["none", "job"]
    revision: int | None
    created_at: str | None
    updated_at: str | None
    previous_secret_until: str | None
    public_key: str | None
    status: WebhookStatus
    message: str
    attempts: tuple[Entry, ...]
    secret: str | msgspec.UnsetType = msgspec.UNSET


class WebhookInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The body of `POST /webhooks` (`id` and `url` required) and, every field optional, of
    `PATCH /webhooks/{id}` (a JSON merge patch: null removes). `secret` only on create; without
    it the bridge generates one and shows it once. `timeout`: a duration (`10s`) or seconds."""

    id: str | None = None
    url: str | None = None
    description: str | None = None
    scope: Literal["global", "on_demand"] | None = None
    events: list[str] | None = None
    tenants: list[str] | None = None
    active: bool | None = None
    secret: str | None = None
    headers: dict[str, str] | None = None
    transform: str | None = None
    rate_limit: float | None = None
    timeout: str | float | None = None
    max_retry: int | None = None
    format: Format | None = None
    ordering: Literal["none", "job"] | None = None


class RotateRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The optional body of a rotation: the new secret; without it the bridge generates one."""

    secret: str | None = None


class Rotated(msgspec.Struct, frozen=True):
    """A rotation: the new secret (shown once when generated; never an ed25519 private key,
    which stays in the bridge) or its `public_key`, and until when the old one signs."""

    id: str
    revision: int
    previous_secret_until: str
    secret: str | msgspec.UnsetType = msgspec.UNSET
    public_key: str | msgspec.UnsetType = msgspec.UNSET


class Tested(msgspec.Struct, frozen=True):
    """How a test send went: one attempt, never retried."""

    status: Literal["success", "error"]
    status_code: int | None
    message: str
    duration_ms: int
    delivery_id: str


class Readiness(msgspec.Struct, frozen=True):
    """Ready or not; `webhooks`: the API webhooks are `loading`, `live` (followed) or `stale`
    (the bucket cannot be read: the last known ones keep working)."""

    status: str
    webhooks: str | None = None


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


class Caller(msgspec.Struct, frozen=True):
    """Who the bearer token stands for (`anonymous` while no token is configured): the console
    shows write controls only when `can_write`."""

    name: str
    role: Literal["admin", "viewer"]
    tenants: tuple[str, ...] | None
    can_write: bool


class Stats(msgspec.Struct, frozen=True):
    """The console's overview, from the answering replica's own counters: rates over the last
    `window_s` seconds (`success_ratio` null when no attempt was made in it), the consumers'
    backlog, and the dead letters stored (every replica's, replayed ones included)."""

    at: str
    window_s: float
    deliveries_per_s: float
    attempts_per_s: float
    dead_lettered_per_s: float
    success_ratio: float | None
    lag: int
    oldest_pending_s: float
    retries_pending: int
    inflight: int
    dead_letters: int


class Bucket(msgspec.Struct, frozen=True):
    """Attempts that started in [start, start + bucket_s), and how many of them got a 2xx."""

    start: str
    attempts: int
    succeeded: int


class History(msgspec.Struct, frozen=True):
    """A webhook's attempts over the last `within_s` seconds in equal buckets, oldest first
    (attempts to its URL, whichever webhook or job they were for)."""

    id: str
    within_s: float
    bucket_s: float
    buckets: tuple[Bucket, ...]


class Endpoints(msgspec.Struct, frozen=True):
    """`GET /endpoints`: the endpoints (origins) this replica knows of that are not healthy,
    recovering under an adaptive limit, or holding deliveries (SPEC §11)."""

    endpoints: tuple[EndpointStatus, ...]
