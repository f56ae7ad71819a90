"""Pure routing: an event, the configuration and remembered per-job webhooks → targets.

Targets are the union, de-duplicated by URL and in this order, of `DEFAULT_WEBHOOKS` (named
webhooks), `DEFAULT_WEBHOOK_URLS`, and the job's own `webhook` entries (each a URL or the id of
a named webhook). A named webhook receives an event only when it is active and its `events`
globs and `tenants` match.
"""

from __future__ import annotations

import hashlib
from fnmatch import fnmatchcase
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from bridge.config.settings import Settings
from bridge.config.webhooks import NamedWebhook
from bridge.policy.events import Event

Source = Literal["named", "default", "job"]
FIXED_ROUTES_CACHED = 4096


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
    """Routes events against one configuration."""

    def __init__(self, settings: Settings) -> None:
        self._named = {hook.id: hook for hook in settings.webhooks}
        self._defaults = [self._named[i] for i in settings.default_webhooks]
        self._default_urls = settings.default_webhook_urls
        self._fixed: dict[tuple[str, str | None], tuple[Target, ...]] = {}

    def route(self, event: Event, remembered: tuple[str, ...] = ()) -> Route:
        fixed = self._fixed_targets(event)
        entries = tuple(dict.fromkeys((*event.webhooks, *remembered)))
        if not entries:
            return Route(targets=fixed, unknown_ids=())
        jobs = [t for e in entries if (t := self._job_target(e, event)) is not None]
        unknown = tuple(e for e in entries if not is_url(e) and e not in self._named)
        return Route(targets=_unique([*fixed, *jobs]), unknown_ids=unknown)

    def _fixed_targets(self, event: Event) -> tuple[Target, ...]:
        """The configured targets: the same for every event of one name and tenant, so they
        are worked out once per pair (glob matching and URL parsing cost per event)."""
        key = (event.name, event.tenant_id)
        found = self._fixed.get(key)
        if found is None:
            if len(self._fixed) >= FIXED_ROUTES_CACHED:
                self._fixed.clear()  # names and tenants come from producers: stay bounded
            named = [_named_target(h) for h in self._defaults if matches(h, event)]
            urls = [Target(url, host_of(url), "default") for url in self._default_urls]
            found = self._fixed[key] = _unique([*named, *urls])
        return found

    def named(self, webhook_id: str) -> NamedWebhook | None:
        return self._named.get(webhook_id)

    def _job_target(self, entry: str, event: Event) -> Target | None:
        if is_url(entry):
            return Target(entry, host_of(entry), "job", trusted=False)
        hook = self._named.get(entry)
        return _named_target(hook) if hook and matches(hook, event) else None


def matches(hook: NamedWebhook, event: Event) -> bool:
    """Whether a named webhook wants this event: active, event glob and tenant filters."""
    if not hook.active:
        return False
    if hook.events and not any(fnmatchcase(event.name, p) for p in hook.events):
        return False
    return not hook.tenants or event.tenant_id in hook.tenants


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


def _named_target(hook: NamedWebhook) -> Target:
    return Target(hook.url, hook.id, "named", webhook_id=hook.id)
