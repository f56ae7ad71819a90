"""Secret values that never show themselves in repr, str, logs or API output."""

from __future__ import annotations

import re

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
    """The URL with any password in its userinfo replaced, for logs, errors and records.

    A pattern rather than a URL parser, so that malformed URLs (no scheme, bad port, stray
    brackets) are redacted too: everything between the first `:` after `//` and the last `@`
    before the path is the password. The user name may hold a raw `@` itself
    (`//alice@example.com:pw@host`): the password still starts at the first `:`.
    """
    return _PASSWORD.sub(rf"\g<user>{REDACTED}@", url)


# //user:password@host — the user may contain '@', the password ':' and '@'
_PASSWORD = re.compile(r"(?P<user>//[^/?#:]*:)[^/?#]*@")
