"""The audit trail's record (SPEC §9 Audit): who changed what, secrets redacted.

Every create, update, delete, rotate, test and replay through the admin API is one record on
the stream `GREENLIGHT_WEBHOOKS_AUDIT`, subject `greenlight.webhooks.audit.<action>.<webhook>`:
`<webhook>` is a short hash of the webhook id (ids may hold dots, which would split the
subject), `_` for a record about no one webhook (a replay). Reading one webhook's records is
then a subject filter, `greenlight.webhooks.audit.*.<hash>`.

The bridge writes records of its own (actor `webhook-bridge`) when it acts on a receiver's
signal (SPEC §11): `disable` (a webhook disabled), `forget` (a per-job URL forgotten for its
job), `abort` (a delivery the receiver stopped).

`change` is what the request asked for, after `redact_change`: secrets, tokens and passwords
become `***`, header values too (only the names stay), and passwords in URLs are cut out.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import msgspec

from bridge.config.secret import REDACTED, redact_url

AUDIT_STREAM = "GREENLIGHT_WEBHOOKS_AUDIT"
AUDIT_SUBJECT_PREFIX = "greenlight.webhooks.audit"
NO_WEBHOOK = "_"
Action = Literal[
    "create", "update", "delete", "rotate", "test", "replay", "disable", "forget", "abort"
]
# the actions that change the configuration (counted in config_changes_total)
CONFIG_ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "rotate")
SECRET_KEYS = frozenset({"secret", "secrets", "token", "password"})


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One administrative action. `tenants`: the webhook's (for a replay, the replaying
    principal's), so that tenant-scoped readers see only their own; empty = every tenant."""

    at: str
    actor: str
    action: Action
    webhook_id: str | None
    tenants: tuple[str, ...]
    revision: int | None = None
    change: dict[str, Any] = {}


def redact_change(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` with every secret value replaced; the names of what changed stay."""
    return {key: _redacted(key, value) for key, value in fields.items()}


def _redacted(key: str, value: Any) -> Any:
    if value is None:
        return None  # a merge patch's removal shows no secret
    if key.lower() in SECRET_KEYS:
        return [REDACTED] * len(value) if isinstance(value, list | tuple) else REDACTED
    if key.lower() == "headers" and isinstance(value, dict):
        return {name: None if v is None else REDACTED for name, v in value.items()}
    return _plain(value)


def _plain(value: Any) -> Any:
    """Nested objects are redacted by the same rules; any string may be a URL."""
    if isinstance(value, dict):
        return redact_change(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return redact_url(value)
    return value


def webhook_token(webhook_id: str | None) -> str:
    """The subject token of a webhook id: a short hash, `_` for none."""
    if webhook_id is None:
        return NO_WEBHOOK
    return hashlib.sha256(webhook_id.encode()).hexdigest()[:16]


def subject_for(action: Action | None, webhook_id: str | None) -> str:
    """A record's subject; `None` for the action stands for any (`*`)."""
    return f"{AUDIT_SUBJECT_PREFIX}.{action or '*'}.{webhook_token(webhook_id)}"


def subject_filter(webhook_id: str | None) -> str:
    """The records of one webhook, or with None every record."""
    if webhook_id is None:
        return f"{AUDIT_SUBJECT_PREFIX}.>"
    return subject_for(None, webhook_id)


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(AuditRecord)


def encode(record: AuditRecord) -> bytes:
    return _ENCODER.encode(record)


def decode(data: bytes) -> AuditRecord:
    """Raises msgspec.DecodeError for bytes that are not a record."""
    return _DECODER.decode(data)
