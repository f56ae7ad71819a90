"""What becomes of a delivery whose endpoint is down (bridge/jetstream/holding.py), in a table:
attempted (None), held again (Nak), or dead-lettered once held too long."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from bridge.jetstream.holding import Holding
from bridge.policy import breaker
from bridge.policy.breaker import Breaker
from bridge.policy.decisions import ACK, Decision, Nak
from bridge.policy.routing import Target
from bridge.policy.tasks import DeliveryTask

NOW_S = 1_000_000.0
HOLD_MAX_S = 60.0
WAIT_S = 2.0
OPEN = breaker.opened("http://h:80", NOW_S - 10, 5.0)
TASK = DeliveryTask(
    delivery_id="dlv_1",
    event_id="e-1",
    event="job.completed",
    job_id="j-1",
    tenant_id=None,
    target=Target("http://h/hook", "h", "default"),
    body=b"{}",
    published_at_s=NOW_S - 100,
)


class FakeHealth:
    def __init__(self, state: Breaker | None, probe: bool) -> None:
        self._state, self._probe = state, probe
        self.held: list[tuple[str, int]] = []

    def breaker(self, _url: str) -> Breaker | None:
        return self._state

    def hold_s(self, _breaker: Breaker) -> float:
        return WAIT_S

    def note_held(
        self, task: DeliveryTask, count: int, _wait_s: float, *, arriving: bool = False
    ) -> None:
        self.held.append((task.delivery_id, count))

    def released(self, _task: DeliveryTask) -> None:
        pass

    async def may_probe(self, _task: DeliveryTask) -> bool:
        return self._probe


class FakeDispatcher:
    def __init__(self) -> None:
        self.dead: list[str] = []

    async def dead_letter(self, _task: DeliveryTask, reason: str) -> None:
        self.dead.append(reason)


def holding(state: Breaker | None, probe: bool = False) -> tuple[Holding, Any, Any]:
    health, dispatcher = FakeHealth(state, probe), FakeDispatcher()
    fakes: Any = (health, dispatcher)
    return Holding(*fakes, HOLD_MAX_S, clock=lambda: NOW_S), health, dispatcher


def held_since(seconds_ago: float) -> DeliveryTask:
    return msgspec.structs.replace(TASK, held_since_s=NOW_S - seconds_ago)


@pytest.mark.parametrize(
    ("state", "probe", "task", "decision", "dead"),
    [
        pytest.param(None, False, TASK, None, [], id="healthy: attempt"),
        pytest.param(OPEN, False, TASK, Nak(WAIT_S), [], id="down: wait again"),
        pytest.param(OPEN, True, TASK, None, [], id="down, the probe: attempt"),
        pytest.param(OPEN, False, held_since(30), Nak(WAIT_S), [], id="held, within the limit"),
        pytest.param(OPEN, True, held_since(61), ACK, ["endpoint_down"], id="held too long"),
        pytest.param(
            breaker.opened("http://h:80", NOW_S - 61, 5.0),
            False,
            TASK,
            ACK,
            ["endpoint_down"],
            id="queued before it opened: held since the opening",
        ),
    ],
)
async def test_single(
    state: Breaker | None,
    probe: bool,
    task: DeliveryTask,
    decision: Decision | None,
    dead: list[str],
) -> None:
    hold, _health, dispatcher = holding(state, probe)
    assert await hold.single(task) == decision
    assert dispatcher.dead == dead


@pytest.mark.parametrize(
    ("state", "probe", "task", "decision"),
    [
        pytest.param(None, False, TASK, None, id="healthy: split"),
        pytest.param(OPEN, False, TASK, Nak(WAIT_S), id="down: the batch waits whole"),
        pytest.param(OPEN, True, TASK, None, id="its first is the probe: split"),
        pytest.param(OPEN, False, held_since(61), None, id="too long: split, each dead-lettered"),
    ],
)
async def test_batch(
    state: Breaker | None, probe: bool, task: DeliveryTask, decision: Decision | None
) -> None:
    hold, health, _dispatcher = holding(state, probe)
    assert await hold.batch(task, 7) == decision
    assert health.held == ([("dlv_1", 7)] if decision is not None else [])


def test_a_first_attempt_to_an_endpoint_down_is_stored_held() -> None:
    assert holding(None)[0].first(TASK) is None
    held = holding(OPEN)[0].first(TASK)
    assert held is not None
    assert (held.held_since_s, held.not_before_s, held.attempt) == (NOW_S, NOW_S + WAIT_S, 1)
