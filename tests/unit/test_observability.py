"""Label capping: producers' data must not create unbounded metric series."""

from __future__ import annotations

from prometheus_client import generate_latest

from bridge.observability.metrics import MAX_ENDPOINT_LABELS, MAX_EVENT_LABELS, OTHER_LABEL, Metrics


def test_endpoint_labels_are_capped() -> None:
    metrics = Metrics()
    hosts = [f"host-{i}.example" for i in range(MAX_ENDPOINT_LABELS + 50)]
    labels = [metrics.endpoint_label(host) for host in hosts]
    assert labels[:MAX_ENDPOINT_LABELS] == hosts[:MAX_ENDPOINT_LABELS]
    assert set(labels[MAX_ENDPOINT_LABELS:]) == {OTHER_LABEL}
    assert metrics.endpoint_label(hosts[0]) == hosts[0]  # known values keep their label


def test_event_names_are_capped_in_events_received() -> None:
    metrics = Metrics()
    for i in range(1000):
        metrics.received(f"weird.event.{i}")
    text = generate_latest(metrics.registry).decode()
    series = [
        line
        for line in text.splitlines()
        if line.startswith("webhook_bridge_events_received_total")
    ]
    assert len(series) <= MAX_EVENT_LABELS + 1
    assert any(f'event="{OTHER_LABEL}"' in line for line in series)
