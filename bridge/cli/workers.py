"""`run --workers N`: a supervisor running N bridge processes side by side on one machine.

Each worker is an ordinary `webhook-bridge run` process; they share the durable consumers,
so JetStream spreads events and tasks among them like among replicas. Worker i serves its
admin HTTP server on HTTP_PORT + i (an ephemeral port each when HTTP_PORT is 0), so every
worker's /metrics can be scraped and HTTP_PORT itself answers /readyz for the first one.

SIGTERM and SIGINT are forwarded to every worker, which drain as usual; the supervisor exits
when they all have: 0 when each exited 0. A worker that exits on its own stops the others
and the supervisor exits 1, so the process manager restarts the set as one unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal
import sys
from collections.abc import Mapping
from pathlib import Path

from bridge.config.settings import Settings
from bridge.config.values import ConfigError
from bridge.jetstream.embedded import EmbeddedNats, embedded_port
from bridge.observability.logs import log

MAX_PORT = 65535
PR_SET_PDEATHSIG = 1
WORKER_COMMAND = (sys.executable, "-m", "bridge", "run")
Process = asyncio.subprocess.Process


def worker_env(env: Mapping[str, str], index: int, http_port: int) -> dict[str, str]:
    """The environment of worker `index`: the supervisor's, with its own admin port."""
    return {**env, "HTTP_PORT": str(http_port + index if http_port else 0)}


def check_ports(http_port: int, count: int) -> None:
    if http_port and http_port + count - 1 > MAX_PORT:
        raise ConfigError(f"HTTP_PORT: {http_port} + {count} workers runs past port {MAX_PORT}")


async def supervise(
    settings: Settings,
    count: int,
    env: Mapping[str, str],
    stopping: asyncio.Event,
    data_dir: Path | None,
) -> int:
    """Run `count` workers until `stopping` is set or one of them exits; see the docstring."""
    check_ports(settings.http_port, count)
    if data_dir is None:
        return await _run_workers(count, env, settings.http_port, stopping)
    server = EmbeddedNats(data_dir, embedded_port(settings.nats_urls[0]))
    url = await server.start()
    try:
        return await _run_workers(count, {**env, "NATS_URL": url}, settings.http_port, stopping)
    finally:
        await server.stop()


async def _run_workers(
    count: int, env: Mapping[str, str], http_port: int, stopping: asyncio.Event
) -> int:
    workers = [await _spawn(worker_env(env, i, http_port)) for i in range(count)]
    log.info("workers started", count=count, pids=[w.pid for w in workers])
    stop = asyncio.ensure_future(stopping.wait())
    exits = [asyncio.ensure_future(w.wait()) for w in workers]
    await asyncio.wait([stop, *exits], return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    for worker in workers:
        _terminate(worker)
    codes = await asyncio.gather(*exits)
    log.info("workers stopped", exit_codes=codes)
    return 0 if stopping.is_set() and not any(codes) else 1


async def _spawn(env: Mapping[str, str]) -> Process:
    return await asyncio.create_subprocess_exec(
        *WORKER_COMMAND, env=dict(env), stdin=asyncio.subprocess.DEVNULL, preexec_fn=_orphan_signal
    )


def _orphan_signal() -> None:
    """In the worker, before exec: SIGTERM when the supervisor dies, even by kill -9, so a
    worker drains and exits instead of running on unsupervised (Linux only)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _terminate(worker: Process) -> None:
    if worker.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            worker.send_signal(signal.SIGTERM)
