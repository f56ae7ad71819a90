"""API webhooks in the KV bucket `<durable>-webhooks`, one key per id, followed by every replica.

A value is the webhook as JSON, its secrets included: they sign deliveries on every replica,
so the bucket is as private as the NATS account that holds it (protect it with NATS
permissions). The key's revision is the webhook's `revision` and the admin API's ETag; every
change is a compare-and-set on it, so two admins cannot overwrite each other unknowingly.

`follow` watches the bucket and hands the router each change, within milliseconds on every
replica. The catalog is `loading` until the bucket's state has arrived (the bridge consumes
no event before: a global API webhook would miss it), `live` while the watch runs, and
`stale` while it is broken: the last known webhooks keep working, /readyz says so, and the
watch is restarted. It is also restarted every RESYNC_S, a full read of a small bucket, so
that a watch that went quiet (a server restart, a lost consumer) cannot go unnoticed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Literal

import msgspec
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from bridge.config.secret import Secret
from bridge.config.settings import Settings
from bridge.config.webhooks import NamedWebhook, RetiringSecret, WebhookOptions
from bridge.jetstream.bus import JetStream, found, nats_errors
from bridge.jetstream.kv_watch import WATCH_RETRY_S, pause, watch_bucket
from bridge.observability.logs import log
from bridge.policy.routing import Router
from bridge.policy.tasks import timestamp

CatalogState = Literal["loading", "live", "stale"]
RESYNC_S = 10.0


class _Retiring(msgspec.Struct, frozen=True):
    secret: str
    until_s: float


class Stored(WebhookOptions, frozen=True, kw_only=True, omit_defaults=True):
    """A webhook as the bucket keeps it: its plain fields, and its secrets in clear."""

    secret: str
    headers: dict[str, str] = {}
    retiring: tuple[_Retiring, ...] = ()
    created_at: str = ""
    updated_at: str = ""


_DECODER = msgspec.json.Decoder(Stored)
_PLAIN = WebhookOptions.__struct_fields__  # kept as they are; secrets are unwrapped


def encode(hook: NamedWebhook, created_at: str) -> Stored:
    """The bucket's form of a webhook, written now."""
    fields = {f: getattr(hook, f) for f in _PLAIN}
    stored = Stored(
        **fields,
        headers={name: value.reveal() for name, value in hook.headers},
        secret=hook.secrets[0].reveal(),
        retiring=tuple(_Retiring(r.secret.reveal(), r.until_s) for r in hook.retiring),
        created_at=created_at,
        updated_at=timestamp(time.time()),
    )
    return stored


def decode(value: bytes, revision: int) -> tuple[NamedWebhook, Stored]:
    """Raises msgspec.DecodeError (or ValidationError) for a value that is not a webhook."""
    stored = _DECODER.decode(value)
    fields = {f: getattr(stored, f) for f in _PLAIN}
    hook = NamedWebhook(
        **fields,
        headers=tuple((name, Secret(value)) for name, value in stored.headers.items()),
        secrets=(Secret(stored.secret),),
        retiring=tuple(RetiringSecret(Secret(r.secret), r.until_s) for r in stored.retiring),
        source="api",
        revision=revision,
    )
    return hook, stored


