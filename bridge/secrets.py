"""Secret values that never show themselves in repr, str, logs or API output."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"


class Secret:
    """Wraps a secret string; only `reveal()` gives the value back."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact_url(url: str) -> str:
    """The URL with any password in its userinfo replaced, for logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    userinfo = f"{parts.username}:{REDACTED}" if parts.username else REDACTED
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}"))
