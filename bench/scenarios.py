"""The benchmark scenarios of issue 5 and their sizes; `scale` shrinks them for smoke runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bench.webhooks import MATCHING

Mode = Literal["fast", "slow", "hang"]
MIN_EVENTS = 20


@dataclass(frozen=True)
class Scenario:
    """What to publish, where it goes, and how the bridge runs.

    `events` are published before the consumers start (a backlog), unless `rate_per_s` is
    set: then they are published live at that rate once the consumer is fetching.
    `reference` adds a bridge run without the hanging endpoints (healthy throughput kept).
    `api_webhooks`: that many webhooks are created through the admin API (`bench.webhooks`)
    before the events are published, each event going to MATCHING of them.
    """

    key: str
    title: str
    events: int
    endpoints: tuple[Mode, ...] = ("fast",)
    rate_per_s: float | None = None
    workers: int = 1
    reference: bool = False
    runs: int | None = None
    bridge_env: dict[str, str] = field(default_factory=dict)
    api_webhooks: int = 0

    @property
    def healthy(self) -> tuple[int, ...]:
        return tuple(i for i, mode in enumerate(self.endpoints) if mode != "hang")

    @property
    def latency(self) -> bool:
        return self.rate_per_s is not None

    @property
    def per_event(self) -> int:
        """Deliveries per event and healthy endpoint."""
        return MATCHING if self.api_webhooks else 1

    @property
    def backlog(self) -> bool:
        """Published once before any consumer starts; else per consumer once it is ready."""
        return not self.latency and not self.api_webhooks


def scenarios(
    scale: float, backlog_events: int, backlog_runs: int, api_webhooks: int = 500
) -> list[Scenario]:
    def n(count: int) -> int:
        return max(MIN_EVENTS, round(count * scale))

    one = {"WEBHOOK_ENDPOINT_CONCURRENCY": "256"}  # as many connections as the raw semaphore
    four = {"WEBHOOK_ENDPOINT_CONCURRENCY": "64"}
    return [
        Scenario("1", "one fast endpoint", n(20_000), bridge_env=one),
        Scenario("2", "fan-out to 4 endpoints", n(5_000), ("fast",) * 4, bridge_env=four),
        Scenario("3", "endpoint answering in 50 ms", n(10_000), ("slow",), bridge_env=one),
        Scenario(
            "4",
            "3 healthy + 1 never answering",
            n(5_000),
            ("fast", "fast", "fast", "hang"),
            reference=True,
            bridge_env=four | {"WEBHOOK_TIMEOUT": "2s"},
        ),
        Scenario("5", "latency at 500 events/s", n(10_000), rate_per_s=500.0, bridge_env=one),
        Scenario(
            "6",
            "backlog drain",
            max(MIN_EVENTS, round(backlog_events * scale)),
            runs=backlog_runs,
            bridge_env=one,
        ),
        Scenario("7", "--workers 2 on scenario 1", n(20_000), workers=2, bridge_env=one),
        Scenario(
            "8",
            f"{api_webhooks} API webhooks, {MATCHING} per event",
            n(4_000),
            api_webhooks=api_webhooks,
            bridge_env=one,
        ),
    ]