class WebhookStore:
    """Reads and changes API webhooks, and keeps the router's copy of them current."""

    def __init__(
        self, kv: KeyValue, router: Router, on_change: Callable[[], None] = lambda: None
    ) -> None:
        self._kv = kv
        self._router = router
        self._on_change = on_change
        self._hooks: dict[str, NamedWebhook] = {}
        self._revisions: dict[str, int] = {}  # deleted ids too: a late echo changes nothing
        self.state: CatalogState = "loading"
        self.loaded = asyncio.Event()

    async def get(self, webhook_id: str) -> tuple[NamedWebhook, Stored] | None:
        """Read from the bucket, not the local copy: read-your-writes on any replica."""
        entry = await found("cannot read webhooks", self._kv.get(kv_key(webhook_id)))
        if entry is None or entry.value is None or entry.revision is None:
            return None
        return decode(entry.value, entry.revision)

    async def create(self, hook: NamedWebhook) -> tuple[NamedWebhook, Stored]:
        """The webhook as stored; raises bus.Conflict when the id exists."""
        stored = encode(hook, timestamp(time.time()))
        async with nats_errors(f"cannot create webhook {hook.id}"):
            revision = await self._kv.create(kv_key(hook.id), msgspec.json.encode(stored))
        return self._applied(msgspec.structs.replace(hook, revision=revision)), stored

    async def update(self, hook: NamedWebhook, created_at: str) -> tuple[NamedWebhook, Stored]:
        """Compare-and-set on `hook.revision`; raises bus.Conflict when it is not the latest."""
        stored = encode(hook, created_at)
        async with nats_errors(f"cannot change webhook {hook.id}"):
            value = msgspec.json.encode(stored)
            revision = await self._kv.update(kv_key(hook.id), value, last=hook.revision)
        return self._applied(msgspec.structs.replace(hook, revision=revision)), stored

    async def delete(self, webhook_id: str, revision: int) -> None:
        """Compare-and-set too; raises bus.Conflict."""
        async with nats_errors(f"cannot delete webhook {webhook_id}"):
            await self._kv.delete(kv_key(webhook_id), last=revision)
        self._removed(webhook_id, revision + 1)

    async def load(self) -> None:
        """Read the bucket once, for a command that routes without following it."""
        await self._follow(asyncio.Event(), resync_at=0.0)

    async def follow(self, stopping: asyncio.Event) -> None:
        """Watch the bucket until `stopping`; restart the watch when it fails, and now and
        then anyway."""
        while not stopping.is_set():
            try:
                await self._follow(stopping, time.monotonic() + RESYNC_S)
            except Exception as error:
                self._broken(error)
                await pause(stopping, WATCH_RETRY_S)

    async def _follow(self, stopping: asyncio.Event, resync_at: float) -> None:
        """One watch: the bucket's state, then its changes until `resync_at`."""
        snapshot: dict[str, tuple[NamedWebhook, int]] | None = {}

        def take(entry: KeyValue.Entry | None) -> None:
            nonlocal snapshot
            snapshot = self._take(entry, snapshot)

        def going() -> bool:
            return snapshot is not None or time.monotonic() < resync_at

        await watch_bucket(self._kv, stopping, take, "webhooks bucket", going=going)

    def _take(
        self, entry: KeyValue.Entry | None, snapshot: dict[str, tuple[NamedWebhook, int]] | None
    ) -> dict[str, tuple[NamedWebhook, int]] | None:
        """Collect the bucket's state until its end marker (None), then apply each change."""
        if entry is None:
            self._load(snapshot or {})
            return None
        revision, webhook_id = entry.revision or 0, webhook_id_of(entry.key)
        if entry.operation in (KV_DEL, KV_PURGE):
            if snapshot is None:
                self._removed(webhook_id, revision)
            return snapshot
        hook = _readable(entry.key, entry.value or b"", revision)
        if snapshot is not None:
            if hook is not None:
                snapshot[webhook_id] = (hook, revision)
            return snapshot
        if hook is not None and revision > self._revisions.get(hook.id, 0):
            self._applied(hook)
        return None

    def _load(self, snapshot: dict[str, tuple[NamedWebhook, int]]) -> None:
        if self.state != "live":
            log.info("webhook catalog live", api_webhooks=len(snapshot))
        self._hooks = {key: hook for key, (hook, _rev) in snapshot.items()}
        self._revisions = {key: revision for key, (_hook, revision) in snapshot.items()}
        self.state = "live"
        self.loaded.set()
        self._publish()

    def _applied(self, hook: NamedWebhook) -> NamedWebhook:
        self._hooks[hook.id] = hook
        self._revisions[hook.id] = max(hook.revision, self._revisions.get(hook.id, 0))
        self._publish()
        return hook

    def _removed(self, webhook_id: str, revision: int) -> None:
        if revision < self._revisions.get(webhook_id, 0):
            return
        self._revisions[webhook_id] = revision
        if self._hooks.pop(webhook_id, None) is not None:
            self._publish()

    def _publish(self) -> None:
        self._router.replace_api(self._hooks.values())
        self._on_change()

    def _broken(self, error: Exception) -> None:
        if self.state == "live":
            self.state = "stale"
            log.warning("webhook catalog stale: keeping the last known webhooks", error=str(error))


_DOT, _ENCODED_DOT = ".", "=2E"  # ids never hold '=', KV keys may


def kv_key(webhook_id: str) -> str:
    """The id as a KV key: keys may not start or end with '.', nor hold '..' (an empty
    subject token), which ids may; their dots are then written `=2E`."""
    if webhook_id.startswith(_DOT) or webhook_id.endswith(_DOT) or ".." in webhook_id:
        return webhook_id.replace(_DOT, _ENCODED_DOT)
    return webhook_id


def webhook_id_of(key: str) -> str:
    return key.replace(_ENCODED_DOT, _DOT)


def _readable(key: str, value: bytes, revision: int) -> NamedWebhook | None:
    try:
        return decode(value, revision)[0]
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as error:
        log.error("unreadable webhook in the bucket, ignored", key=key, error=str(error)[:200])
        return None


async def current_router(js: JetStream, settings: Settings) -> Router:
    """A router with the configured webhooks and the API's as the bucket holds them now."""
    router = Router(settings)
    async with nats_errors("cannot read the webhooks bucket"):
        kv = await js.key_value(settings.webhooks_bucket)
    await WebhookStore(kv, router).load()
    return router
