"""Typed settings: defaults ← YAML file ← environment, parsed and validated once at start.

Every setting is declared once, as a field of `Settings`: its type, and in an `Env` its
environment name (SPEC §5), default and parser, with what it means as the field's docstring
(the configuration reference in docs/contract.md is rendered from these). The YAML file may
carry the same settings under the lower-cased name, plus the `webhooks:` list. Any bad value
raises `ConfigError` with one line that names the variable or the YAML path.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, NamedTuple, get_type_hints

import msgspec
import yaml

from bridge.config.proxy import ProxyUrl, parse_proxy_url
from bridge.config.secret import Secret, redact_url
from bridge.config.tokens import ApiToken, check_distinct, parse_tokens
from bridge.config.values import (
    ConfigError,
)
from bridge.config.values import (
    as_bool as _bool,
)
from bridge.config.values import (
    as_duration as _duration,
)
from bridge.config.values import (
    as_list as _list,
)
from bridge.config.values import (
    as_optional as _optional,
)
from bridge.config.values import (
    as_optional_secret as _optional_secret,
)
from bridge.config.values import (
    as_positive_duration as _positive_duration,
)
from bridge.config.values import (
    as_shared_secret as _secret,
)
from bridge.config.values import (
    as_text as _text,
)
from bridge.config.values import (
    check_url as _check_url,
)
from bridge.config.values import (
    int_between as _int_at_least,
)
from bridge.config.values import (
    one_of as _choice,
)
from bridge.config.webhooks import NamedWebhook, parse_webhooks
from bridge.policy import urls


class Env(NamedTuple):
    """Where a setting comes from: its environment variable (the YAML key is its lower case),
    the default, and the parser that turns a raw value into the field's type."""

    name: str
    default: Any
    parse: Callable[[Any], Any]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The effective configuration of one bridge process."""

    nats_urls: Annotated[tuple[str, ...], Env("NATS_URL", "nats://127.0.0.1:4222", _nats_urls)]
    """NATS server(s), comma-separated"""
    nats_stream: Annotated[str, Env("NATS_STREAM", "GREENLIGHT_EVENTS", _stream_name)]
    """events stream, created if missing (file storage)"""
    nats_subjects: Annotated[
        tuple[str, ...], Env("NATS_SUBJECTS", "greenlight.events.>", _subjects)
    ]
    """subjects of the events stream; the part after the prefix names the event"""
    nats_durable: Annotated[str, Env("NATS_DURABLE", "webhook-bridge", _stream_name)]
    """durable consumer shared by all replicas; also names `<durable>-tasks`, `<durable>-jobs`,
    `<durable>-replays`, `<durable>-webhooks`, `<durable>-rates`"""
    nats_creds: Annotated[str | None, Env("NATS_CREDS", "", _optional_file)]
    """`.creds` file (JWT + nkey)"""
    nats_user: Annotated[str | None, Env("NATS_USER", "", _optional)]
    """user name (with `NATS_PASSWORD`)"""
    nats_password: Annotated[Secret | None, Env("NATS_PASSWORD", "", _optional_secret)]
    """password (secret)"""
    nats_token: Annotated[Secret | None, Env("NATS_TOKEN", "", _optional_secret)]
    """token (secret)"""
    nats_tls_ca: Annotated[str | None, Env("NATS_TLS_CA", "", _optional_file)]
    """CA that verifies the NATS server"""
    nats_tls_cert: Annotated[str | None, Env("NATS_TLS_CERT", "", _optional_file)]
    """client certificate (needs `NATS_TLS_KEY`)"""
    nats_tls_key: Annotated[str | None, Env("NATS_TLS_KEY", "", _optional_file)]
    """client certificate's key"""
    nats_ack_wait_s: Annotated[float, Env("NATS_ACK_WAIT", "30s", _positive_duration)]
    """redelivery deadline of unacked messages (at least twice `WEBHOOK_TIMEOUT` + 5s is used)"""
    nats_stream_max_age_s: Annotated[float, Env("NATS_STREAM_MAX_AGE", "7d", _positive_duration)]
    """retention of the events stream when the bridge creates it"""
    nats_replicas: Annotated[int, Env("NATS_REPLICAS", 1, _int_at_least(1, 5))]
    """copies of every stream and KV bucket the bridge creates (1 to 5; 3 on a 3-node cluster);
    consumers follow their stream"""
    max_event_bytes: Annotated[
        int, Env("MAX_EVENT_BYTES", 1024 * 1024, _int_at_least(64, 64 * 1024 * 1024))
    ]
    """bigger events are dead-lettered (`invalid_event`); capped at the server's `max_payload`
    less 64 KiB"""
    dlq_stream: Annotated[str, Env("DLQ_STREAM", "GREENLIGHT_WEBHOOKS_DLQ", _stream_name)]
    """dead-letter stream (subjects `greenlight.webhooks.dlq.>`)"""
    dlq_max_age_s: Annotated[float, Env("DLQ_MAX_AGE", "14d", _positive_duration)]
    """dead-letter retention"""
    delivery_log_stream: Annotated[
        str, Env("DELIVERY_LOG_STREAM", "GREENLIGHT_WEBHOOKS_LOG", _stream_name)
    ]
    """delivery log: one record per attempt (`GET /deliveries`)"""
    delivery_log_max_age_s: Annotated[float, Env("DELIVERY_LOG_MAX_AGE", "7d", _positive_duration)]
    """delivery log retention"""
    audit_max_age_s: Annotated[float, Env("AUDIT_MAX_AGE", "90d", _positive_duration)]
    """retention of the audit trail (stream `GREENLIGHT_WEBHOOKS_AUDIT`, `GET /audit`)"""
    job_webhook_ttl_s: Annotated[float, Env("JOB_WEBHOOK_TTL", "7d", _positive_duration)]
    """how long a job's per-job webhooks are remembered"""
    job_webhook_max: Annotated[int, Env("JOB_WEBHOOK_MAX", 10, _int_at_least(1, 1000))]
    """per-job `webhook` entries an event may carry and a job remembers (each at most 2048
    chars); the rest are dead-lettered (`too_many_webhooks`)"""
    event_max_failures: Annotated[int, Env("EVENT_MAX_FAILURES", 5, _int_at_least(1, 1000))]
    """deliveries of an event whose handling failed before it is dead-lettered
    (`handler_error`) and acked; NATS outages do not count"""
    default_webhooks: Annotated[tuple[str, ...], Env("DEFAULT_WEBHOOKS", "", _list)]
    """ids of named webhooks (YAML `webhooks:`) applied to every event"""
    default_webhook_urls: Annotated[tuple[str, ...], Env("DEFAULT_WEBHOOK_URLS", "", _urls)]
    """raw URLs applied to every event, comma-separated"""
    timeout_s: Annotated[float, Env("WEBHOOK_TIMEOUT", "15s", _positive_duration)]
    """per attempt, connect to last byte"""
    max_retry: Annotated[int, Env("WEBHOOK_MAX_RETRY", 4, _int_at_least(0, 100))]
    """retries before dead-lettering (at most this + 1 attempts)"""
    retry_min_wait_s: Annotated[float, Env("WEBHOOK_RETRY_MIN_WAIT", "1s", _positive_duration)]
    """first back-off; retry n waits min(max, min * 2^(n-1)) ±20%"""
    retry_max_wait_s: Annotated[float, Env("WEBHOOK_RETRY_MAX_WAIT", "30s", _positive_duration)]
    """longest back-off; also caps `Retry-After`"""
    secret: Annotated[Secret, Env("WEBHOOK_SECRET", DEFAULT_SECRET, _secret)]
    """HMAC secret of both signatures (a warning is logged while it is the default);
    `whsec_<base64>` accepted, an ed25519 `whsk_` key only on named webhooks"""
    ce_source: Annotated[str, Env("WEBHOOK_CE_SOURCE", "/webhook-bridge", _ce_source)]
    """`source` of the CloudEvents sent to webhooks with `format: cloudevents` or
    `cloudevents-binary` (a URI-reference)"""
    concurrency: Annotated[int, Env("WEBHOOK_CONCURRENCY", 256, _int_at_least(1, 100_000))]
    """attempts in flight per process"""
    endpoint_concurrency: Annotated[
        int, Env("WEBHOOK_ENDPOINT_CONCURRENCY", 16, _int_at_least(1, 100_000))
    ]
    """attempts in flight per endpoint URL per process"""
    origin_concurrency: Annotated[
        int, Env("WEBHOOK_ORIGIN_CONCURRENCY", 0, _int_at_least(0, 100_000))
    ]
    """attempts in flight per origin (scheme, host, port) per process, shared by all its URLs;
    `0` = four times `WEBHOOK_ENDPOINT_CONCURRENCY`"""
    breaker_failures: Annotated[int, Env("WEBHOOK_BREAKER_FAILURES", 5, _int_at_least(1, 1000))]
    """consecutive failures (connection error, timeout, 5xx, 429) that open an endpoint's
    breaker: its deliveries are held, and one probe at a time checks it"""
    probe_interval_s: Annotated[float, Env("WEBHOOK_PROBE_INTERVAL", "5s", _positive_duration)]
    """first wait between probes of an open endpoint; it doubles after each failed probe, up
    to a minute (or this, if longer)"""
    hold_max_s: Annotated[float, Env("WEBHOOK_HOLD_MAX", "24h", _positive_duration)]
    """how long a delivery may wait for its endpoint to come back before it is dead-lettered
    with reason `endpoint_down`"""
    disable_after_s: Annotated[float, Env("WEBHOOK_DISABLE_AFTER", "5d", _duration)]
    """a named webhook whose endpoint has had only failures this long is disabled; `0` =
    never"""
    ops_webhooks: Annotated[tuple[str, ...], Env("OPS_WEBHOOKS", "", _list)]
    """named webhook ids (YAML or API) that also receive the operational events
    (`endpoint.down`, `endpoint.recovered`, `webhook.disabled`), signed like any delivery"""
    allow_private_urls: Annotated[bool, Env("WEBHOOK_ALLOW_PRIVATE_URLS", False, _bool)]
    """let per-job URLs reach loopback, private, link-local or metadata addresses"""
    allowed_cidrs: Annotated[tuple[str, ...], Env("WEBHOOK_ALLOWED_CIDRS", "", _cidrs)]
    """networks per-job URLs may reach although private, comma-separated (e.g. an internal
    receiver's subnet)"""
    require_https: Annotated[bool, Env("WEBHOOK_REQUIRE_HTTPS", False, _bool)]
    """refuse every non-HTTPS URL"""
    proxy_url: Annotated[ProxyUrl | None, Env("WEBHOOK_PROXY_URL", "", _proxy_url)]
    """egress proxy every delivery goes through, `http://[user:pass@]host:port` (CONNECT for
    https targets; credentials sent as `Proxy-Authorization`, never shown)"""
    ordering: Annotated[str, Env("WEBHOOK_ORDERING", "none", _choice("none", "job"))]
    """`job`: deliveries of one job to one default or per-job URL arrive in stream order,
    the next only once the previous is delivered or dead-lettered (named webhooks set their
    own `ordering`)"""
    http_host: Annotated[str, Env("HTTP_HOST", "0.0.0.0", _text)]
    """address of the health, readiness, metrics and admin server"""
    http_port: Annotated[int, Env("HTTP_PORT", 8080, _port)]
    """its port"""
    admin_token: Annotated[Secret | None, Env("ADMIN_TOKEN", "", _optional_secret)]
    """bearer token of the admin API; empty: read-only admin routes"""
    viewer_token: Annotated[Secret | None, Env("VIEWER_TOKEN", "", _optional_secret)]
    """bearer token that may only read the admin API (`GET`); YAML `tokens:` adds named,
    tenant-scoped ones"""
    log_level: Annotated[str, Env("LOG_LEVEL", "info", _choice(*_LEVELS))]
    """`debug`, `info`, `warning` or `error`"""
    log_format: Annotated[str, Env("LOG_FORMAT", "json", _choice("json", "console"))]
    """`json` or `console`"""
    secret_rotation_grace_s: Annotated[
        float, Env("WEBHOOK_SECRET_ROTATION_GRACE", "24h", _positive_duration)
    ]
    """after `POST /webhooks/{id}/secret/rotate`, how long the previous secret keeps signing
    beside the new one"""
    shutdown_timeout_s: Annotated[float, Env("SHUTDOWN_TIMEOUT", "20s", _positive_duration)]
    """after SIGTERM, how long in-flight attempts may finish"""
    otel_endpoint: Annotated[str | None, Env("OTEL_EXPORTER_OTLP_ENDPOINT", "", _otlp_endpoint)]
    """OTLP/HTTP collector: with the `otel` extra installed, spans of consume, route, each
    attempt and each dead letter go to `<endpoint>/v1/traces` (the SDK reads the other
    `OTEL_*` variables)"""
    webhooks: tuple[NamedWebhook, ...]
    config_path: str | None
    tokens: tuple[ApiToken, ...] = ()

    def __repr__(self) -> str:
        # URLs may carry passwords; `webhook-bridge config check` shows a redacted view
        return f"Settings(nats_durable={self.nats_durable!r}, ...)"

    @property
    def tasks_stream(self) -> str:
        """Internal work-queue stream of deliveries waiting for a (re)try."""
        return f"{self.nats_durable}-tasks"

    @property
    def jobs_bucket(self) -> str:
        """KV bucket remembering per-job webhooks by job id."""
        return f"{self.nats_durable}-jobs"

    @property
    def webhooks_bucket(self) -> str:
        """KV bucket of the webhooks created through the admin API, one key per id."""
        return f"{self.nats_durable}-webhooks"

    @property
    def rates_bucket(self) -> str:
        """KV bucket of the webhooks' next free delivery slots (`rate_limit`)."""
        return f"{self.nats_durable}-rates"

    @property
    def disabled_bucket(self) -> str:
        """KV bucket of the YAML webhooks disabled at run time (SPEC §11)."""
        return f"{self.nats_durable}-disabled"

    @property
    def endpoints_bucket(self) -> str:
        """KV bucket of the endpoints that are not healthy, shared by the replicas."""
        return f"{self.nats_durable}-endpoints"

    @property
    def replays_bucket(self) -> str:
        """KV bucket marking which dead letters were replayed."""
        return f"{self.nats_durable}-replays"

    @property
    def effective_ack_wait_s(self) -> float:
        """An attempt in flight must never outlive the ack deadline of its message."""
        return max(self.nats_ack_wait_s, 2 * self.timeout_s + 5)

    @property
    def origin_limit(self) -> int:
        """Attempts in flight per origin: what was set, else four URLs' worth."""
        return self.origin_concurrency or 4 * self.endpoint_concurrency

    @property
    def secret_is_default(self) -> bool:
        return self.secret.reveal() == DEFAULT_SECRET


