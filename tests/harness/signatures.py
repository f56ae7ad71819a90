"""How receivers in the field verify a delivery (SPEC §3), written independently of the bridge."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from standardwebhooks import Webhook


def greenlight_signature_valid(secret: str, raw_body: bytes, header: str) -> bool:
    """The published receiver snippet: 'sha256=' + hex HMAC-SHA256, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


def verify_standard_webhooks(secret: str, raw_body: bytes, headers: Mapping[str, str]) -> None:
    """Raises `standardwebhooks.WebhookVerificationError` unless the headers verify."""
    whsec = "whsec_" + base64.b64encode(secret.encode()).decode()
    Webhook(whsec).verify(raw_body, dict(headers))
