"""Webhooks from the YAML disabled at run time (SPEC §11), in the KV bucket
`<durable>-disabled`: one key per webhook id, its value the reason.

The YAML is the operator's and read-only at run time, so a receiver's 410 or `disable`, or
`WEBHOOK_DISABLE_AFTER`, cannot rewrite it; instead the webhook is marked here, and every
replica, watching the bucket, routes it as `active: false` (with its `disabled_reason`) until
the key is deleted (`nats kv del <durable>-disabled <id>`), which re-enables it everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from bridge.config.webhooks import NamedWebhook
from bridge.jetstream.bus import Conflict, NoAnswer, nats_errors
from bridge.jetstream.webhook_store import kv_key, webhook_id_of
from bridge.observability.logs import log
from bridge.policy.routing import Router

WATCH_POLL_S = 1.0
WATCH_RETRY_S = 2.0


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
        """Watch the bucket until `stopping`; a failed watch is restarted after a pause."""
        while not stopping.is_set():
            try:
                await self._follow(stopping)
            except Exception as error:  # the webhooks disabled so far stay so meanwhile
                log.warning("disabled webhooks watch restarting", error=str(error) or repr(error))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), WATCH_RETRY_S)

    async def _follow(self, stopping: asyncio.Event) -> None:
        async with nats_errors("cannot watch the disabled webhooks"):
            watcher = await self._kv.watchall()
        try:
            while not stopping.is_set():
                try:
                    async with nats_errors("disabled webhooks watch"):
                        entry = await watcher.updates(timeout=WATCH_POLL_S)  # type: ignore[no-untyped-call]
                except NoAnswer:
                    continue
                if entry is not None:
                    deleted = entry.operation in (KV_DEL, KV_PURGE)
                    reason = None if deleted else (entry.value or b"").decode(errors="replace")
                    self._set(webhook_id_of(entry.key), reason)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]

    def _set(self, webhook_id: str, reason: str | None) -> None:
        if self._reasons.get(webhook_id) == reason:
            return
        if reason is None:
            self._reasons.pop(webhook_id, None)
        else:
            self._reasons[webhook_id] = reason
        self._router.disable_config(self._reasons)
