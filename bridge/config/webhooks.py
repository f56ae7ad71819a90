"""Named webhooks: the one definition that YAML `webhooks:` entries and the admin API share.

`parse_webhook` reads a mapping (a YAML entry or a JSON body) field by field; every error is
a `ConfigError` of one line naming the field's path, `bridge.yaml: webhooks[2].url: ...` for
YAML and `url: ...` for the API. The same rules hold for both sources, so a webhook the API
accepts is one the YAML would accept too (SPEC §9).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import msgspec

from bridge.config.secret import Secret
from bridge.config.values import (
    ConfigError,
    as_bool,
    as_list,
    as_positive_duration,
    as_secret,
    as_text,
    check_url,
    int_between,
    one_of,
)
from bridge.policy import transform

Scope = Literal["global", "on_demand"]
Format = Literal["raw", "cloudevents", "cloudevents-binary"]  # bridge.policy.framing
Ordering = Literal["none", "job"]
Source = Literal["config", "api"]
# Set by the bridge, or would change how the request is framed or routed.
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "user-agent", "host", "transfer-encoding"}
    | {"connection", "keep-alive", "te", "trailer", "upgrade", "expect", "content-encoding"}
    | {"proxy-authorization", "proxy-connection", "traceparent", "tracestate"}
    | {f"ce-{name}" for name in ("specversion", "id", "source", "type", "time", "subject")}
)
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 1024
MAX_PATTERNS = 256  # `events` globs, and `tenants`
MAX_RATE_PER_S = 100_000.0
ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")


class RetiringSecret(msgspec.Struct, frozen=True):
    """A rotated-out secret that keeps signing beside the new one until `until_s` (Unix)."""

    secret: Secret
    until_s: float


class WebhookOptions(msgspec.Struct, frozen=True, kw_only=True):
    """A webhook's plain fields, the same in memory and in the webhooks bucket: its id, URL,
    filters and per-webhook overrides."""

    id: str
    url: str
    events: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    active: bool = True
    description: str = ""
    scope: Scope = "on_demand"
    transform: str | None = None
    rate_limit: float | None = None
    timeout_s: float | None = None
    max_retry: int | None = None
    format: Format = "raw"
    disabled_reason: str | None = None  # set when the bridge disabled it (SPEC §11)
    ordering: Ordering = "none"


class NamedWebhook(WebhookOptions, frozen=True, kw_only=True):
    """A named webhook: its plain fields, secrets and headers (kept as `Secret`s), where it
    comes from. Empty `secrets` means WEBHOOK_SECRET; `revision` is the KV revision of an API
    webhook."""

    secrets: tuple[Secret, ...] = ()
    headers: tuple[tuple[str, Secret], ...] = ()
    source: Source = "config"
    revision: int = 0
    retiring: tuple[RetiringSecret, ...] = ()

    def signing_secrets(self, now_s: float) -> tuple[Secret, ...]:
        """The current secret first (the Greenlight header's), then those still retiring."""
        retiring = tuple(old.secret for old in self.retiring if old.until_s > now_s)
        return (*self.secrets, *retiring)


def webhook_id(value: Any) -> str:
    text = as_text(value)
    if not ID_PATTERN.fullmatch(text):
        raise ValueError(f"{text[:80]!r}: 1 to 64 letters, digits, '.', '-' or '_'")
    return text


def webhook_url(value: Any) -> str:
    url = as_text(value)
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"longer than {MAX_URL_CHARS} characters")
    check_url(url)
    return url


def _description(value: Any) -> str:
    text = as_text(value)
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise ValueError(f"longer than {MAX_DESCRIPTION_CHARS} characters")
    return text


def _patterns(value: Any) -> tuple[str, ...]:
    items = as_list(value)
    if len(items) > MAX_PATTERNS:
        raise ValueError(f"at most {MAX_PATTERNS} entries")
    if too_long := [item for item in items if len(item) > 256]:
        raise ValueError(f"{too_long[0][:40]!r}...: longer than 256 characters")
    return tuple(dict.fromkeys(items))


def _rate(value: Any) -> float:
    try:
        rate = float(as_text(value))
    except ValueError:
        raise ValueError(f"expected deliveries per second, got {value!r}") from None
    if not 0 < rate <= MAX_RATE_PER_S:
        raise ValueError(f"must be more than 0 and at most {MAX_RATE_PER_S:g} per second")
    return rate


def _transform(value: Any) -> str:
    expression = as_text(value)
    transform.compiled(expression)  # raises ValueError naming what is wrong
    return expression


def headers(value: Any) -> tuple[tuple[str, Secret], ...]:
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of header names to values")
    return tuple((_header_name(k), Secret(_header_value(k, v))) for k, v in value.items())


