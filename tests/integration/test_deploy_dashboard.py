"""deploy/grafana/dashboards/webhook-bridge.json: ready for Grafana's file provisioning, on a
Prometheus data source chosen by variable, laid out without overlaps, and described in
docs/operations.md panel by panel."""

from __future__ import annotations

import itertools
from typing import Any

from harness.prometheus import (
    OPERATIONS,
    dashboard,
    dashboard_exprs,
    dashboard_panels,
    selectors,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24
# What the SREs asked to see (issue 3): one or more panels read each of these.
REQUIRED_METRICS = {
    "webhook_bridge_deliveries_total",  # throughput, success ratio
    "webhook_bridge_delivery_attempts_total",  # success ratio, top failing endpoints
    "webhook_bridge_delivery_duration_seconds_bucket",  # attempt latency
    "webhook_bridge_event_to_delivery_seconds_bucket",  # event-to-delivery latency
    "webhook_bridge_retries_total",
    "webhook_bridge_retries_pending",
    "webhook_bridge_dead_letters_total",
    "webhook_bridge_inflight_deliveries",
    "webhook_bridge_consumer_pending",
    "webhook_bridge_oldest_pending_event_age_seconds",
    "webhook_bridge_nats_connected",
}


def _data_panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard_panels() if panel["type"] != "row"]


def test_provisioning_ready_with_a_datasource_variable() -> None:
    board = dashboard()
    assert board["uid"] == "webhook-bridge"
    assert board["schemaVersion"] >= 39
    assert "id" not in board  # provisioning assigns it
    assert "__inputs" not in board  # an export's inputs; provisioning does not fill them
    [variable] = [v for v in board["templating"]["list"] if v["name"] == "datasource"]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    for panel in _data_panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_panels_cover_what_sres_asked_for() -> None:
    read = {selector.name for expr in dashboard_exprs() for selector in selectors(expr)}
    assert read >= REQUIRED_METRICS, f"no panel reads {sorted(REQUIRED_METRICS - read)}"
    quantiles = [expr for expr in dashboard_exprs() if expr.startswith("histogram_quantile(")]
    for bucket in ("delivery_duration_seconds_bucket", "event_to_delivery_seconds_bucket"):
        for q in ("0.5", "0.95", "0.99"):
            assert any(e.startswith(f"histogram_quantile({q},") and bucket in e for e in quantiles)


def _cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
    pos = panel["gridPos"]
    return set(
        itertools.product(
            range(pos["x"], pos["x"] + pos["w"]), range(pos["y"], pos["y"] + pos["h"])
        )
    )


def test_layout_has_unique_ids_and_no_overlaps() -> None:
    panels = dashboard_panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= GRID_COLUMNS, panel["title"]
        cells = _cells(panel)
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_operations_doc_describes_every_panel() -> None:
    doc = " ".join(OPERATIONS.read_text().split())  # a bold title may wrap across lines
    for panel in dashboard_panels():
        assert panel.get("description") or panel["type"] == "row", panel["title"]
        assert f"**{panel['title']}**" in doc, f"operations.md does not describe {panel['title']!r}"
