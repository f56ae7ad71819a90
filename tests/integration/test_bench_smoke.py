"""`python -m bench` at tiny sizes: it starts its processes, measures, and prints the table.

Figures at these sizes mean nothing, so nothing is asserted about them. Scenario 8 checks
itself: the run fails unless each webhook's path got exactly the events of its names.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH_TIMEOUT_S = 120.0
# a backlog, the healthy-throughput reference, live latency and API webhooks (50 of them, so
# that creating them takes a second): every kind of measurement
ARGS = (
    *("--runs", "1", "--scale", "0.001", "--backlog-events", "40"),
    *("--api-webhooks", "50", "--only", "1,4,5,8"),
)


@pytest.mark.e2e
async def test_bench_prints_its_table(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench", *ARGS, "--workdir", str(tmp_path)]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), BENCH_TIMEOUT_S)
    assert process.returncode == 0, err.decode(errors="replace")[-3000:]
    lines = out.decode().splitlines()
    assert lines[0].startswith("machine: ")
    header = next(line for line in lines if line.startswith("scenario"))
    for column in ("bridge dlv/s", "raw dlv/s", "ratio", "CPU µs/dlv", "RSS MB"):
        assert column in header
    rows = {line.split()[0]: line for line in lines[lines.index(header) + 2 :]}
    assert list(rows) == ["1", "4", "5", "8"]
    assert "healthy throughput kept" in rows["4"]
    assert "p50/p95/p99" in rows["5"]
    assert rows["8"].startswith("8 50 API webhooks, 5 per event")
    assert re.search(r" \d+\.\d\dx .* 100 deliveries, 5 per event, all as routed", rows["8"])
    assert re.search(r"; \d+\.\d\dx scenario 1's ratio$", rows["8"])
