"""What the admin API answers, as the typed bodies of bridge/admin/responses.py; secrets and URL
passwords redacted.

Everything is read from JetStream (the delivery log, the dead-letter stream), so any replica
gives the same answer.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from bridge.admin.responses import (
    DeadLetters,
    Deliveries,
    ReplayResult,
    StoredDeadLetter,
    Webhook,
    Webhooks,
    WebhookStatus,
)
from bridge.config.secret import redact_url
from bridge.config.settings import Settings
from bridge.config.view import redacted
from bridge.config.webhooks import NamedWebhook
from bridge.jetstream import delivery_log, dlq
from bridge.jetstream.bus import JetStream
from bridge.jetstream.delivery_log import Entry, Keep
from bridge.jetstream.dlq import Filter, Stored
from bridge.policy.routing import Router, host_of

RECENT_ATTEMPTS = 20


class _Configured(msgspec.Struct, frozen=True):
    """How a URL is configured: a named webhook (YAML or API), or a DEFAULT_WEBHOOK_URLS URL."""

    id: str
    source: Literal["config", "api", "env"]
    hook: NamedWebhook | None = None  # None: a DEFAULT_WEBHOOK_URLS URL


def status_of(entry: Entry | None) -> tuple[WebhookStatus, str]:
    """A webhook's status from its latest attempt: never tried, last one 2xx, or failed."""
    if entry is None:
        return "pending", "no attempt yet"
    return ("success" if entry.outcome == "success" else "error"), entry.message


async def webhooks(
    js: JetStream, settings: Settings, router: Router, keep: Keep = lambda _entry: True
) -> Webhooks:
    """The effective configuration, each webhook's status and the latest attempts (those
    `keep` accepts)."""
    configured = _configured(settings, router.webhooks())
    stream = settings.delivery_log_stream
    latest = await delivery_log.latest(js, stream, configured)
    return Webhooks(
        config=redacted(settings),
        webhooks=tuple(_webhook(url, how, latest.get(url)) for url, how in configured.items()),
        recent_attempts=tuple(await delivery_log.recent(js, stream, RECENT_ATTEMPTS, keep)),
    )


def _configured(settings: Settings, named: tuple[NamedWebhook, ...]) -> dict[str, _Configured]:
    """URL → how it is configured: the named webhooks, then DEFAULT_WEBHOOK_URLS."""
    found: dict[str, _Configured] = {}
    for hook in named:
        found.setdefault(hook.url, _Configured(hook.id, hook.source, hook))
    for url in settings.default_webhook_urls:
        found.setdefault(url, _Configured(host_of(url), "env"))
    return found


def _webhook(url: str, how: _Configured, entry: Entry | None) -> Webhook:
    status, message = status_of(entry)
    hook = how.hook or NamedWebhook(id=how.id, url=url, scope="global")
    return Webhook(
        id=how.id,
        source=how.source,
        default=hook.scope == "global",
        url=redact_url(url),
        status=status,
        message=message,
        last=entry,
        active=hook.active,
        disabled_reason=hook.disabled_reason,
        revision=hook.revision if how.source == "api" else None,
        scope=hook.scope,
        events=hook.events,
        tenants=hook.tenants,
        description=hook.description,
    )


async def deliveries(
    js: JetStream,
    settings: Settings,
    job_id: str | None,
    event_id: str | None,
    limit: int,
    *,
    keep: Keep = lambda _entry: True,
) -> Deliveries:
    """The delivery log of one job or event (the latest `limit` attempts `keep` accepts), else
    the latest."""
    stream = settings.delivery_log_stream
    if job_id is None and event_id is None:
        entries = await delivery_log.recent(js, stream, limit, keep)
    else:
        entries = await delivery_log.query(
            js, stream, job_id=job_id, event_id=event_id, limit=limit, keep=keep
        )
    return Deliveries(job_id, event_id, tuple(entries))


async def dead_letters(
    js: JetStream, settings: Settings, wanted: Filter, limit: int
) -> DeadLetters:
    marks = await js.key_value(settings.replays_bucket)
    found = await dlq.read(js, settings.dlq_stream, marks, wanted)
    return DeadLetters(len(found), tuple(stored_view(s) for s in found[-limit:]))


def stored_view(stored: Stored) -> StoredDeadLetter:
    """A dead letter with its sequence and replay mark, its URL's password redacted."""
    record = stored.record
    url = record.endpoint.url
    endpoint = msgspec.structs.replace(record.endpoint, url=redact_url(url) if url else None)
    fields = {**msgspec.structs.asdict(record), "endpoint": endpoint}
    return StoredDeadLetter(seq=stored.seq, replayed_at=stored.replayed_at, **fields)


async def replay(
    js: JetStream, settings: Settings, router: Router, wanted: Filter, *, dry_run: bool
) -> ReplayResult:
    """Replay what the filter matches, or with `dry_run` only say what would be replayed."""
    plan = await dlq.plan_replay(js, settings, router, wanted)
    chosen = tuple(item.stored.record.delivery_id for item in plan if item.task is not None)
    if not dry_run:
        await dlq.requeue(js, settings, plan)
    return ReplayResult(dry_run, len(chosen), len(plan) - len(chosen), chosen)
