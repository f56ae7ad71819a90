"""Value parsers shared by the settings and the webhooks: each takes a raw value (text from the
environment, a YAML or JSON scalar) and returns it typed, or raises ValueError with a short
reason that the caller prefixes with where the value came from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.config.durations import parse_duration_s
from bridge.config.secret import Secret
from bridge.policy import asymmetric, urls
from bridge.policy.signing import check_secret


class ConfigError(Exception):
    """A setting is invalid; the message is one line naming where it came from."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def as_text(value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("expected a string")
    return str(value).strip()


def as_optional(value: Any) -> str | None:
    return as_text(value) or None


def as_secret(value: Any) -> Secret:
    """A webhook's signing secret: shared (any text, `whsec_<base64>`) or an ed25519 `whsk_`
    key; the error never repeats it."""
    text = as_text(value)
    if not text:
        raise ValueError("must not be empty")
    check_secret(text)
    return Secret(text)


def as_shared_secret(value: Any) -> Secret:
    """A secret both ends hold (WEBHOOK_SECRET): it signs X-Greenlight-Signature too."""
    secret = as_secret(value)
    if asymmetric.is_private_key(secret.reveal()):
        raise ValueError("an ed25519 key (whsk_) signs a named webhook; this must be shared")
    return secret


def as_optional_secret(value: Any) -> Secret | None:
    text = as_text(value)
    return Secret(text) if text else None


def as_duration(value: Any) -> float:
    return parse_duration_s(as_text(value))


def as_positive_duration(value: Any) -> float:
    seconds = as_duration(value)
    if seconds <= 0:
        raise ValueError("must be greater than zero")
    return seconds


def int_between(minimum: int, maximum: int = 2**31) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(as_text(value))
        except ValueError:
            raise ValueError(f"expected a whole number, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise ValueError(f"must be between {minimum} and {maximum}, got {number}")
        return number

    return parse


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = as_text(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def as_list(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else as_text(value).split(",")
    return tuple(text for item in items if (text := as_text(item)))


def one_of(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = as_text(value).lower()
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return text

    return parse


def check_url(url: str) -> None:
    try:
        urls.check_url(url, require_https=False)
    except urls.UrlRefused as refused:
        raise ValueError(refused.reason) from None
