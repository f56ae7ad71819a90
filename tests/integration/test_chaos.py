"""The chaos ledger at CI size (issue 6): every (event, URL) pair ends delivered or
dead-lettered exactly as the receivers' seeded rules say, while bridges are killed, stopped
and replaced and nats-server restarts. bench/chaos.py runs the same harness bigger.

The rule and the verdicts are checked first on their own, so a failure of the run points at
the bridge, not at the ledger's arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.chaos import Expected, Rule
from harness.chaos_run import ChaosConfig, ChaosRun
from harness.ledger import Letter, Verdict, judge

# one fault of each kind: kill -9 a bridge, SIGTERM one, restart nats-server, kill -9 it
CONFIG = ChaosConfig(events=300, endpoints=4, seed=6, batches=4)
GONE = Letter("dlv_x", "gone", attempts=2, last_status=410)
EXHAUSTED = Letter("dlv_x", "max_retries_exceeded", attempts=4, last_status=500)
TIMED_OUT = Letter("dlv_x", "max_retries_exceeded", attempts=4, last_status=None)


@pytest.mark.parametrize(
    ("expected", "answers", "letters", "verdict"),
    [
        ("delivered", 1, [], "delivered"),
        ("delivered", 3, [], "delivered"),
        ("delivered", 0, [], "missing"),
        ("gone", 0, [], "missing"),
        ("gone", 0, [GONE], "dead_lettered"),
        ("gone", 0, [EXHAUSTED], "wrong"),
        ("max_retries_exceeded", 0, [EXHAUSTED, EXHAUSTED], "dead_lettered"),
        ("max_retries_exceeded", 1, [], "wrong"),
        ("delivered", 0, [EXHAUSTED], "wrong"),
        ("delivered", 1, [TIMED_OUT], "late_answer"),  # the bridge never saw that 2xx
        ("delivered", 0, [TIMED_OUT], "wrong"),  # no 2xx answered: an attempt never arrived
        ("delivered", 1, [EXHAUSTED], "wrong"),  # it saw a 500 where the plan gives 200
        ("gone", 0, [TIMED_OUT], "late_answer"),  # the bridge never saw that 410
        ("gone", 1, [TIMED_OUT], "wrong"),
        ("gone", 1, [GONE], "wrong"),
        ("max_retries_exceeded", 0, [TIMED_OUT], "dead_lettered"),
        ("max_retries_exceeded", 0, [GONE], "wrong"),
    ],
)
def test_verdicts(
    expected: Expected, answers: int, letters: list[Letter], verdict: Verdict
) -> None:
    assert judge(expected, answers, letters) == verdict


def test_plans_are_seeded_and_keep_within_the_retry_budget() -> None:
    rule = Rule(seed=6, max_retry=3)
    plans = [rule.plan(f"job-{i} /endpoint-0") for i in range(2000)]
    assert plans == [Rule(seed=6, max_retry=3).plan(f"job-{i} /endpoint-0") for i in range(2000)]
    assert {plan.kind for plan in plans} == {"ok", "flaky", "dead", "gone"}
    for plan in plans:
        failures = [mode for mode in plan.script if mode != "200"]
        assert set(failures) <= {"500", "hang", "reset"}
        if plan.kind in ("flaky", "gone"):
            assert len(plan.script) <= rule.max_retry  # so the bridge reaches the answer
        if plan.kind == "dead":
            assert plan.then == "500"
            assert len(plan.script) == rule.max_retry + 1


@pytest.mark.e2e
@pytest.mark.timeout(150)
async def test_chaos_ledger_reconciles(tmp_path: Path) -> None:
    async with ChaosRun(CONFIG, tmp_path) as run:
        report = await run.execute()
    print(report.table())
    assert report.ledger.missing == 0, report.table()
    assert report.ledger.wrong == 0, report.table()
    drained = [fault.exit_code for fault in report.faults if fault.kind == "term"]
    assert drained == [0], f"a bridge did not drain cleanly on SIGTERM:\n{report.table()}"
