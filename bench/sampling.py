"""What a soak samples from the bridge process, the table of samples, and the flatness verdict.

A sample reads the process from /proc (resident memory, open file descriptors, how many of
them are sockets) and the bridge's own /metrics (asyncio tasks alive, deliveries and dead
letters so far, retries waiting). The verdict compares the end of the steady phase with its
start (and its middle) once the warm-up is over; each is the median of a few samples, so
one sample taken in the middle of a fault (a pool of timed-out connections, a burst of
retries) does not decide it alone.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

EDGE_SAMPLES = 3
METRIC_PREFIX = "webhook_bridge_"


@dataclass(frozen=True)
class Sample:
    """One look at the bridge; `phase` is `warm-up`, `steady` or `drained`."""

    at_s: float
    phase: str
    rss_mb: float
    fds: int
    sockets: int
    tasks: int
    published: int
    delivered: int
    dead_lettered: int
    retries_pending: int
    fault: str


@dataclass(frozen=True)
class Series:
    """A sampled quantity and how much it may grow before the soak calls it a leak."""

    name: str
    value: Callable[[Sample], float]
    tolerance: float
    relative: bool  # tolerance as a fraction of the start value, else in units


SERIES = (
    Series("RSS MB", lambda s: s.rss_mb, 0.10, relative=True),
    Series("fds", lambda s: s.fds, 16, relative=False),
    Series("sockets", lambda s: s.sockets, 16, relative=False),
    Series("tasks", lambda s: s.tasks, 64, relative=False),
)


def process_figures(pid: int) -> tuple[float, int, int]:
    """Resident MB, open file descriptors and how many are sockets, from /proc."""
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    fd_dir = Path(f"/proc/{pid}/fd")
    links = []
    for fd in fd_dir.iterdir():
        try:
            links.append(os.readlink(fd))
        except OSError:  # closed between the listing and the read
            continue
    return rss_kb / 1024, len(links), sum(link.startswith("socket:") for link in links)


def metric_sums(exposition: str) -> dict[str, float]:
    """Each sample name of the bridge (prefix dropped), summed over its labels; the
    `deliveries_total` samples are also summed per `result`, as `deliveries_total:<result>`."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            name = sample.name.removeprefix(METRIC_PREFIX)
            sums[name] = sums.get(name, 0.0) + sample.value
            if "result" in sample.labels:
                keyed = f"{name}:{sample.labels['result']}"
                sums[keyed] = sums.get(keyed, 0.0) + sample.value
    return sums


HEADER = (
    f"{'t s':>6}  {'phase':<8} {'RSS MB':>7} {'fds':>5} {'sockets':>7} {'tasks':>6} "
    f"{'published':>10} {'delivered':>10} {'dead':>7} {'retrying':>8}  fault"
)


def table(samples: Sequence[Sample]) -> str:
    rows = [HEADER, "-" * len(HEADER)]
    rows += [
        f"{s.at_s:6.0f}  {s.phase:<8} {s.rss_mb:7.1f} {s.fds:5d} {s.sockets:7d} {s.tasks:6d} "
        f"{s.published:10,d} {s.delivered:10,d} {s.dead_lettered:7,d} {s.retries_pending:8,d}"
        f"  {s.fault}"
        for s in samples
    ]
    return "\n".join(rows)


def verdict(samples: Sequence[Sample]) -> tuple[str, bool]:
    """The summary (one line per series) and whether every series stayed flat.

    `flat`: the end is within the tolerance of the start. `stepped`: it is not, but it is
    within the tolerance of the middle of the steady phase: the series rose once and held
    (the allocator keeping the high-water mark of a burst, such as the catch-up after a
    NATS outage), which a leak, growing with the work done, would not. `GROWING`: neither.
    """
    steady = [s for s in samples if s.phase == "steady"]
    if len(steady) < 2 * EDGE_SAMPLES:
        return f"too few steady samples for a verdict ({len(steady)})", False
    head = (
        f"{'series':<8} {'start':>8} {'end':>8} {'min':>8} {'max':>8} {'growth':>9} "
        f"{'allowed':>8}  verdict"
    )
    lines, flat = [head, "-" * len(head)], True
    for series in SERIES:
        line, ok = _judge(series, [series.value(s) for s in steady])
        lines.append(line)
        flat = flat and ok
    return "\n".join(lines), flat


def _judge(series: Series, values: list[float]) -> tuple[str, bool]:
    start, end = _edge(values, 0), _edge(values, len(values) - EDGE_SAMPLES)
    middle = _edge(values, (len(values) - EDGE_SAMPLES) // 2)
    flat = _within(series, end - start, start)
    settled = _within(series, end - middle, middle)
    word = "flat" if flat else "stepped" if settled else "GROWING"
    growth = end - start
    shown = f"{growth / start:+.1%}" if series.relative else f"{growth:+.0f}"
    allowed = f"+{series.tolerance:.0%}" if series.relative else f"+{series.tolerance:.0f}"
    figures = f"{start:8.1f} {end:8.1f} {min(values):8.1f} {max(values):8.1f}"
    return f"{series.name:<8} {figures} {shown:>9} {allowed:>8}  {word}", flat or settled


def _edge(values: list[float], first: int) -> float:
    return statistics.median(values[first : first + EDGE_SAMPLES])


def _within(series: Series, growth: float, base: float) -> bool:
    return growth <= (series.tolerance * base if series.relative else series.tolerance)
