"""The real `webhook-bridge` command as a subprocess, with its output kept in files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
from multidict import CIMultiDict

from harness.ports import LOOPBACK, free_port
from harness.waiting import Message, Predicate, check, stays_true, wait_for

BRIDGE_BIN = Path(sys.executable).parent / "webhook-bridge"
READY_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 30.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=2)

TEST_SECRET = "integration-test-secret"
# Small waits keep the suite fast; tests that need other values override them.
FAST_ENV = {
    "LOG_FORMAT": "json",
    "WEBHOOK_SECRET": TEST_SECRET,
    "WEBHOOK_TIMEOUT": "2s",
    "WEBHOOK_RETRY_MIN_WAIT": "200ms",
    "WEBHOOK_RETRY_MAX_WAIT": "1s",
    "SHUTDOWN_TIMEOUT": "5s",
}


def process_env(env: Mapping[str, str]) -> dict[str, str]:
    """Only PATH is inherited; everything else is what the test passes."""
    return {"PATH": os.environ.get("PATH", "")} | dict(env)


def _open_log(path: Path) -> BinaryIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("wb")


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


async def run_cli(
    args: Sequence[str],
    env: Mapping[str, str],
    timeout_s: float = CLI_TIMEOUT_S,
    program: Path = BRIDGE_BIN,
    stdin: bytes | None = None,
) -> CliResult:
    """Run `webhook-bridge <args>` to completion (killed and failed after `timeout_s`), with
    `stdin` as its standard input (none when None)."""
    proc = await asyncio.create_subprocess_exec(
        str(program),
        *args,
        env=process_env(env),
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        command = " ".join(args)
        raise AssertionError(f"webhook-bridge {command} still running after {timeout_s}s") from None
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))


@dataclass(frozen=True)
class Answer:
    """An admin API answer."""

    status: int
    headers: CIMultiDict[str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class BridgeProcess:
    """`webhook-bridge run` with HTTP_HOST=127.0.0.1 and a free HTTP_PORT unless `env` sets them.

    `command` replaces the program (the harness self-test runs a stand-in).
    """

    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        name: str = "bridge",
        command: Sequence[str] = (str(BRIDGE_BIN), "run"),
    ) -> None:
        defaults = {"HTTP_HOST": LOOPBACK, "HTTP_PORT": str(free_port())}
        self.env: dict[str, str] = defaults | dict(env)
        self.command = tuple(command)
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        self.name = name
        self._proc: asyncio.subprocess.Process | None = None
        self._exit_expected = False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "bridge was never started"
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    @property
    def died(self) -> bool:
        """Exited although nobody stopped it or waited for it to exit."""
        return self.returncode is not None and not self._exit_expected

    def admin_url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.env['HTTP_PORT']}{path}"

    async def start(self) -> None:
        """Spawn the process; does not wait for readiness."""
        with _open_log(self.stdout_path) as out, _open_log(self.stderr_path) as err:
            self._proc = await asyncio.create_subprocess_exec(
                *self.command,
                env=process_env(self.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    async def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll GET /readyz until it answers 200; fail early if the process exits."""
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:

            async def ready() -> bool:
                if not self.running:
                    raise AssertionError(
                        f"{self.name} exited with {self.returncode}: {self.tail()}"
                    )
                return await self._get_status(session, "/readyz") == 200

            await wait_for(ready, timeout_s, lambda: f"{self.name} not ready: {self.tail()}")

    async def status(self, path: str) -> int | None:
        """The status code of GET `path` (e.g. /readyz); None while nothing answers."""
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            return await self._get_status(session, path)

    async def _get_status(self, session: aiohttp.ClientSession, path: str) -> int | None:
        try:
            async with session.get(self.admin_url(path)) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def get(self, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        """GET an admin route; returns (status, body text)."""
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
            session.get(self.admin_url(path), headers=headers) as response,
        ):
            return response.status, await response.text()

    async def post(
        self, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, str]:
        """POST JSON to an admin route; returns (status, body text)."""
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
            session.post(self.admin_url(path), json=body, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """Any admin request with a JSON body (or none); the answer's status, headers, text."""
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
            session.request(method, self.admin_url(path), json=body, headers=headers) as response,
        ):
            return Answer(response.status, CIMultiDict(response.headers), await response.text())

    async def terminate(self, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        """SIGTERM, then the exit code; fails (after a SIGKILL) if it does not exit in time."""
        self._signal(signal.SIGTERM)
        try:
            return await self.wait_exit(timeout_s)
        except AssertionError:
            await self.kill()
            raise

    async def kill(self) -> int:
        """kill -9 and reap."""
        self._signal(signal.SIGKILL)
        return await self.wait_exit(EXIT_TIMEOUT_S)

    async def wait_exit(self, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        assert self._proc is not None, "bridge was never started"
        self._exit_expected = True
        try:
            return await asyncio.wait_for(self._proc.wait(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"{self.name} still running after {timeout_s}s") from None

    def _signal(self, sig: signal.Signals) -> None:
        self._exit_expected = True
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def log_records(self) -> list[dict[str, Any]]:
        """Every JSON object logged on stdout or stderr (LOG_FORMAT=json)."""
        lines = (self.stdout_text() + "\n" + self.stderr_text()).splitlines()
        return [record for line in lines if (record := _json_object(line)) is not None]

    def tail(self, max_chars: int = 3000) -> str:
        out, err = self.stdout_text()[-max_chars:], self.stderr_text()[-max_chars:]
        title = f"{self.name} (exit code {self.returncode})"
        return f"\n--- {title} stdout ---\n{out}\n--- {title} stderr ---\n{err}"


def _json_object(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Bridges:
    """Starts bridges over a shared base env and kills whatever is still running at the end."""

    def __init__(
        self,
        base_env: Mapping[str, str],
        log_dir: Path,
        command: Sequence[str] = (str(BRIDGE_BIN), "run"),
    ) -> None:
        self.base_env = dict(base_env)
        self.log_dir = log_dir
        self.command = tuple(command)
        self.started: list[BridgeProcess] = []
        self._reported: set[str] = set()

    def new(self, env: Mapping[str, str] | None = None) -> BridgeProcess:
        name = f"bridge-{len(self.started) + 1}"
        env = self.base_env | dict(env or {})
        bridge = BridgeProcess(env, self.log_dir, name, self.command)
        self.started.append(bridge)
        return bridge

    async def start(self, env: Mapping[str, str] | None = None) -> BridgeProcess:
        """A new bridge, started and ready."""
        bridge = self.new(env)
        await bridge.start()
        await bridge.wait_ready()
        return bridge

    async def cli(self, *args: str, env: Mapping[str, str] | None = None) -> CliResult:
        return await run_cli(args, self.base_env | dict(env or {}))

    def check_alive(self) -> None:
        """Fail at once if a bridge exited by itself: waiting on would only hide the cause."""
        for bridge in self.started:
            if bridge.died and bridge.name not in self._reported:
                self._reported.add(bridge.name)  # fail the test once, not again at teardown
                raise AssertionError(f"{bridge.name} died: {bridge.tail()}")

    async def wait_for(self, predicate: Predicate, timeout_s: float, message: Message) -> None:
        """`waiting.wait_for`, failing early if a bridge dies meanwhile."""
        await wait_for(self._alive_and(predicate), timeout_s, message)

    async def stays_true(self, predicate: Predicate, duration_s: float, message: Message) -> None:
        """`waiting.stays_true`, which a dead bridge would otherwise pass vacuously."""
        await stays_true(self._alive_and(predicate), duration_s, message)

    def _alive_and(self, predicate: Predicate) -> Callable[[], Awaitable[bool]]:
        async def alive_and_true() -> bool:
            self.check_alive()
            return await check(predicate)

        return alive_and_true

    async def cleanup(self) -> None:
        for bridge in self.started:
            if bridge.running:
                await bridge.kill()

    def report(self) -> str:
        return "".join(bridge.tail() for bridge in self.started)
