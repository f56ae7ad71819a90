"""What the admin API answers, as plain JSON-ready data; secrets and URL passwords redacted.

Everything is read from JetStream (the delivery log, the dead-letter stream), so any replica
gives the same answer.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec
from nats.js import JetStreamContext

from bridge import deadletter, deliverylog
from bridge.config import Settings
from bridge.deadletter import Filter, Stored
from bridge.deliverylog import Entry
from bridge.routing import Router, host_of
from bridge.secrets import redact_url
from bridge.settings_view import redacted

Status = Literal["pending", "success", "error"]
RECENT_ATTEMPTS = 20


def status_of(entry: Entry | None) -> tuple[Status, str]:
    """A webhook's status from its latest attempt: never tried, last one 2xx, or failed."""
    if entry is None:
        return "pending", "no attempt yet"
    return ("success" if entry.outcome == "success" else "error"), entry.message


async def webhooks(js: JetStreamContext, settings: Settings) -> dict[str, Any]:
    """The effective configuration, each configured webhook's status and the latest attempts."""
    configured = _configured(settings)
    stream = settings.delivery_log_stream
    latest = await deliverylog.latest(js, stream, configured)
    return {
        "config": redacted(settings),
        "webhooks": [
            _webhook_status(url, view, latest.get(url)) for url, view in configured.items()
        ],
        "recent_attempts": _plain(await deliverylog.recent(js, stream, RECENT_ATTEMPTS)),
    }


def _configured(settings: Settings) -> dict[str, dict[str, Any]]:
    """URL → how it is configured: the named webhooks, then DEFAULT_WEBHOOK_URLS."""
    found: dict[str, dict[str, Any]] = {}
    for hook in settings.webhooks:
        is_default = hook.id in settings.default_webhooks
        found[hook.url] = {"id": hook.id, "source": "named", "default": is_default}
    for url in settings.default_webhook_urls:
        found.setdefault(url, {"id": host_of(url), "source": "default", "default": True})
    return found


def _webhook_status(url: str, view: dict[str, Any], entry: Entry | None) -> dict[str, Any]:
    status, message = status_of(entry)
    last = _plain([entry])[0] if entry else None
    return {**view, "url": redact_url(url), "status": status, "message": message, "last": last}


async def deliveries(
    js: JetStreamContext, settings: Settings, job_id: str | None, event_id: str | None, limit: int
) -> dict[str, Any]:
    """The delivery log of one job or event (the latest `limit` attempts), else the latest."""
    stream = settings.delivery_log_stream
    if job_id is None and event_id is None:
        entries = await deliverylog.recent(js, stream, limit)
    else:
        entries = await deliverylog.query(js, stream, job_id=job_id, event_id=event_id, limit=limit)
    return {"job_id": job_id, "event_id": event_id, "deliveries": _plain(entries)}


async def dead_letters(
    js: JetStreamContext, settings: Settings, wanted: Filter, limit: int
) -> dict[str, Any]:
    marks = await js.key_value(settings.replays_bucket)
    found = await deadletter.read(js, settings.dlq_stream, marks, wanted)
    return {"count": len(found), "dead_letters": [stored_view(s) for s in found[-limit:]]}


def stored_view(stored: Stored) -> dict[str, Any]:
    """A dead letter with its sequence and replay mark, its URL's password redacted."""
    record: dict[str, Any] = json.loads(deadletter.encode(stored.record))
    endpoint = record["endpoint"]
    endpoint["url"] = redact_url(endpoint["url"]) if endpoint.get("url") else None
    return {"seq": stored.seq, "replayed_at": stored.replayed_at, **record}


async def replay(
    js: JetStreamContext, settings: Settings, router: Router, wanted: Filter, *, dry_run: bool
) -> dict[str, Any]:
    """Replay what the filter matches, or with `dry_run` only say what would be replayed."""
    plan = await deadletter.plan_replay(js, settings, router, wanted)
    chosen = [item.stored.record.delivery_id for item in plan if item.task is not None]
    if not dry_run:
        await deadletter.requeue(js, settings, plan)
    return {
        "dry_run": dry_run,
        "replayed": len(chosen),
        "skipped": len(plan) - len(chosen),
        "delivery_ids": chosen,
    }


def _plain(entries: list[Entry]) -> list[Any]:
    return list(msgspec.to_builtins(entries))