DEFAULT_SECRET = "secret"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LEVELS = ("debug", "info", "warning", "error")


# --- value parsers: each takes the raw value and returns it typed, or raises ValueError ---


def _optional_file(value: Any) -> str | None:
    """A path that must name a readable file now, not at the first connection attempt."""
    path = _optional(value)
    if path is None:
        return None
    try:
        with Path(path).open("rb"):
            pass
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    return path


def _urls(value: Any) -> tuple[str, ...]:
    urls = _list(value)
    for url in urls:
        _check_url(url)
    return urls


def _proxy_url(value: Any) -> ProxyUrl | None:
    text = _text(value)
    return parse_proxy_url(text) if text else None


def _otlp_endpoint(value: Any) -> str | None:
    text = _optional(value)
    if text is not None and not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", text):
        raise ValueError("expected an http:// or https:// URL, e.g. http://collector:4318")
    return text


def _cidrs(value: Any) -> tuple[str, ...]:
    return tuple(str(network) for network in urls.parse_networks(_list(value)))


def _nats_urls(value: Any) -> tuple[str, ...]:
    urls = _list(value)
    if not urls:
        raise ValueError("at least one server URL is needed")
    for url in urls:
        if not re.match(r"^(nats|tls|ws|wss)://[^\s/]+$", url):
            raise ValueError("expected URLs like nats://host:4222 (or tls://, ws://, wss://)")
    return urls


