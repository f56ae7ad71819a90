"""Pure routing: an event, the configuration and remembered per-job webhooks → targets.

Targets are the union, de-duplicated by URL and in this order, of the global named webhooks
(`DEFAULT_WEBHOOKS` first, then the other `scope: global` ones, configured before API), the
`DEFAULT_WEBHOOK_URLS`, and the job's own `webhook` entries (each a URL or the id of a named
webhook). A named webhook receives an event only when it is active and its `events` globs and
`tenants` match. Named webhooks come from YAML (fixed) and the admin API (`replace_api`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from bridge.config.settings import Settings
from bridge.config.webhooks import NamedWebhook
from bridge.policy.events import Event

Source = Literal["named", "default", "job"]
Standing = Literal["go", "paused", "gone"]
FIXED_ROUTES_CACHED = 4096
# (name, tenant) keys one webhook may take in the index; past it, its tenants are checked
# per event instead (a webhook may list 256 names and 256 tenants)
MAX_INDEX_KEYS = 64


class Target(msgspec.Struct, frozen=True):
    """One URL an event goes to; `trusted` is False for URLs that came from a producer."""

    url: str
    endpoint: str
    source: Source
    webhook_id: str | None = None
    trusted: bool = True


class Route(msgspec.Struct, frozen=True):
    """Where an event goes, and the per-job webhook ids that name nothing."""

    targets: tuple[Target, ...]
    unknown_ids: tuple[str, ...]


class Router:
    """Routes events against the configured webhooks and those of the API, which
    `replace_api` swaps as they change; each swap starts a fresh index and cache."""

    def __init__(self, settings: Settings) -> None:
        self._configured = self._config = settings.webhooks
        self._api: tuple[NamedWebhook, ...] = ()
        self._global_order = settings.default_webhooks
        self._default_urls = settings.default_webhook_urls
        self._index = _Index(self._config, (), self._global_order)
        self._fixed: dict[tuple[str, str | None], tuple[Target, ...]] = {}

    def replace_api(self, hooks: Iterable[NamedWebhook]) -> None:
        """The API's webhooks now; an id that a configured webhook has is ignored."""
        taken = {hook.id for hook in self._config}
        self._api = tuple(sorted((h for h in hooks if h.id not in taken), key=lambda h: h.id))
        self._index = _Index(self._config, self._api, self._global_order)
        self._fixed = {}

    def disable_config(self, reasons: Mapping[str, str]) -> None:
        """Configured webhooks disabled at run time (SPEC §11): id → `disabled_reason`."""
        self._config = tuple(
            msgspec.structs.replace(hook, active=False, disabled_reason=reasons[hook.id])
            if hook.id in reasons
            else hook
            for hook in self._configured
        )
        self.replace_api(self._api)

    def webhooks(self) -> tuple[NamedWebhook, ...]:
        """Every named webhook: the configured ones, then the API's by id."""
        return tuple(self._index.named.values())

    def route(self, event: Event, remembered: tuple[str, ...] = ()) -> Route:
        fixed = self._fixed_targets(event)
        entries = tuple(dict.fromkeys((*event.webhooks, *remembered)))
        if not entries:
            return Route(targets=fixed, unknown_ids=())
        named = self._index.named
        jobs = [t for e in entries if (t := self._job_target(e, event)) is not None]
        unknown = tuple(e for e in entries if not is_url(e) and e not in named)
        return Route(targets=_unique([*fixed, *jobs]), unknown_ids=unknown)

    def _fixed_targets(self, event: Event) -> tuple[Target, ...]:
        """The global targets: the same for every event of one name and tenant, so they
        are worked out once per pair (glob matching and URL parsing cost per event)."""
        key = (event.name, event.tenant_id)
        found = self._fixed.get(key)
        if found is None:
            if len(self._fixed) >= FIXED_ROUTES_CACHED:
                self._fixed.clear()  # names and tenants come from producers: stay bounded
            named = [named_target(h) for h in self._index.globals_for(event)]
            urls = [Target(url, host_of(url), "default") for url in self._default_urls]
            found = self._fixed[key] = _unique([*named, *urls])
        return found

    def named(self, webhook_id: str) -> NamedWebhook | None:
        return self._index.named.get(webhook_id)

    def _job_target(self, entry: str, event: Event) -> Target | None:
        if is_url(entry):
            return Target(entry, host_of(entry), "job", trusted=False)
        hook = self._index.named.get(entry)
        return named_target(hook) if hook and matches(hook, event) else None


