"""`webhook-bridge demo` runs end to end on its own, and Ctrl-C at any point leaves nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness.bridge import BRIDGE_BIN, process_env, run_cli
from harness.waiting import wait_for

EXIT_TIMEOUT_S = 30.0
STEP_TIMEOUT_S = 60.0


@pytest.mark.e2e
async def test_demo_runs_and_summarises() -> None:
    result = await run_cli(["demo"], env={}, timeout_s=90)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "SIGNATURE MISMATCH" not in out
    assert "Deliveries by receiver: dead 2, erp 6, flaky 4." in out
    assert "6 events → 12 deliveries" in out
    # 6 erp + 4 flaky + 2 replayed, then the flow to erp and bi (bi's transformed, own secret)
    assert out.count("signatures verified") >= 12
    assert "answered 503" in out  # flaky
    assert "answered 500" in out  # dead
    assert "j_demo_bad  → dead   answered 500 (attempt 3)" in out  # 1 try + 2 retries
    assert "replayed 2 dead letter(s), both delivered" in out
    assert "$ webhook-bridge webhooks add --id bi" in out  # the real CLI, while events flow
    assert "$ webhook-bridge webhooks test bi" in out
    assert "success: status code: 200" in out
    assert "$ webhook-bridge webhooks update bi --active false" in out
    assert "then 0 after the pause" in out
    assert "Traceback" not in result.stderr


def _nats_servers_under(directory: Path) -> list[int]:
    """Pids of nats-server processes whose store is inside `directory`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            args = cmdline.read_bytes().split(b"\0")
            if args[0].endswith(b"nats-server") and str(directory).encode() in b" ".join(args):
                found.append(int(cmdline.parent.name))
    return found


def _leftovers(directory: Path) -> list[str]:
    return [entry.name for entry in directory.iterdir()]


class RunningDemo:
    """`webhook-bridge demo` in its own session (like a terminal job), its stdout collected."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = ""

    async def collect(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.out += line.decode(errors="replace")


@contextlib.asynccontextmanager
async def running_demo(tmp_path: Path) -> AsyncIterator[RunningDemo]:
    proc = await asyncio.create_subprocess_exec(
        str(BRIDGE_BIN),
        "demo",
        env=process_env({"TMPDIR": str(tmp_path)}),  # its nats-server store goes there
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    demo = RunningDemo(proc)
    reader = asyncio.create_task(demo.collect())
    try:
        yield demo
        await asyncio.wait_for(reader, EXIT_TIMEOUT_S)
        await asyncio.wait_for(proc.wait(), EXIT_TIMEOUT_S)
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        for pid in _nats_servers_under(tmp_path):  # never leave one behind, even on failure
            os.kill(pid, signal.SIGKILL)


# Where Ctrl-C lands: while nats-server starts, mid-delivery, during the replay. "group" is a
# terminal's Ctrl-C (every process of the job gets SIGINT, nats-server too); "process" signals
# the demo alone, so only its own clean-up can stop nats-server.
MOMENTS = [
    ("nats-server started", "process"),
    ("▶ publishing", "process"),
    ("▶ publishing", "group"),
    ("▶ the dead receiver", "process"),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("moment", "target"), MOMENTS)
async def test_ctrl_c_at_any_point_stops_every_process(
    tmp_path: Path, moment: str, target: str
) -> None:
    async with running_demo(tmp_path) as demo:

        def reached() -> bool:
            if moment == "nats-server started":
                return bool(_nats_servers_under(tmp_path))
            return moment in demo.out

        await wait_for(
            reached, STEP_TIMEOUT_S, lambda: f"demo never reached {moment!r}: {demo.out}"
        )
        (os.killpg if target == "group" else os.kill)(demo.proc.pid, signal.SIGINT)
    assert demo.proc.returncode == 130, demo.out
    assert "interrupted: stopping the bridge, the receivers and nats-server" in demo.out
    assert _nats_servers_under(tmp_path) == []
    assert _leftovers(tmp_path) == []  # the temp store is gone too
