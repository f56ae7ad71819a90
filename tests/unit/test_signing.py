"""Both signature schemes against fixed vectors and the standardwebhooks reference library.

The expected strings were computed independently with OpenSSL, e.g.
`printf '%s' BODY | openssl dgst -sha256 -hmac SECRET` (hex) and
`printf '%s' 'ID.TS.BODY' | openssl dgst -sha256 -hmac SECRET -binary | base64`;
the whsec_ vector is the one published in the Standard Webhooks README.
"""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bridge.policy.signing import (
    greenlight_signature,
    signature_headers,
    standard_key,
    standard_signature,
    verify_delivery,
    verify_greenlight,
    verify_standard,
)

BODY = b'{"event":"job.completed","job_id":"j_1"}'
README_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
README_BODY = b'{"test": 2432232314}'


@pytest.mark.parametrize(
    ("secret", "body", "expected"),
    [
        ("secret", BODY, "sha256=a8c9c4101421eafd97e9e692f299d33202d91293a1e64eb2178c6a881e80af75"),
        ("secret", b"", "sha256=f9e66e179b6747ae54108f82f8ade8b3c25d76fd30afde6c395822c530196169"),
        (
            "key",
            b"The quick brown fox jumps over the lazy dog",
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8",
        ),
        (
            "sëcret",
            '{"a":"é"}'.encode(),
            "sha256=f863aef66f6c99ec8706ce31905a26678789ddf39c964944fe163c6e7b34dde8",
        ),
    ],
)
def test_greenlight_signature_vectors(secret: str, body: bytes, expected: str) -> None:
    assert greenlight_signature(secret, body) == expected
    assert verify_greenlight(secret, body, expected)


@pytest.mark.parametrize(
    ("secret", "msg_id", "timestamp_s", "body", "expected"),
    [
        ("secret", "msg_1", 1700000000, BODY, "v1,RBSg3OIGnAyg7iP+8rkiw8f/kV7b+gTlzJoIRuK1qjU="),
        (
            "other-secret",
            "msg_1",
            1700000000,
            BODY,
            "v1,nLZ4bwY8+bhL6Aea5VDc6hkh0S8sPbGHH6WnSpvgZz0=",
        ),
        ("secret", "d_2", 1700000001, b"", "v1,/pqqwTdp7atdzIMdDz9el/oT9PwjjHKj6gbPsd6+PHU="),
        (
            README_SECRET,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            README_BODY,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ],
)
def test_standard_signature_vectors(
    secret: str, msg_id: str, timestamp_s: int, body: bytes, expected: str
) -> None:
    assert standard_signature(secret, msg_id, timestamp_s, body) == expected
    assert verify_standard(secret, msg_id, timestamp_s, body, expected)


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("secret", b"secret"),
        ("sëcret", "sëcret".encode()),
        (README_SECRET, bytes.fromhex("31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0")),
        ("whsec_" + base64.b64encode(b"secret").decode(), b"secret"),
    ],
)
def test_standard_key(secret: str, expected: bytes) -> None:
    assert standard_key(secret) == expected


def test_malformed_whsec_secret_is_refused() -> None:
    with pytest.raises(ValueError, match=r"."):
        standard_key("whsec_not base64!")


def test_raw_and_whsec_forms_of_one_secret_sign_alike() -> None:
    whsec = "whsec_" + base64.b64encode(b"secret").decode()
    assert standard_signature(whsec, "m", 1, BODY) == standard_signature("secret", "m", 1, BODY)


def test_signature_headers_one_secret() -> None:
    headers = signature_headers(["secret"], "msg_1", 1700000000, BODY)
    assert headers == {
        "X-Greenlight-Signature": (
            "sha256=a8c9c4101421eafd97e9e692f299d33202d91293a1e64eb2178c6a881e80af75"
        ),
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1,RBSg3OIGnAyg7iP+8rkiw8f/kV7b+gTlzJoIRuK1qjU=",
    }


def test_signature_headers_rotation_signs_with_every_secret() -> None:
    headers = signature_headers(["secret", "other-secret"], "msg_1", 1700000000, BODY)
    assert headers["webhook-signature"] == (
        "v1,RBSg3OIGnAyg7iP+8rkiw8f/kV7b+gTlzJoIRuK1qjU= "
        "v1,nLZ4bwY8+bhL6Aea5VDc6hkh0S8sPbGHH6WnSpvgZz0="
    )
    # The Greenlight header carries one value: the first, current secret's.
    assert headers["X-Greenlight-Signature"] == greenlight_signature("secret", BODY)
    for secret in ("secret", "other-secret"):
        assert verify_standard(secret, "msg_1", 1700000000, BODY, headers["webhook-signature"])


