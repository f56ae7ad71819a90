"""The overview of `GET /stats` (bridge/admin/stats.py) and who `GET /whoami` says the caller
is: rates between counter readings, the baseline kept, and the refusal of scoped tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from harness.admin_app import admin_client

from bridge.admin.history import buckets, unix_s
from bridge.admin.stats import Overview, Reading, baseline, rates, reading
from bridge.observability.metrics import Metrics


def at(at_s: float, delivered: float = 0, attempts: float = 0, succeeded: float = 0) -> Reading:
    return Reading(
        at_s=at_s, delivered=delivered, dead_lettered=0, attempts=attempts, succeeded=succeeded
    )


@pytest.mark.parametrize(
    ("kept", "now_s", "expected_s"),
    [
        ([0.0], 3.0, 0.0),  # only the start: rates since the start
        ([0.0, 2.0, 5.0], 12.0, 2.0),  # the newest at least 10 s old
        ([0.0, 2.0, 5.0], 15.0, 5.0),
        ([100.0, 104.0], 105.0, 100.0),  # none old enough: the oldest
    ],
)
def test_baseline(kept: list[float], now_s: float, expected_s: float) -> None:
    assert baseline([at(t) for t in kept], now_s, 10.0).at_s == expected_s


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (at(0), at(10, delivered=50, attempts=60, succeeded=45), (5.0, 6.0, 0.0, 0.75)),
        (at(0, 5, 5, 5), at(2, 5, 5, 5), (0.0, 0.0, 0.0, None)),  # no attempt: no ratio
        (at(0), at(4, delivered=4, attempts=4, succeeded=4), (1.0, 1.0, 0.0, 1.0)),
    ],
)
def test_rates(old: Reading, new: Reading, expected: tuple[float, ...]) -> None:
    assert rates(old, new) == expected


def test_the_overview_reads_the_bridges_own_counters() -> None:
    metrics = Metrics()
    overview = Overview(metrics, started_s=1000.0)
    for _ in range(3):
        metrics.attempted("erp", "success", 0.01)
        metrics.delivered("erp", published_at_s=999.0)
    metrics.attempted("crm", "http_error", 0.01)
    metrics.dead_lettered("crm", "max_retries_exceeded")
    metrics.consumer_pending.labels(consumer="events").set(7)
    metrics.consumer_pending.labels(consumer="tasks").set(2)
    first = overview.read(1002.0, dead_letters=4)
    assert (first.deliveries_per_s, first.attempts_per_s, first.success_ratio) == (1.5, 2.0, 0.75)
    assert (first.dead_lettered_per_s, first.lag, first.dead_letters) == (0.5, 9, 4)
    later = overview.read(1020.0, dead_letters=4)  # nothing since the last reading
    assert (later.window_s, later.deliveries_per_s, later.success_ratio) == (18.0, 0.0, None)
    assert reading(metrics, 0.0).succeeded == 3


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[object, object]]:
    config = tmp_path / "bridge.yaml"
    config.write_text(
        "tokens:\n  - {name: acme-ops, token: t-acme, role: admin, tenants: [acme]}\n"
    )
    env = {"ADMIN_TOKEN": "t-admin", "VIEWER_TOKEN": "t-viewer", "BRIDGE_CONFIG": str(config)}
    async with admin_client(env) as served:
        yield served


@pytest.mark.parametrize(
    ("token", "caller", "stats_status"),
    [
        ("t-admin", {"name": "admin", "role": "admin", "tenants": None, "can_write": True}, 503),
        (
            "t-viewer",
            {"name": "viewer", "role": "viewer", "tenants": None, "can_write": False},
            503,
        ),
        (
            "t-acme",
            {"name": "acme-ops", "role": "admin", "tenants": ["acme"], "can_write": True},
            403,
        ),
    ],
)
async def test_whoami_and_who_may_read_stats(
    client: TestClient[object, object], token: str, caller: dict[str, object], stats_status: int
) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    whoami = await client.get("/whoami", headers=auth)
    assert (whoami.status, await whoami.json()) == (200, caller)
    stats = await client.get("/stats", headers=auth)  # 503: no NATS in this test
    assert stats.status == stats_status
    assert (await client.get("/whoami")).status == 401


async def test_whoami_without_any_token_configured() -> None:
    async with admin_client({}) as served:
        answer = await served.get("/whoami")
        assert await answer.json() == {
            "name": "anonymous",
            "role": "viewer",
            "tenants": None,
            "can_write": False,
        }


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        ([], [(0, 0)] * 4),
        ([(90.0, True)], [(0, 0)] * 3 + [(1, 1)]),  # [85, 100): the last bucket
        ([(60.0, True), (69.9, False), (70.0, True)], [(2, 1), (1, 1), (0, 0), (0, 0)]),
        ([(59.9, True), (100.0, True), (120.0, False)], [(0, 0)] * 4),  # outside the span
    ],
)
def test_history_buckets(
    attempts: list[tuple[float, bool]], expected: list[tuple[int, int]]
) -> None:
    found = buckets(attempts, now_s=100.0, within_s=40.0, count=4)
    assert [(b.attempts, b.succeeded) for b in found] == expected
    assert found[0].start == "1970-01-01T00:01:00.000Z"
    assert unix_s("1970-01-01T00:01:05.500Z") == 65.5
