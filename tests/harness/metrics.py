"""Reading Prometheus text exposition without a client library."""

from __future__ import annotations


def metric_total(exposition: str, name: str) -> float:
    """Sum of every sample of `name`, over all label sets (0.0 when absent)."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        sample_name = line.split("{", 1)[0].split(" ", 1)[0]
        if sample_name == name:
            total += float(line.rsplit(" ", 1)[-1])
    return total
