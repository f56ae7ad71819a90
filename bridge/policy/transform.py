"""Per-webhook transforms: a JMESPath expression applied to the event body before signing.

Expressions are compiled once (cached by their text, so once per webhook change, never per
event). Applying one gives the JSON bytes that are signed and sent; an expression that fails on
an event, or gives null, raises `TransformFailed` and the delivery is dead-lettered
(`transform_error`).
"""

from __future__ import annotations

import functools
from typing import Any, Protocol, cast

import jmespath
import jmespath.exceptions
import msgspec

CACHED_EXPRESSIONS = 4096
MAX_EXPRESSION_CHARS = 4096


class Expression(Protocol):
    def search(self, value: Any) -> Any: ...


class TransformFailed(Exception):
    """The expression cannot give a body for this event; the message is one line."""


@functools.lru_cache(maxsize=CACHED_EXPRESSIONS)
def compiled(expression: str) -> Expression:
    """Raises ValueError with the parser's reason for an invalid expression."""
    if not expression.strip():
        raise ValueError("empty JMESPath expression")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        return cast(Expression, jmespath.compile(expression))
    except jmespath.exceptions.JMESPathError as error:
        raise ValueError(f"invalid JMESPath: {_one_line(error)}") from None


def apply(expression: str, body: bytes) -> bytes:
    """The transformed body as compact JSON; raises TransformFailed."""
    try:
        result = compiled(expression).search(msgspec.json.decode(body))
    except (jmespath.exceptions.JMESPathError, msgspec.DecodeError) as error:
        raise TransformFailed(f"transform failed: {_one_line(error)}") from None
    except (TypeError, ValueError, ArithmeticError, RecursionError) as error:
        raise TransformFailed(f"transform failed: {type(error).__name__}") from None
    if result is None:
        raise TransformFailed("transform gave null for this event")
    return msgspec.json.encode(result)


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:300]
