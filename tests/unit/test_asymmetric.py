"""ed25519 `whsk_`/`whpk_` keys and `v1a,` signatures (SPEC §12), against the vector of the
official Standard Webhooks Go library (libraries/go/webhook_asymmetric_test.go,
TestAsymmetricWebhookSign: a 32-byte seed, NewKeyFromSeed) and the parsing rules."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from bridge.config.settings import load_settings
from bridge.config.values import ConfigError, as_secret
from bridge.config.view import redacted
from bridge.config.webhooks import parse_webhook
from bridge.policy import asymmetric
from bridge.policy.signing import signature_headers, standard_signature, verify_standard

GO_KEY = "whsk_VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk="
GO_ID, GO_TIMESTAMP_S, GO_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
GO_SIGNATURE = (
    "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6KYYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag=="
)
GO_PUBLIC = "whpk_ZlN4eg7dSSqi0moX9hQUk3orrOouK3QVQSlJa248c/g="
HMAC = "whsec_" + base64.b64encode(b"k" * 32).decode()


def test_the_official_vector() -> None:
    assert standard_signature(GO_KEY, GO_ID, GO_TIMESTAMP_S, GO_BODY) == GO_SIGNATURE
    assert asymmetric.public_key(GO_KEY) == GO_PUBLIC


@pytest.mark.parametrize(
    ("key", "body", "header", "valid"),
    [
        (GO_PUBLIC, GO_BODY, GO_SIGNATURE, True),
        (GO_KEY, GO_BODY, GO_SIGNATURE, True),  # the private key implies the public one
        (GO_PUBLIC, GO_BODY, f"v1,c2ln v2,c2ln {GO_SIGNATURE} v1a,", True),
        (GO_PUBLIC, GO_BODY + b" ", GO_SIGNATURE, False),
        (GO_PUBLIC, GO_BODY, GO_SIGNATURE.replace("v1a,", "v1,"), False),
        (GO_PUBLIC, GO_BODY, "v1a,not-base64!", False),
        (GO_PUBLIC, GO_BODY, "v1a," + base64.b64encode(b"short").decode(), False),
        (asymmetric.public_key(asymmetric.new_private_key()), GO_BODY, GO_SIGNATURE, False),
    ],
)
def test_verify(key: str, body: bytes, header: str, valid: bool) -> None:
    assert verify_standard(key, GO_ID, GO_TIMESTAMP_S, body, header) is valid


def test_new_keys_are_32_byte_seeds_and_differ() -> None:
    one, two = asymmetric.new_private_key(), asymmetric.new_private_key()
    assert one != two
    assert len(base64.b64decode(one.removeprefix("whsk_"))) == 32


@pytest.mark.parametrize(
    ("secrets", "entries", "greenlight_from"),
    [
        ((GO_KEY,), ["v1a,"], None),  # no shared secret: no X-Greenlight-Signature
        ((GO_KEY, HMAC), ["v1a,", "v1,"], HMAC),  # HMAC -> ed25519: the retiring one signs it
        ((HMAC, GO_KEY), ["v1,", "v1a,"], HMAC),
        ((HMAC,), ["v1,"], HMAC),
    ],
)
def test_headers_mix_v1_and_v1a_as_the_secrets_require(
    secrets: tuple[str, ...], entries: list[str], greenlight_from: str | None
) -> None:
    headers = signature_headers(secrets, GO_ID, GO_TIMESTAMP_S, GO_BODY)
    found = [entry.split(",")[0] + "," for entry in headers["webhook-signature"].split()]
    assert found == entries
    other = signature_headers((HMAC,), GO_ID, GO_TIMESTAMP_S, GO_BODY) if greenlight_from else {}
    assert headers.get("X-Greenlight-Signature") == other.get("X-Greenlight-Signature")


SEED_16 = "whsk_" + base64.b64encode(b"0123456789abcdef").decode()
SEED_64 = "whsk_" + base64.b64encode(bytes(64)).decode()


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsk_not base64!", "a whsk_ key must be base64 after the prefix"),
        (SEED_16, "a whsk_ key must be 32 bytes, got 16"),
        (SEED_64, "a whsk_ key must be 32 bytes, got 64"),
        ("whsk_", "a whsk_ key must be 32 bytes, got 0"),
        (GO_PUBLIC, "a whpk_ key is public and cannot sign: give the whsk_ private key"),
    ],
)
def test_bad_keys_give_one_line_naming_the_path_and_never_the_key(
    secret: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_webhook(
            {"id": "erp", "url": "https://erp.example/h", "secret": secret}, "b.yaml: webhooks[3]"
        )
    assert str(caught.value) == f"b.yaml: webhooks[3].secret: {message}"
    tail = secret.removeprefix("whsk_").removeprefix("whpk_")
    assert not tail or tail not in str(caught.value)
    with pytest.raises(ConfigError, match=r"^secrets: "):
        parse_webhook({"id": "erp", "url": "https://erp.example/h", "secrets": [HMAC, secret]})


def test_a_good_key_parses_and_webhook_secret_must_stay_shared() -> None:
    assert as_secret(GO_KEY).reveal() == GO_KEY
    with pytest.raises(ConfigError) as caught:
        load_settings({"WEBHOOK_SECRET": GO_KEY})
    assert str(caught.value).startswith("WEBHOOK_SECRET: an ed25519 key (whsk_) signs a named")
    assert GO_KEY.removeprefix("whsk_") not in str(caught.value)


def test_config_check_shows_the_public_key_never_the_private_one(tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text(
        f"webhooks:\n  - id: erp\n    url: https://erp.example/h\n    secret: {GO_KEY}\n"
        "    format: cloudevents-binary\n",
        encoding="utf-8",
    )
    view = redacted(load_settings({"BRIDGE_CONFIG": str(config)}))
    [hook] = view["webhooks"]
    assert (hook["public_keys"], hook["format"]) == ([GO_PUBLIC], "cloudevents-binary")
    assert GO_KEY.removeprefix("whsk_") not in json.dumps(view)
