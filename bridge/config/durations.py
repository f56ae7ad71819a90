"""Durations as people write them: `500ms`, `15s`, `2m`, `1h`, `7d` or plain seconds."""

from __future__ import annotations

import re

_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
# Past this, clocks and timers overflow (datetime, asyncio); no setting or filter needs more.
MAX_DURATION_S = 100 * 365 * 86400.0


def parse_duration_s(text: str) -> float:
    """Seconds in `text`; ValueError with a hint when it is not a duration."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"invalid duration {text!r} (use 500ms, 15s, 2m, 1h or seconds)")
    number, unit = match.groups()
    # dividing keeps 700ms exactly 0.7
    seconds = float(number) / 1000 if unit == "ms" else float(number) * _UNIT_S[unit or "s"]
    if seconds > MAX_DURATION_S:
        raise ValueError(f"duration {text.strip()[:40]!r} is longer than 100 years")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of `seconds` that parse_duration_s reads back."""
    for unit in ("d", "h", "m", "s"):
        count = seconds / _UNIT_S[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{seconds * 1000:g}ms"
