"""Figures from measurements: medians over runs, ratios pair by pair, and the printed table."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.scenarios import Scenario

MB = 1024 * 1024


@dataclass(frozen=True)
class Measurement:
    """One consumer process over one run of a scenario."""

    deliveries: int
    rate_per_s: float
    cpu_us: float
    peak_rss_bytes: int
    latencies_ms: tuple[float, ...] = ()


Run = dict[str, Measurement]  # "raw", "bridge" and maybe "reference" of one run


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    runs: int
    rate_per_s: float
    raw_rate_per_s: float
    ratio: float
    cpu_us: float
    raw_cpu_us: float
    rss_mb: float
    raw_rss_mb: float
    notes: str


def percentile(values: Sequence[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _median(runs: list[Run], variant: str, field: str) -> float:
    return statistics.median(float(getattr(run[variant], field)) for run in runs)


def _median_ratio(runs: list[Run], top: str, bottom: str) -> float:
    """Each run's ratio first (both measured side by side), then the median of those."""
    return statistics.median(run[top].rate_per_s / run[bottom].rate_per_s for run in runs)


def _latency_note(runs: list[Run]) -> str:
    def median_pct(variant: str, fraction: float) -> float:
        return statistics.median(percentile(run[variant].latencies_ms, fraction) for run in runs)

    ours = "/".join(f"{median_pct('bridge', f):.1f}" for f in (0.5, 0.95, 0.99))
    return f"p50/p95/p99 {ours} ms (raw p99 {median_pct('raw', 0.99):.1f} ms)"


def _notes(scenario: Scenario, runs: list[Run]) -> str:
    if scenario.latency:
        return _latency_note(runs)
    if scenario.reference:
        kept = _median_ratio(runs, "bridge", "reference")
        cpu_us = _median(runs, "reference", "cpu_us")
        return (
            f"healthy throughput kept {kept:.0%} (vs the same 3 without the dead one, "
            f"which took {cpu_us:.0f} µs/dlv)"
        )
    if scenario.workers > 1:
        return f"{scenario.workers} worker processes vs raw single process"
    if scenario.api_webhooks:
        deliveries = runs[0]["bridge"].deliveries
        return f"{deliveries:,} deliveries, {scenario.per_event} per event, all as routed"
    return f"{runs[0]['bridge'].deliveries:,} deliveries"


def summarise(scenario: Scenario, runs: list[Run]) -> Row:
    return Row(
        scenario=scenario,
        runs=len(runs),
        rate_per_s=_median(runs, "bridge", "rate_per_s"),
        raw_rate_per_s=_median(runs, "raw", "rate_per_s"),
        ratio=_median_ratio(runs, "bridge", "raw"),
        cpu_us=_median(runs, "bridge", "cpu_us"),
        raw_cpu_us=_median(runs, "raw", "cpu_us"),
        rss_mb=_median(runs, "bridge", "peak_rss_bytes") / MB,
        raw_rss_mb=_median(runs, "raw", "peak_rss_bytes") / MB,
        notes=_notes(scenario, runs),
    )


def against_first(rows: list[Row]) -> list[Row]:
    """API-webhook rows also say their ratio against scenario 1's (one target per event),
    when it ran in the same invocation."""
    first = next((row for row in rows if row.scenario.key == "1"), None)
    if first is None:
        return rows
    return [
        dataclasses.replace(
            row, notes=f"{row.notes}; {row.ratio / first.ratio:.2f}x scenario 1's ratio"
        )
        if row.scenario.api_webhooks
        else row
        for row in rows
    ]


HEADER = (
    "scenario",
    "runs",
    "bridge dlv/s",
    "raw dlv/s",
    "ratio",
    "CPU µs/dlv",
    "raw µs",
    "RSS MB",
    "raw MB",
    "notes",
)


def _cells(row: Row) -> tuple[str, ...]:
    return (
        f"{row.scenario.key} {row.scenario.title}",
        str(row.runs),
        f"{row.rate_per_s:,.0f}",
        f"{row.raw_rate_per_s:,.0f}",
        f"{row.ratio:.2f}x",
        f"{row.cpu_us:,.0f}",
        f"{row.raw_cpu_us:,.0f}",
        f"{row.rss_mb:.0f}",
        f"{row.raw_rss_mb:.0f}",
        row.notes,
    )


def table(rows: list[Row]) -> str:
    lines = [HEADER, *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER) - 1)]
    rendered = []
    for line in lines:
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line[:-1])
        ]
        rendered.append("  ".join([*cells, line[-1]]).rstrip())
    rendered.insert(1, "-" * len(rendered[0]))
    return "\n".join(rendered)
