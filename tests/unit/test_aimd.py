"""Adaptive concurrency (bridge/policy/aimd.py): additive increase, multiplicative decrease."""

from __future__ import annotations

import pytest

from bridge.policy.aimd import Aimd


def run(aimd: Aimd, script: str, duration_s: float = 0.1) -> list[int]:
    """`s` a success at the usual latency, `S` a much slower one, `f` a failure."""
    limits = []
    for step in script:
        if step == "f":
            aimd.failed()
        else:
            aimd.succeeded(duration_s * (10 if step == "S" else 1))
        limits.append(aimd.limit)
    return limits


@pytest.mark.parametrize(
    ("start", "script", "limits"),
    [
        (1, "s", [2]),  # one round of one success: +1
        (1, "ssss", [2, 2, 2, 3]),  # +1/limit a success: about one per round
        (4, "ffff", [2, 2, 1, 1]),  # halved once per round, never below 1
        (16, "f", [8]),  # the first trouble cuts at once
        (4, "sS", [4, 2]),  # an attempt ten times slower is congestion
    ],
)
def test_limit_follows_results(start: int, script: str, limits: list[int]) -> None:
    assert run(Aimd(16, start), script) == limits


def test_grows_to_the_ceiling_and_stops_there() -> None:
    aimd = Aimd(4)
    limits = run(aimd, "s" * 20)
    assert (limits[0], max(limits), limits[-1]) == (2, 4, 4)
    assert aimd.full
    assert sorted(limits) == limits  # never a jump down without trouble