class _Index:
    """Named webhooks by id, and the global ones by event name and tenant: an event is
    matched against the webhooks that name it (for its tenant or any), those of its tenant
    with globs or no event filter, and those with neither: not against all."""

    def __init__(
        self,
        config: tuple[NamedWebhook, ...],
        api: tuple[NamedWebhook, ...],
        global_order: tuple[str, ...],
    ) -> None:
        self.named = {hook.id: hook for hook in (*config, *api)}
        first = {hook_id: rank for rank, hook_id in enumerate(global_order)}
        # DEFAULT_WEBHOOKS first, then as listed (the sort is stable)
        ordered = sorted(self.named.values(), key=lambda hook: first.get(hook.id, len(first)))
        globals_ = [hook for hook in ordered if hook.scope == "global"]
        self._rank = {hook.id: rank for rank, hook in enumerate(globals_)}
        self._by_name_tenant: dict[tuple[str, str], list[NamedWebhook]] = {}
        self._by_name: dict[str, list[NamedWebhook]] = {}
        self._by_tenant: dict[str, list[NamedWebhook]] = {}
        self._wild: list[NamedWebhook] = []
        for hook in globals_:
            self._place(hook)

    def _place(self, hook: NamedWebhook) -> None:
        names = () if any(_is_glob(p) for p in hook.events) else tuple(dict.fromkeys(hook.events))
        tenants = tuple(dict.fromkeys(hook.tenants))
        if max(len(names), 1) * len(tenants) > MAX_INDEX_KEYS:
            tenants = ()  # checked per event by `matches`
        if names and tenants:
            for key in ((name, tenant) for name in names for tenant in tenants):
                self._by_name_tenant.setdefault(key, []).append(hook)
        elif names:
            for name in names:
                self._by_name.setdefault(name, []).append(hook)
        elif tenants:
            for tenant in tenants:
                self._by_tenant.setdefault(tenant, []).append(hook)
        else:
            self._wild.append(hook)

    def globals_for(self, event: Event) -> list[NamedWebhook]:
        """The global webhooks that want `event`, in their configured order."""
        name, tenant = event.name, event.tenant_id
        candidates = [*self._by_name.get(name, ()), *self._wild]
        if tenant is not None:  # a webhook with tenants never wants an event without one
            candidates += self._by_name_tenant.get((name, tenant), ())
            candidates += self._by_tenant.get(tenant, ())
        wanted = [hook for hook in candidates if matches(hook, event)]
        return sorted(wanted, key=lambda hook: self._rank[hook.id])


def matches(hook: NamedWebhook, event: Event) -> bool:
    """Whether a named webhook wants this event: active, event glob and tenant filters."""
    if not hook.active:
        return False
    if hook.events and not any(fnmatchcase(event.name, p) for p in hook.events):
        return False
    return not hook.tenants or event.tenant_id in hook.tenants


def standing(target: Target, hook: NamedWebhook | None) -> Standing:
    """Whether a waiting delivery may go, given its named webhook as configured now (None: no
    longer exists): it may have been paused or deleted since the delivery was queued."""
    if target.webhook_id is None:
        return "go"
    if hook is None:
        return "gone"
    return "go" if hook.active else "paused"


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def is_url(entry: str) -> bool:
    return "://" in entry


def host_of(url: str) -> str:
    """The endpoint label of a raw URL: its host, lower-cased."""
    try:
        return (urlsplit(url).hostname or "unknown").lower()
    except ValueError:
        return "unknown"


def delivery_id(event_id: str, destination: str) -> str:
    """Stable for one (event, URL) pair across retries, restarts and replays."""
    digest = hashlib.sha256(f"{event_id}\n{destination}".encode()).hexdigest()
    return f"dlv_{digest[:32]}"


def _unique(targets: list[Target]) -> tuple[Target, ...]:
    """De-duplicated by URL, the first one kept."""
    unique: dict[str, Target] = {}
    for target in targets:
        unique.setdefault(target.url, target)
    return tuple(unique.values())


def named_target(hook: NamedWebhook) -> Target:
    """API webhooks' URLs came from a client, so they are vetted like per-job URLs."""
    trusted = hook.source == "config"
    return Target(hook.url, hook.id, "named", webhook_id=hook.id, trusted=trusted)
