"""The processes a benchmark run starts (nats-server, receivers, consumers) and their meters."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import aiohttp
import msgspec
import psutil  # type: ignore[import-untyped]

from bench.receiver import PATHS_PATH, STATS_PATH
from bridge.jetstream.embedded import EmbeddedNats, free_port

STOP_TIMEOUT_S = 30.0
RECEIVER_START_TIMEOUT_S = 15.0
BRIDGE_BIN = Path(sys.executable).parent / "webhook-bridge"
PYTHON = sys.executable
PY_SPY = Path(sys.executable).parent / "py-spy"
PY_SPY_ARGS = ("--format", "raw", "--function", "--rate", "200", "--nonblocking", "--subprocesses")


class Stats(msgspec.Struct):
    """A receiver's `GET /_stats` answer (see bench.receiver)."""

    count: int
    first_s: float
    last_s: float
    latencies_ms: list[float]


_STATS = msgspec.json.Decoder(Stats)


class Child:
    """One subprocess, its output in a log file; stopped with SIGTERM (SIGKILL if stuck)."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @classmethod
    async def start(
        cls, argv: list[str], log_path: Path, env: dict[str, str] | None = None, *, pipe: bool
    ) -> Child:
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipe else log,
                stderr=log,
            )
        return cls(process, log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> bool:
        return self.process.returncode is not None

    async def stop(self) -> int:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()

    def tail(self, max_chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-max_chars:]


class Receiver:
    """A `bench.receiver` process; `url(path)` points at it."""

    def __init__(self, child: Child, port: int) -> None:
        self.child = child
        self.port = port

    @classmethod
    async def start(cls, log_path: Path, *args: str) -> Receiver:
        argv = [PYTHON, "-m", "bench.receiver", *args]
        child = await Child.start(argv, log_path, python_env(), pipe=True)
        assert child.process.stdout is not None
        line = await asyncio.wait_for(child.process.stdout.readline(), RECEIVER_START_TIMEOUT_S)
        if not line.startswith(b"port "):
            raise RuntimeError(f"receiver did not start: {child.tail()}")
        return cls(child, int(line.split()[1]))

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def stats(self, session: aiohttp.ClientSession) -> Stats:
        async with session.get(self.url(STATS_PATH)) as response:
            return _STATS.decode(await response.read())

    async def by_path(self, session: aiohttp.ClientSession) -> dict[str, int]:
        """Arrivals per path (a receiver started with `--paths`)."""
        async with session.get(self.url(PATHS_PATH)) as response:
            return msgspec.json.decode(await response.read(), type=dict[str, int])


class Meter:
    """CPU seconds and peak RSS of a process and its children (a supervisor's workers)."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_s(self) -> float:
        total = 0.0
        for process in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def peak_rss_bytes(self) -> int:
        """Sum of each process's high-water mark (VmHWM), read before the processes exit."""
        return sum(_high_water_bytes(process.pid) for process in self._tree())


def _high_water_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def python_env() -> dict[str, str]:
    """The bench's own processes import `bench` from the repository root."""
    root = str(Path(__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": root}


async def start_nats(store_dir: Path) -> EmbeddedNats:
    server = EmbeddedNats(store_dir, free_port())
    await server.start()
    return server


async def start_raw(
    log_path: Path,
    nats_url: str,
    stream: str,
    durable: str,
    urls: list[str],
    *,
    routes: Path | None = None,
) -> Child:
    """`routes`: a JSON file of event name → URLs, instead of every URL for every event."""
    argv = [PYTHON, "-m", "bench.raw", nats_url, stream, durable, *urls]
    argv += ["--routes", str(routes)] if routes is not None else []
    return await Child.start(argv, log_path, python_env(), pipe=False)


async def start_bridge(log_path: Path, env: dict[str, str], workers: int) -> Child:
    argv = [str(BRIDGE_BIN), "run", *(["--workers", str(workers)] if workers > 1 else [])]
    return await Child.start(argv, log_path, _inherited_env() | env, pipe=False)


async def start_profiler(pid: int, output: Path) -> Child:
    """`py-spy record` attached to `pid`: it writes collapsed stacks when the process exits."""
    argv = [str(PY_SPY), "record", *PY_SPY_ARGS, "--pid", str(pid), "-o", str(output)]
    return await Child.start(argv, output.with_suffix(".log"), pipe=False)


def _inherited_env() -> dict[str, str]:
    """PATH, and PYTHONPATH when set: it lets a bench run measure another checkout."""
    return {name: os.environ[name] for name in ("PATH", "PYTHONPATH") if name in os.environ}
