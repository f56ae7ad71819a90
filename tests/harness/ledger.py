"""The chaos ledger: the (event, URL) pairs published, the 2xx answers receivers gave and the
dead letters stored, reconciled against the outcome each pair's plan decides (harness.chaos).

SPEC §3-4 promise: every pair ends delivered (a 2xx was received) or dead-lettered, with the
reason the rules give; delivery is at-least-once. Each pair gets one verdict:

    delivered      2xx answered, no dead letter, and the plan says delivered
    dead_lettered  dead letter(s) with the plan's reason, no 2xx answered
    late_answer    the answer that decides the plan (its 200, or its 410) came on the bridge's
                   last permitted attempt and the bridge recorded no HTTP answer for that
                   attempt (a timeout or a connection error). Success is a 2xx *within*
                   WEBHOOK_TIMEOUT, so that attempt failed and `max_retries_exceeded` is what
                   the SPEC requires. Allowed only then: every dead letter of the pair must be
                   `max_retries_exceeded` with such a last attempt, and a delivered plan must
                   have had its 2xx answered (it is both delivered and dead-lettered), a gone
                   plan none. Seen a few times in 80 000 pairs on a loaded 2-core box, right
                   after nats-server restarts while the bridges catch up (the receiver's own
                   event loop never lagged more than 0.3 s): a CPU-starved bridge does not get
                   the answer in before its 1 s timeout fires.
    missing        neither (lost)
    wrong          anything else, and any 2xx or dead letter for a pair nobody published

Duplicates are 2xx answers beyond the first per delivery id (SPEC: allowed only from a process
dying while attempts were in flight); dead letters beyond the first per delivery id are
counted apart (their Nats-Msg-Id is the delivery id, de-duplicated for two minutes).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from bridge.policy.routing import delivery_id
from harness.chaos import ChaosReceiver, Expected, Plan, plan_key

Verdict = Literal["delivered", "dead_lettered", "late_answer", "missing", "wrong"]


@dataclass(frozen=True)
class Letter:
    """One dead letter as `webhook-bridge dlq list --json` shows it."""

    delivery_id: str
    reason: str
    attempts: int
    last_status: int | None  # of the last recorded attempt; None: no HTTP answer


def letters_from_cli(stdout: str) -> list[Letter]:
    """Parse `dlq list --json` output: one JSON record per line (SPEC §4)."""
    return [_letter(json.loads(line)) for line in stdout.splitlines() if line.strip()]


def _letter(record: Mapping[str, object]) -> Letter:
    attempts = record.get("attempts") or []
    assert isinstance(attempts, list)
    last = attempts[-1].get("status_code") if attempts else None
    return Letter(str(record["delivery_id"]), str(record["reason"]), len(attempts), last)


@dataclass(frozen=True)
class Pair:
    event_id: str
    url: str
    plan_key: str


@dataclass
class Ledger:
    """The pairs published so far, by delivery id."""

    pairs: dict[str, Pair] = field(default_factory=dict)

    def publish(self, event_id: str, job_id: str, urls: list[str]) -> None:
        for url in urls:
            key = plan_key(job_id, urlsplit(url).path)
            self.pairs[delivery_id(event_id, url)] = Pair(event_id, url, key)


@dataclass
class Reconciliation:
    verdicts: Counter[Verdict] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)  # pairs by reason
    duplicates: int = 0
    letter_duplicates: int = 0
    problems: list[str] = field(default_factory=list)  # one line per missing or wrong pair
    late: list[str] = field(default_factory=list)  # one line per late_answer pair

    @property
    def missing(self) -> int:
        return self.verdicts["missing"]

    @property
    def wrong(self) -> int:
        return self.verdicts["wrong"]

    def add(self, pair: str, plan: Plan, seen: tuple[int, int], letters: list[Letter]) -> None:
        """Account for one published pair: `seen` is its (arrivals, 2xx answers) at the
        receiver; `pair` names it in the lines that list unexpected verdicts."""
        answers = seen[1]
        verdict = judge(plan.expected, answers, letters)
        self.verdicts[verdict] += 1
        self.duplicates += max(0, answers - 1)
        self.letter_duplicates += max(0, len(letters) - 1)
        if letters:
            self.dead_lettered[letters[0].reason] += 1
        if verdict in ("missing", "wrong", "late_answer"):
            line = f"{verdict}: {pair} plan {plan}: {_story(seen, letters)}"
            (self.late if verdict == "late_answer" else self.problems).append(line)


def _story(seen: tuple[int, int], letters: list[Letter]) -> str:
    """Arrivals against the bridge's attempts show an attempt that never reached the receiver."""
    dead = [f"{letter.reason} after {letter.attempts} attempts" for letter in letters]
    return f"{seen[0]} arrivals, {seen[1]} 2xx answers, dead letters {dead}"


def reconcile(ledger: Ledger, receiver: ChaosReceiver, letters: list[Letter]) -> Reconciliation:
    """One verdict per published pair (see the module docstring), plus the strays."""
    by_id: defaultdict[str, list[Letter]] = defaultdict(list)
    for letter in letters:
        by_id[letter.delivery_id].append(letter)
    result = Reconciliation()
    for pair_id, pair in ledger.pairs.items():
        shown = f"{pair.event_id} → {pair.url} ({pair_id})"
        seen = receiver.arrivals[pair_id], receiver.answered_2xx[pair_id]
        result.add(shown, receiver.rule.plan(pair.plan_key), seen, by_id.get(pair_id, []))
    _strays(result, ledger, receiver.answered_2xx, by_id)
    return result


def judge(expected: Expected, answers: int, letters: list[Letter]) -> Verdict:
    """The verdict of one pair: its plan's outcome, the 2xx answers, its dead letters."""
    if not letters:
        if not answers:
            return "missing"
        return "delivered" if expected == "delivered" else "wrong"
    if not answers and all(letter.reason == expected for letter in letters):
        return "dead_lettered"
    return "late_answer" if _late_answer(expected, answers, letters) else "wrong"


def _late_answer(expected: Expected, answers: int, letters: list[Letter]) -> bool:
    """See `late_answer` in the module docstring."""
    if expected == "max_retries_exceeded":
        return False
    unanswered = all(
        letter.reason == "max_retries_exceeded" and letter.last_status is None for letter in letters
    )
    return unanswered and (answers > 0) == (expected == "delivered")


def _strays(
    result: Reconciliation,
    ledger: Ledger,
    answered_2xx: Mapping[str, int],
    letters: Mapping[str, list[Letter]],
) -> None:
    """A 2xx or a dead letter for a delivery id nobody published is a wrong outcome too."""
    for stray in (set(answered_2xx) | set(letters)) - set(ledger.pairs):
        result.verdicts["wrong"] += 1
        result.problems.append(f"wrong: {stray} was never published, yet answered or dead")
