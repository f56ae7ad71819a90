"""How receivers in the field verify a delivery (SPEC §3), written independently of the bridge."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from standardwebhooks import Webhook


def greenlight_signature_valid(secret: str, raw_body: bytes, header: str) -> bool:
    """The published receiver snippet: 'sha256=' + hex HMAC-SHA256, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


def verify_standard_webhooks(secret: str, raw_body: bytes, headers: Mapping[str, str]) -> None:
    """Raises `standardwebhooks.WebhookVerificationError` unless the headers verify."""
    whsec = "whsec_" + base64.b64encode(secret.encode()).decode()
    Webhook(whsec).verify(raw_body, dict(headers))


def v1a_signature_valid(public_key: str, raw_body: bytes, headers: Mapping[str, str]) -> bool:
    """Standard Webhooks' asymmetric scheme as its spec reads: some space-separated `v1a,`
    entry of webhook-signature is the ed25519 signature, by the `whpk_` key, of
    `<webhook-id>.<webhook-timestamp>.<body>`. (The standardwebhooks package for Python, 1.1,
    checks only `v1,` entries: it skips these.)"""
    lowered = {name.lower(): value for name, value in headers.items()}
    signed = f"{lowered['webhook-id']}.{lowered['webhook-timestamp']}.".encode() + raw_body
    verifier = VerifyKey(base64.b64decode(public_key.removeprefix("whpk_")))
    entries = [e[4:] for e in lowered["webhook-signature"].split() if e.startswith("v1a,")]
    return any(_ed25519_valid(verifier, signed, base64.b64decode(e)) for e in entries)


def _ed25519_valid(verifier: VerifyKey, signed: bytes, signature: bytes) -> bool:
    try:
        verifier.verify(signed, signature)
    except BadSignatureError:
        return False
    return True