def _stream_name(value: Any) -> str:
    name = _text(value)
    if not _NAME.match(name):
        raise ValueError(f"{name!r} may use only letters, digits, '-' and '_'")
    return name


def _subjects(value: Any) -> tuple[str, ...]:
    subjects = _list(value)
    if not subjects or any(" " in s for s in subjects):
        raise ValueError("expected comma-separated NATS subjects")
    return subjects


def _ce_source(value: Any) -> str:
    source = _text(value)
    if not source or len(source) > 2048 or any(c.isspace() or not c.isprintable() for c in source):
        raise ValueError("expected a URI-reference: 1 to 2048 characters, no spaces")
    return source


def _port(value: Any) -> int:
    return _int_at_least(0, 65535)(value)


def _declared() -> dict[str, tuple[str, Env]]:
    """Env name → (field, declaration), in the order Settings declares them."""
    hints = get_type_hints(Settings, include_extras=True)
    return {
        meta.name: (field, meta)
        for field, hint in hints.items()
        for meta in getattr(hint, "__metadata__", ())
        if isinstance(meta, Env)
    }


# env name → (field, declaration); the YAML key is the lower-cased env name
SETTINGS = _declared()
FIELDS = {name: (field, env.default, env.parse) for name, (field, env) in SETTINGS.items()}


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build the settings from `env` (and the YAML file it names); raise ConfigError."""
    path = env.get("BRIDGE_CONFIG", "").strip() or None
    document = _read_yaml(Path(path), env) if path else {}
    where = Path(path).name if path else ""
    values = {field: _pick(name, env, document, where) for name, (field, *_) in FIELDS.items()}
    webhooks = parse_webhooks(
        document.get("webhooks"),
        where,
        require_https=values["require_https"],
        global_ids=values["default_webhooks"],
    )
    tokens = _tokens(document.get("tokens"), where, values)
    settings = Settings(**values, webhooks=webhooks, config_path=path, tokens=tokens)
    _check_consistency(settings)
    return settings


def _pick(name: str, env: Mapping[str, str], document: dict[str, Any], where: str) -> Any:
    _field, default, parse = FIELDS[name]
    if name in env:
        raw, origin = env[name], name
    elif name.lower() in document:
        raw, origin = document[name.lower()], f"{where}: {name.lower()}"
    else:
        raw, origin = default, name
    try:
        return parse(raw)
    except ValueError as error:
        raise ConfigError(f"{origin}: {error}") from None


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2's reading of plain scalars where it matters here: only `true` and `false` are
    booleans and `null`/`~`/nothing is null. Every other plain scalar stays the text that was
    written, so `id: off`, `id: no` or `id: 0755` keep their text (PyYAML's YAML 1.1 rules made
    them a boolean or a number); the settings' parsers read numbers and durations from text,
    as they do from the environment."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])


def _read_yaml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Yaml12Loader)
    except OSError as error:
        raise ConfigError(f"BRIDGE_CONFIG: cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path.name}:{line} is not valid YAML") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path.name}: the top level must be a mapping")
    _check_keys(document, path.name)
    interpolated: dict[str, Any] = _interpolate(document, env, path.name)
    return interpolated


def _check_keys(document: dict[str, Any], where: str) -> None:
    known = {name.lower() for name in FIELDS} | {"webhooks", "tokens"}
    for key in document:
        if key not in known:
            raise ConfigError(f"{where}: {key}: unknown setting")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(node: Any, env: Mapping[str, str], where: str) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of the document."""
    if isinstance(node, dict):
        return {k: _interpolate(v, env, f"{where}: {k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, fallback = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if fallback is not None:
            return fallback
        raise ConfigError(f"{where}: environment variable {name} is not set")

    return _VAR.sub(substitute, node)


def _tokens(node: Any, where: str, values: dict[str, Any]) -> tuple[ApiToken, ...]:
    """YAML `tokens:` (bridge/config/tokens.py), each value distinct from the env tokens."""
    try:
        tokens = parse_tokens(node)
        check_distinct(tokens, values["admin_token"], values["viewer_token"])
    except ValueError as error:
        in_file = where and str(error).startswith("tokens")
        raise ConfigError(f"{where}: {error}" if in_file else str(error)) from None
    return tokens


def _check_consistency(settings: Settings) -> None:
    if settings.retry_min_wait_s > settings.retry_max_wait_s:
        raise ConfigError("WEBHOOK_RETRY_MIN_WAIT: must not exceed WEBHOOK_RETRY_MAX_WAIT")
    known = {hook.id for hook in settings.webhooks}
    for hook_id in settings.default_webhooks:
        if hook_id not in known:
            raise ConfigError(f"DEFAULT_WEBHOOKS: unknown webhook id {hook_id!r}")
    if settings.require_https:
        for url in settings.default_webhook_urls:
            if not url.lower().startswith("https://"):
                raise ConfigError(f"DEFAULT_WEBHOOK_URLS: HTTPS is required: {redact_url(url)}")
    if settings.nats_tls_cert and not settings.nats_tls_key:
        raise ConfigError("NATS_TLS_KEY: required with NATS_TLS_CERT")
    if settings.nats_tls_key and not settings.nats_tls_cert:
        raise ConfigError("NATS_TLS_CERT: required with NATS_TLS_KEY")
    if settings.nats_password and not settings.nats_user:
        raise ConfigError("NATS_USER: required with NATS_PASSWORD")
    nats_tls_context(settings)  # unreadable PEM files stop start-up, not the first connect


def nats_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for NATS when a CA or client certificate is set; ConfigError if the
    files do not load. Without either, a `tls://` server URL uses the system's CAs."""
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.nats_tls_ca)
    except (ssl.SSLError, OSError) as error:
        raise ConfigError(f"NATS_TLS_CA: not a PEM CA certificate: {_ssl_reason(error)}") from None
    if settings.nats_tls_cert:
        try:
            context.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
        except (ssl.SSLError, OSError) as error:
            reason = _ssl_reason(error)
            raise ConfigError(f"NATS_TLS_CERT, NATS_TLS_KEY: cannot load: {reason}") from None
    return context


def _ssl_reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
    return str(reason).lower().replace("_", " ")
