"""`python -m bench.soak` for a few seconds: it starts its processes, injects every kind of
fault once, samples, prints the table, the verdict and a reconciliation that lost nothing.

Growth over seconds means nothing, so the flatness verdict is read, not asserted.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOAK_TIMEOUT_S = 150.0
# 18 s of publishing, a fault every 2.5 s: all five kinds fit before the quiet end window
ARGS = ("--minutes", "0.3", "--rate", "50", "--sample-s", "1.5")
FAULTS = ("--fault-every-s", "2.5", "--fault-s", "1")
KINDS = ("flaky answers 500", "faulty hangs", "faulty resets", "nats-server restart", "steady")


@pytest.mark.e2e
async def test_soak_prints_samples_verdict_and_reconciliation(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.soak", *ARGS, *FAULTS, "--workdir", str(tmp_path)]
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), SOAK_TIMEOUT_S)
    report = out.decode() + err.decode(errors="replace")[-3000:]
    assert process.returncode == 0, report
    lines = out.decode().splitlines()
    header = next(line for line in lines if line.lstrip().startswith("t s"))
    for column in ("RSS MB", "fds", "sockets", "tasks", "delivered", "dead"):
        assert column in header, report
    phases = {line.split()[1] for line in lines[lines.index(header) + 2 :] if line[:1] == " "}
    assert {"warm-up", "steady", "drained"} <= phases, report
    verdicts = {line.split()[0] for line in lines if line.endswith(("flat", "stepped", "GROWING"))}
    assert verdicts == {"RSS", "fds", "sockets", "tasks"}, report
    faults = next(line for line in lines if line.startswith("faults injected:"))
    assert all(kind in faults for kind in KINDS), report
    assert "lost 0" in lines, report
    assert lines[-2].startswith("verdict: "), report
