"""Durations as people write them: `500ms`, `15s`, `2m`, `1h`, `7d` or plain seconds."""

from __future__ import annotations

import re

_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")


def parse_duration_s(text: str) -> float:
    """Seconds in `text`; ValueError with a hint when it is not a duration."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"invalid duration {text!r} (use 500ms, 15s, 2m, 1h or seconds)")
    number, unit = match.groups()
    return float(number) * _UNITS_S[unit or "s"]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of `seconds` that parse_duration_s reads back."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNITS_S[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{round(seconds * 1000)}ms"
