"""Sign delivery bodies with both schemes receivers check: Greenlight's and Standard Webhooks'.

Pure functions over bytes; the delivery code decides which secrets and ids to pass in. A
secret is shared (HMAC: `v1,` and `X-Greenlight-Signature`) unless it is an ed25519 private
key `whsk_` (`bridge.policy.asymmetric`), which signs `v1a,` entries only: an HMAC needs a
secret the receiver holds too.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from bridge.policy import asymmetric

GREENLIGHT_HEADER = "X-Greenlight-Signature"
WEBHOOK_ID_HEADER = "webhook-id"
WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"

_WHSEC_PREFIX = "whsec_"
_V1_PREFIX = "v1,"
_WHSK_PREFIX = asymmetric.PRIVATE_PREFIX
# two keys per secret (Greenlight's and Standard Webhooks'), one secret per webhook or more
# while rotating: room for a catalog of a thousand webhooks
KEYS_CACHED = 4096


def greenlight_signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`, byte-exact with the receiver snippet in SPEC §3."""
    digest = _mac(secret.encode("utf-8"), body).hexdigest()
    return f"sha256={digest}"


@functools.lru_cache(maxsize=KEYS_CACHED)
def _keyed(key: bytes) -> hmac.HMAC:
    """The HMAC state after the key: copying it skips deriving the key pads for every body."""
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac(key: bytes, data: bytes) -> hmac.HMAC:
    mac = _keyed(key).copy()
    mac.update(data)
    return mac


@functools.lru_cache(maxsize=KEYS_CACHED)
def standard_key(secret: str) -> bytes:
    """The HMAC key for Standard Webhooks.

    A `whsec_` secret already is the receiver's form, so its base64 tail is the key.
    Any other secret is used as raw bytes; its receiver then verifies with
    `"whsec_" + base64(secret bytes)`. Raises ValueError for a malformed `whsec_` secret,
    so configuration can call this once at start and refuse it.
    """
    if secret.startswith(_WHSEC_PREFIX):
        return base64.b64decode(secret.removeprefix(_WHSEC_PREFIX), validate=True)
    return secret.encode("utf-8")


def check_secret(secret: str) -> None:
    """Raises ValueError, never repeating the secret, unless it can sign: a `whsec_` secret
    with a base64 tail, a `whsk_` ed25519 key, or any other text (used as it is)."""
    if asymmetric.is_public_key(secret):
        raise ValueError("a whpk_ key is public and cannot sign: give the whsk_ private key")
    if asymmetric.is_private_key(secret):
        asymmetric.signing_key(secret)
        return
    try:
        standard_key(secret)
    except ValueError:
        raise ValueError("a whsec_ secret must be base64 after the prefix") from None


def standard_signature(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, or `v1a,<base64 ed25519
    signature>` of the same bytes for a `whsk_` key."""
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    if secret.startswith(_WHSK_PREFIX):  # not is_private_key(): a call less per attempt
        return asymmetric.sign(secret, signed)
    digest = _mac(standard_key(secret), signed).digest()
    return _V1_PREFIX + base64.b64encode(digest).decode("ascii")


def signature_headers(
    secrets: Sequence[str], delivery_id: str, timestamp_s: int, body: bytes
) -> dict[str, str]:
    """All signature headers of one attempt.

    Every secret signs the Standard Webhooks header so receivers keep verifying while a
    secret is rotated; the Greenlight header holds one value only (its receivers compare
    the whole header), so it uses the first shared secret: the current one, or while a
    webhook moves from HMAC to ed25519 the retiring one. With no shared secret left it is
    left out.
    """
    if not secrets:
        raise ValueError("at least one secret is needed to sign a delivery")
    signatures = (standard_signature(s, delivery_id, timestamp_s, body) for s in secrets)
    headers = {}
    first = secrets[0]
    shared = _first_shared(secrets) if first.startswith(_WHSK_PREFIX) else first
    if shared is not None:
        headers[GREENLIGHT_HEADER] = greenlight_signature(shared, body)
    headers[WEBHOOK_ID_HEADER] = delivery_id
    headers[WEBHOOK_TIMESTAMP_HEADER] = str(timestamp_s)
    headers[WEBHOOK_SIGNATURE_HEADER] = " ".join(signatures)
    return headers


def _first_shared(secrets: Sequence[str]) -> str | None:
    for secret in secrets:
        if not secret.startswith(_WHSK_PREFIX):
            return secret
    return None


def verify_greenlight(secret: str, body: bytes, header: str) -> bool:
    """True when `header` is exactly the Greenlight signature of `body`; constant time."""
    expected = greenlight_signature(secret, body).encode("ascii")
    return hmac.compare_digest(expected, _header_bytes(header))


def verify_standard(secret: str, msg_id: str, timestamp_s: int, body: bytes, header: str) -> bool:
    """True when any space-separated `v1,` entry of `header` matches; constant time each. With
    a `whpk_` public key (or its `whsk_` private key), the `v1a,` entries are checked."""
    if asymmetric.is_ed25519(secret):
        signed = f"{msg_id}.{timestamp_s}.".encode() + body
        return asymmetric.verify(secret, signed, header)
    expected = standard_signature(secret, msg_id, timestamp_s, body).encode("ascii")
    # Compare every entry, not stopping at the first hit, so timing does not reveal which.
    matches = [hmac.compare_digest(expected, _header_bytes(entry)) for entry in header.split()]
    return any(matches)


def verify_delivery(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Both signatures of a delivery, as a receiver checks them; False if a header is missing.
    An ed25519 key (`whpk_`/`whsk_`) has only the Standard Webhooks one to check."""
    try:
        timestamp_s = int(headers[WEBHOOK_TIMESTAMP_HEADER])
        msg_id, standard = headers[WEBHOOK_ID_HEADER], headers[WEBHOOK_SIGNATURE_HEADER]
    except (KeyError, ValueError):
        return False
    if not verify_standard(secret, msg_id, timestamp_s, body, standard):
        return False
    if asymmetric.is_ed25519(secret):
        return True
    return verify_greenlight(secret, body, headers.get(GREENLIGHT_HEADER, ""))


def _header_bytes(header: str) -> bytes:
    # compare_digest refuses non-ASCII str; bytes with replacement can never match ASCII hex.
    return header.encode("utf-8", errors="replace")
