"""The dashboard and the alert rules read series a running bridge really exports: after a success,
a retry, a dead letter and an invalid event, every selector they use matches /metrics, and a real
Prometheus scraping the bridge runs every query and rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.bridge import BridgeProcess, Bridges
from harness.ports import free_port
from harness.prometheus import (
    ALERTS,
    PrometheusServer,
    Sample,
    Selector,
    dashboard_exprs,
    grouping_labels,
    require_tool,
    rule_exprs,
    samples,
    scrape_config,
    selectors,
)
from harness.publish import event_subject, has_dead_letters, job_event, publish_event, publish_raw
from harness.receiver import Receiver
from nats.js import JetStreamContext

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

# Labels Prometheus adds when it scrapes: never in /metrics itself.
TARGET_LABELS = {"instance", "job"}
TRAFFIC_TIMEOUT_S = 20.0
SCRAPE_TIMEOUT_S = 20.0


def _new_bridge(receiver: Receiver, bridges: Bridges) -> BridgeProcess:
    """A bridge (not started yet) delivering to /ok, /flaky (500 then 200) and /gone (410),
    and to an origin where nothing listens: its breaker opens at the second failure, so the
    endpoint health series (SPEC §11) have an endpoint to show."""
    receiver.reply("/flaky", 500, 200)
    receiver.reply("/gone", 410)
    urls = [receiver.url(path) for path in ("/ok", "/flaky", "/gone")]
    urls.append(f"http://127.0.0.1:{free_port()}/down")
    env = {"DEFAULT_WEBHOOK_URLS": ",".join(urls), "WEBHOOK_BREAKER_FAILURES": "2"}
    return bridges.new(env)


async def _start_with_traffic(
    bridge: BridgeProcess, js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    """Start `bridge`, then a success, a retry then a success, a dead letter and an invalid
    event."""
    await bridge.start()
    await bridge.wait_ready()
    await publish_event(js, job_event("job.completed", "j-1"), "evt-good")
    await publish_raw(js, event_subject("job.started"), b"this is {not json", "evt-invalid")
    await bridges.wait_for(has_dead_letters(js, 2), TRAFFIC_TIMEOUT_S, "410 and invalid event")
    await bridges.wait_for(lambda: receiver.count("/flaky") >= 2, TRAFFIC_TIMEOUT_S, "the retry")


def _all_exprs() -> list[str]:
    return dashboard_exprs() + rule_exprs()


def _all_selectors() -> list[Selector]:
    unique = {s.text: s for expr in _all_exprs() for s in selectors(expr)}
    return list(unique.values())


def _unmatched(exposed: list[Sample]) -> list[str]:
    """Selectors no sample matches, and `by (...)` labels no sample of their expression has."""
    missing = [
        s.text for s in _all_selectors() if not any(s.matches(x.name, x.labels) for x in exposed)
    ]
    for expr in _all_exprs():
        names = {s.name for s in selectors(expr)}
        labels = {label for x in exposed if x.name in names for label in x.labels}
        missing += [
            f"{label} in {expr}" for label in grouping_labels(expr) - labels - TARGET_LABELS
        ]
    return missing


async def test_every_series_of_dashboard_and_rules_is_exported(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges
) -> None:
    bridge = _new_bridge(receiver, bridges)
    await _start_with_traffic(bridge, js, receiver, bridges)
    missing: list[str] = []

    async def all_exported() -> bool:
        nonlocal missing
        missing = _unmatched(samples((await bridge.get("/metrics"))[1]))
        return not missing

    await bridges.wait_for(all_exported, TRAFFIC_TIMEOUT_S, lambda: f"not in /metrics: {missing}")


async def test_a_real_prometheus_scrapes_the_bridge_and_runs_every_query(
    js: JetStreamContext, receiver: Receiver, bridges: Bridges, tmp_path: Path
) -> None:
    program = require_tool("prometheus")
    bridge = _new_bridge(receiver, bridges)
    target = bridge.admin_url("").removeprefix("http://")
    server = PrometheusServer(program, scrape_config(target, [ALERTS]), tmp_path)
    await server.start()  # first, as it takes ~5 s to start scraping a new target
    try:
        await _start_with_traffic(bridge, js, receiver, bridges)
        await _check_scraped(server, bridges)
    finally:
        await server.stop()


async def _check_scraped(server: PrometheusServer, bridges: Bridges) -> None:
    empty: list[str] = []

    async def every_selector_has_series() -> bool:
        nonlocal empty
        empty = [s.text for s in _all_selectors() if not await server.query(s.text)]
        return not empty

    await bridges.wait_for(every_selector_has_series, SCRAPE_TIMEOUT_S, lambda: f"empty: {empty}")
    for expr in _all_exprs():
        await server.query(expr)  # fails on any PromQL error
    await bridges.wait_for(lambda: _rules_evaluated(server), SCRAPE_TIMEOUT_S, "rules evaluated")
    # The first dead letter of its reason: a new series, which increase() alone cannot see.
    await bridges.wait_for(
        lambda: _firing(server, "WebhookBridgeDeadLetters", reason="gone"),
        SCRAPE_TIMEOUT_S,
        "the dead-letter alert did not fire",
    )


async def _rules_evaluated(server: PrometheusServer) -> bool:
    rules = [rule for group in (await server.api("rules"))["groups"] for rule in group["rules"]]
    assert len(rules) == len(rule_exprs())
    assert not [rule["lastError"] for rule in rules if rule["health"] == "err"]
    return all(rule["health"] == "ok" for rule in rules)


async def _firing(server: PrometheusServer, alert: str, **labels: str) -> bool:
    alerts = (await server.api("alerts"))["alerts"]
    return any(
        a["labels"]["alertname"] == alert
        and a["state"] == "firing"
        and labels.items() <= a["labels"].items()
        for a in alerts
    )