def test_signature_headers_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        signature_headers([], "msg_1", 1, BODY)


def _receiver_secret(secret: str) -> str:
    # What SPEC §3 tells receivers to configure: whsec_ + base64(secret bytes).
    if secret.startswith("whsec_"):
        return secret
    return "whsec_" + base64.b64encode(secret.encode()).decode()


@pytest.mark.parametrize(
    "secrets",
    [
        ["secret"],
        ["sëcret"],
        [README_SECRET],
        ["new-secret", "old-secret"],
        ["new-secret", README_SECRET],
    ],
)
def test_standardwebhooks_library_accepts_every_secret(secrets: list[str]) -> None:
    now_s = int(time.time())
    headers = signature_headers(secrets, "d_abc", now_s, BODY)
    for secret in secrets:
        Webhook(_receiver_secret(secret)).verify(BODY, headers)  # raises when refused


def test_standardwebhooks_library_refuses_tampered_body() -> None:
    headers = signature_headers(["secret"], "d_abc", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(_receiver_secret("secret")).verify(BODY + b" ", headers)


def test_standardwebhooks_library_refuses_unknown_secret() -> None:
    headers = signature_headers(["secret"], "d_abc", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(_receiver_secret("other-secret")).verify(BODY, headers)


GOOD_GREENLIGHT = "sha256=a8c9c4101421eafd97e9e692f299d33202d91293a1e64eb2178c6a881e80af75"


@pytest.mark.parametrize(
    ("secret", "body", "header", "ok"),
    [
        ("secret", BODY, GOOD_GREENLIGHT, True),
        ("secret", BODY + b" ", GOOD_GREENLIGHT, False),
        ("other-secret", BODY, GOOD_GREENLIGHT, False),
        ("secret", BODY, GOOD_GREENLIGHT.upper(), False),
        ("secret", BODY, GOOD_GREENLIGHT.removeprefix("sha256="), False),
        ("secret", BODY, GOOD_GREENLIGHT + " ", False),
        ("secret", BODY, "", False),
        ("secret", BODY, "sha256=é", False),
    ],
)
def test_verify_greenlight(secret: str, body: bytes, header: str, ok: bool) -> None:
    assert verify_greenlight(secret, body, header) is ok


GOOD_V1 = "v1,RBSg3OIGnAyg7iP+8rkiw8f/kV7b+gTlzJoIRuK1qjU="


@pytest.mark.parametrize(
    ("body", "timestamp_s", "msg_id", "header", "ok"),
    [
        (BODY, 1700000000, "msg_1", GOOD_V1, True),
        (BODY, 1700000000, "msg_1", f"v1,bm90LXRoaXM= {GOOD_V1}", True),
        (BODY, 1700000000, "msg_1", f"{GOOD_V1}  v1,bm90LXRoaXM=", True),
        (BODY + b" ", 1700000000, "msg_1", GOOD_V1, False),
        (BODY, 1700000001, "msg_1", GOOD_V1, False),
        (BODY, 1700000000, "msg_2", GOOD_V1, False),
        (BODY, 1700000000, "msg_1", GOOD_V1.replace("v1,", "v2,"), False),
        (BODY, 1700000000, "msg_1", GOOD_V1.removeprefix("v1,"), False),
        (BODY, 1700000000, "msg_1", "", False),
        (BODY, 1700000000, "msg_1", "v1,é", False),
    ],
)
def test_verify_standard(body: bytes, timestamp_s: int, msg_id: str, header: str, ok: bool) -> None:
    assert verify_standard("secret", msg_id, timestamp_s, body, header) is ok


def test_verify_delivery_checks_both_headers_as_sent() -> None:
    body = b'{"event":"job.completed"}'
    headers = signature_headers(["s3cret"], "dlv_1", 1_768_386_600, body)
    assert verify_delivery("s3cret", headers, body)
    assert not verify_delivery("other", headers, body)
    assert not verify_delivery("s3cret", headers, body + b" ")
    for missing in headers:
        partial = {k: v for k, v in headers.items() if k != missing}
        assert not verify_delivery("s3cret", partial, body), missing
    assert not verify_delivery("s3cret", {**headers, "webhook-timestamp": "soon"}, body)
