"""The effective configuration as plain data, secrets and URL passwords redacted.

Used by the start-up log line and `webhook-bridge config check`; nothing else prints config.
"""

from __future__ import annotations

from typing import Any

from bridge.config.durations import format_duration
from bridge.config.proxy import ProxyUrl
from bridge.config.secret import REDACTED, Secret, redact_url
from bridge.config.settings import Settings
from bridge.config.tokens import ApiToken
from bridge.config.webhooks import NamedWebhook
from bridge.policy import asymmetric


def redacted(settings: Settings) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for field in settings.__struct_fields__:
        value = getattr(settings, field)
        if field == "webhooks":
            view[field] = [_webhook(hook) for hook in value]
        elif field == "tokens":
            view[field] = [_token(entry) for entry in value]
        elif field.endswith("_s") and isinstance(value, float):
            view[field.removesuffix("_s")] = format_duration(value)
        else:
            view[field] = _plain(value)
    view["nats_urls"] = [redact_url(url) for url in settings.nats_urls]
    view["default_webhook_urls"] = [redact_url(url) for url in settings.default_webhook_urls]
    view["otel_endpoint"] = redact_url(settings.otel_endpoint or "") or None
    return view


def _webhook(hook: NamedWebhook) -> dict[str, Any]:
    keys = [secret.reveal() for secret in hook.secrets]
    return {
        "id": hook.id,
        "url": redact_url(hook.url),
        "secrets": [REDACTED] * len(hook.secrets),
        "events": list(hook.events),
        "tenants": list(hook.tenants),
        "headers": {name: REDACTED for name, _value in hook.headers},
        "active": hook.active,
        "description": hook.description,
        "scope": hook.scope,
        "transform": hook.transform,
        "rate_limit": hook.rate_limit,
        "timeout": format_duration(hook.timeout_s) if hook.timeout_s else None,
        "max_retry": hook.max_retry,
        "format": hook.format,
        "public_keys": [asymmetric.public_key(k) for k in keys if asymmetric.is_private_key(k)],
        "ordering": hook.ordering,
    }


def _token(entry: ApiToken) -> dict[str, Any]:
    return {
        "name": entry.name,
        "token": REDACTED,
        "role": entry.role,
        "tenants": list(entry.tenants),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, ProxyUrl):
        return value.shown
    if isinstance(value, tuple):
        return list(value)
    return value
