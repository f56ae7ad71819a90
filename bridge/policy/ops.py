"""The operational event's record (SPEC §11): its kinds, fields and subject. Pure; storing and
sending them is `bridge.jetstream.ops_events`'s."""

from __future__ import annotations

from typing import Literal

import msgspec

OPS_STREAM = "GREENLIGHT_WEBHOOKS_OPS"
OPS_SUBJECT_PREFIX = "greenlight.webhooks.ops"
OPS_MAX_AGE_S = 14 * 86400.0
Kind = Literal["endpoint.down", "endpoint.recovered", "webhook.disabled"]


class OpsEvent(msgspec.Struct, frozen=True, kw_only=True):
    """`endpoint` is an origin (`scheme://host:port`), `webhook` a named webhook's id."""

    kind: Kind
    endpoint: str | None
    webhook: str | None
    reason: str
    time: str


def subject_for(kind: Kind) -> str:
    return f"{OPS_SUBJECT_PREFIX}.{kind}"
