"""Which answers are receiver signals (bridge/policy/signals.py)."""

from __future__ import annotations

import pytest

from bridge.policy.signals import Signal, signal_of


@pytest.mark.parametrize(
    ("status", "header", "ok", "signal"),
    [
        (410, None, False, "gone"),
        (500, "abort-message", False, "abort"),
        (200, "abort-message", True, None),  # delivered: nothing to stop
        (200, "disable", True, "disable"),
        (503, "disable", False, "disable"),
        (500, None, False, None),
        (200, "something-else", True, None),
    ],
)
def test_signals(status: int, header: str | None, ok: bool, signal: Signal | None) -> None:
    assert signal_of(status, header, ok) == signal
