"""Log flood control: at most `burst` lines per key per window, then a count of what was dropped.

A dead endpoint fails every attempt; logging each one would bury everything else. The first
`burst` failures of a key in a window are logged; the rest are counted, and the next line
logged for that key carries how many were suppressed since the previous one.
"""

from __future__ import annotations

import msgspec

MAX_KEYS = 10_000


class Verdict(msgspec.Struct, frozen=True):
    log: bool
    suppressed: int = 0  # lines dropped for this key since its previous logged line


class _Window(msgspec.Struct):
    started_s: float
    logged: int = 0
    suppressed: int = 0


class Throttle:
    """Decides, per key, whether a repeated log line is written; pure given `now_s`."""

    def __init__(self, burst: int, window_s: float) -> None:
        self._burst = burst
        self._window_s = window_s
        self._windows: dict[str, _Window] = {}

    def admit(self, key: str, now_s: float) -> Verdict:
        window = self._current(key, now_s)
        if window.logged >= self._burst:
            window.suppressed += 1
            return Verdict(log=False)
        window.logged += 1
        verdict = Verdict(log=True, suppressed=window.suppressed)
        window.suppressed = 0
        return verdict

    def _current(self, key: str, now_s: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now_s - window.started_s >= self._window_s:
            carried = window.suppressed if window else 0
            if window is None and len(self._windows) >= MAX_KEYS:
                self._windows.clear()  # bounded memory; the worst case is a few extra lines
            window = self._windows[key] = _Window(started_s=now_s, suppressed=carried)
        return window
