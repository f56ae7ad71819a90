"""A clock that moves only when a test moves it, for code that takes its clock as an argument."""

from __future__ import annotations


class FakeClock:
    """Call it for the time; set `now_s` to move it."""

    def __init__(self, now_s: float = 1000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s
