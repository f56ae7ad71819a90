"""Standard Webhooks' asymmetric scheme: ed25519 keys written `whsk_`/`whpk_`, `v1a,` signatures.

A private key is `whsk_` + base64 of the 32-byte ed25519 seed, as the official Standard
Webhooks libraries read it (Go: `ed25519.NewKeyFromSeed`); its public key is `whpk_` + base64
of the 32-byte public key. A `v1a,` entry is the base64 ed25519 signature of
`"<id>.<timestamp>.<body>"`, the same content as the symmetric `v1,` one. Pure functions; a
malformed key raises ValueError with a message that never repeats the key.
"""

from __future__ import annotations

import base64
import binascii
import functools

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

PRIVATE_PREFIX = "whsk_"
PUBLIC_PREFIX = "whpk_"
V1A_PREFIX = "v1a,"
KEY_BYTES = 32
KEYS_CACHED = 4096


def is_private_key(secret: str) -> bool:
    return secret.startswith(PRIVATE_PREFIX)


def is_public_key(secret: str) -> bool:
    return secret.startswith(PUBLIC_PREFIX)


def is_ed25519(key: str) -> bool:
    """A `whsk_` or `whpk_` key, as opposed to a shared secret."""
    return key.startswith((PRIVATE_PREFIX, PUBLIC_PREFIX))


@functools.lru_cache(maxsize=KEYS_CACHED)
def signing_key(secret: str) -> SigningKey:
    """The key of a `whsk_` secret; ValueError unless its tail is base64 of 32 bytes."""
    return SigningKey(_key_bytes(secret.removeprefix(PRIVATE_PREFIX), PRIVATE_PREFIX))


def public_key(secret: str) -> str:
    """`whpk_<base64 public key>` of a `whsk_` secret: what receivers verify with."""
    raw = bytes(signing_key(secret).verify_key)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode("ascii")


def new_private_key() -> str:
    """A fresh `whsk_` key from the operating system's randomness."""
    seed = bytes(SigningKey.generate())
    return PRIVATE_PREFIX + base64.b64encode(seed).decode("ascii")


def sign(secret: str, signed: bytes) -> str:
    """`v1a,<base64 ed25519 signature>` of the bytes `"<id>.<timestamp>.<body>"`."""
    signature = signing_key(secret).sign(signed).signature
    return V1A_PREFIX + base64.b64encode(signature).decode("ascii")


def verify(key: str, signed: bytes, header: str) -> bool:
    """True when any space-separated `v1a,` entry of `header` is a signature of `signed` by
    `key` (`whpk_`, or the `whsk_` it belongs to); ValueError for a malformed key."""
    verifier = _verify_key(key)
    entries = [entry for entry in header.split() if entry.startswith(V1A_PREFIX)]
    return any(_valid(verifier, signed, entry.removeprefix(V1A_PREFIX)) for entry in entries)


def _verify_key(key: str) -> VerifyKey:
    if is_private_key(key):
        return signing_key(key).verify_key
    return VerifyKey(_key_bytes(key.removeprefix(PUBLIC_PREFIX), PUBLIC_PREFIX))


def _valid(verifier: VerifyKey, signed: bytes, encoded: str) -> bool:
    try:
        verifier.verify(signed, base64.b64decode(encoded, validate=True))
    except (BadSignatureError, binascii.Error, ValueError):
        return False
    return True


def _key_bytes(tail: str, prefix: str) -> bytes:
    try:
        raw = base64.b64decode(tail, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"a {prefix} key must be base64 after the prefix") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"a {prefix} key must be {KEY_BYTES} bytes, got {len(raw)}") from None
    return raw
