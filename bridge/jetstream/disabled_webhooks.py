"""Webhooks from the YAML disabled at run time (SPEC §11), in the KV bucket
`<durable>-disabled`: one key per webhook id, its value the reason.

The YAML is the operator's and read-only at run time, so a receiver's 410 or `disable`, or
`WEBHOOK_DISABLE_AFTER`, cannot rewrite it; instead the webhook is marked here, and every
replica, watching the bucket, routes it as `active: false` (with its `disabled_reason`) until
the key is deleted (`nats kv del <durable>-disabled <id>`), which re-enables it everywhere.
"""

from __future__ import annotations

import asyncio

from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from bridge.config.webhooks import NamedWebhook
from bridge.jetstream.bus import Conflict, nats_errors
from bridge.jetstream.kv_watch import follow_bucket
from bridge.jetstream.webhook_store import kv_key, webhook_id_of
from bridge.policy.routing import Router


class DisabledWebhooks:
    """Marks configured webhooks disabled and keeps the router's view of them current."""

    def __init__(self, kv: KeyValue, router: Router) -> None:
        self._kv = kv
        self._router = router
        self._reasons: dict[str, str] = {}

    async def disable(self, hook: NamedWebhook, reason: str) -> bool:
        """False when it was disabled already (by another delivery or replica)."""
        try:
            async with nats_errors(f"cannot disable webhook {hook.id}"):
                await self._kv.create(kv_key(hook.id), reason.encode())
        except Conflict:
            return False
        self._set(hook.id, reason)
        return True

    async def follow(self, stopping: asyncio.Event) -> None:
        """Watch the bucket until `stopping`; the webhooks disabled so far stay so while a
        failed watch is restarted."""
        await follow_bucket(self._kv, stopping, self._take, "disabled webhooks")

    def _take(self, entry: KeyValue.Entry | None) -> None:
        if entry is not None:
            deleted = entry.operation in (KV_DEL, KV_PURGE)
            reason = None if deleted else (entry.value or b"").decode(errors="replace")
            self._set(webhook_id_of(entry.key), reason)

    def _set(self, webhook_id: str, reason: str | None) -> None:
        if self._reasons.get(webhook_id) == reason:
            return
        if reason is None:
            self._reasons.pop(webhook_id, None)
        else:
            self._reasons[webhook_id] = reason
        self._router.disable_config(self._reasons)