def _header_name(name: Any) -> str:
    text = str(name)
    lowered = text.lower()
    if not _TOKEN.fullmatch(text):
        raise ValueError(f"{text[:60]!r} is not a valid header name")
    if lowered in RESERVED_HEADERS or lowered.startswith(("x-greenlight-", "webhook-")):
        raise ValueError(f"{text} is set by the bridge and cannot be overridden")
    return text


def _header_value(name: Any, value: Any) -> str:
    text = as_text(value)
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in text):
        raise ValueError(f"{name}: header values may not contain line breaks or control characters")
    return text


# key → (field of NamedWebhook, parser); `secret`/`secrets` are read apart
PARSERS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "id": ("id", webhook_id),
    "url": ("url", webhook_url),
    "description": ("description", _description),
    "scope": ("scope", one_of("global", "on_demand")),
    "events": ("events", _patterns),
    "tenants": ("tenants", _patterns),
    "active": ("active", as_bool),
    "headers": ("headers", headers),
    "transform": ("transform", _transform),
    "rate_limit": ("rate_limit", _rate),
    "timeout": ("timeout_s", as_positive_duration),
    "max_retry": ("max_retry", int_between(0, 100)),
    "format": ("format", one_of(*get_args(Format))),
    "ordering": ("ordering", one_of("none", "job")),
}
API_KEYS = frozenset(PARSERS) | {"secret"}
YAML_KEYS = API_KEYS | {"secrets"}


def parse_webhook(
    node: Any, path: str = "", *, source: Source = "config", allowed: frozenset[str] = YAML_KEYS
) -> NamedWebhook:
    """A webhook from a mapping; `path` prefixes error messages (empty for the API). Keys
    whose value is null are left at their default."""
    if not isinstance(node, dict):
        raise ConfigError(f"{path or 'the body'}: expected a mapping with id and url")
    given = {key: value for key, value in node.items() if value is not None}
    for key in node:
        if key not in allowed:
            raise ConfigError(f"{_at(path, str(key))}: unknown field")
    fields = {PARSERS[k][0]: _field(given, k, PARSERS[k][1], path) for k in PARSERS if k in given}
    for required in ("id", "url"):
        if required not in fields:
            raise ConfigError(f"{_at(path, required)}: missing")
    _check_credentials(fields, path)
    return NamedWebhook(**fields, secrets=_secrets(given, path), source=source)


def _check_credentials(fields: Mapping[str, Any], path: str) -> None:
    """A URL's credentials become an Authorization header: there would be two."""
    if "@" in urlsplit(fields["url"]).netloc and any(
        name.lower() == "authorization" for name, _value in fields.get("headers", ())
    ):
        where = path or "url"
        raise ConfigError(f"{where}: credentials in url and an Authorization header; give one")


def _field(node: Mapping[str, Any], key: str, parse: Callable[[Any], Any], path: str) -> Any:
    try:
        return parse(node[key])
    except ValueError as error:
        raise ConfigError(f"{_at(path, key)}: {error}") from None


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _secrets(node: Mapping[str, Any], path: str) -> tuple[Secret, ...]:
    """`secret: s` or `secrets: [new, old]` (rotation); empty means WEBHOOK_SECRET."""
    if "secret" in node and "secrets" in node:
        raise ConfigError(f"{path or 'secret'}: give either secret or secrets, not both")
    raw = node.get("secrets", [node["secret"]] if "secret" in node else [])
    key = "secrets" if "secrets" in node else "secret"
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise ConfigError(f"{_at(path, key)}: expected a list of strings")
    return tuple(_field({key: s}, key, as_secret, path) for s in raw)


def parse_webhooks(
    node: Any, where: str, *, require_https: bool, global_ids: tuple[str, ...]
) -> tuple[NamedWebhook, ...]:
    """The YAML `webhooks:` list; ids in `global_ids` (DEFAULT_WEBHOOKS) get scope global."""
    if node is None:
        return ()
    if not isinstance(node, list):
        raise ConfigError(f"{where}: webhooks: expected a list")
    hooks = [parse_webhook(item, f"{where}: webhooks[{i}]") for i, item in enumerate(node)]
    seen: set[str] = set()
    for i, hook in enumerate(hooks):
        if hook.id in seen:
            raise ConfigError(f"{where}: webhooks[{i}].id: duplicate id {hook.id!r}")
        seen.add(hook.id)
        if require_https and not hook.url.lower().startswith("https://"):
            raise ConfigError(f"{where}: webhooks[{i}].url: HTTPS is required")
    return tuple(_scoped(hook, global_ids) for hook in hooks)


def _scoped(hook: NamedWebhook, global_ids: tuple[str, ...]) -> NamedWebhook:
    if hook.id in global_ids and hook.scope != "global":
        return msgspec.structs.replace(hook, scope="global")
    return hook
