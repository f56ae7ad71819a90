"""Instructions per delivery, counted by callgrind: `python -m bench.instructions`.

Wall-clock and CPU-time figures swing by tens of percent on a shared 2-core machine; the
instructions a process executes barely move. This runs the bridge of a checkout under
`valgrind --tool=callgrind` against one fast receiver (scenario 1's set-up), warms it up with
a few deliveries, zeroes the counters (`callgrind_control -z`), publishes the events, and
dumps the counters (`callgrind_control -d`) once the receiver has them all: start-up and
shutdown are not counted. `--checkout DIR --python PY` also measures another checkout (a git
worktree of the commit before a change, with its own venv) in the same run. Needs Debian's
`valgrind`; a run takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import nats
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from bench.processes import Child, Receiver, start_nats
from bench.run import STREAM, event_body
from bridge.jetstream.embedded import EmbeddedNats, free_port

ROOT = Path(__file__).resolve().parent.parent
WARM_UP, EVENTS = 100, 2000
POLL_S = 0.05
READY_TIMEOUT_S = 300.0
DRAIN_TIMEOUT_S = 900.0
_SUMMARY = re.compile(rb"^summary: (\d+)$", re.MULTILINE)


async def per_delivery(checkout: Path, python: str, workdir: Path) -> float:
    """Instructions the bridge of `checkout` executes per delivery."""
    server = await start_nats(workdir / "nats")
    receiver = await Receiver.start(workdir / "receiver.log")
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        config = StreamConfig(STREAM, subjects=["greenlight.events.>"], storage=StorageType.FILE)
        await js.add_stream(config)
        env = _env(checkout, server, receiver, free_port())
        return await _counted(js, receiver, python, env, workdir)
    finally:
        await nc.close()
        await receiver.child.stop()
        await server.stop()


async def _counted(
    js: JetStreamContext, receiver: Receiver, python: str, env: dict[str, str], workdir: Path
) -> float:
    out = workdir / "callgrind.out"
    bridge = await Child.start(_argv(python, out), workdir / "bridge.log", env, pipe=False)
    try:
        await _ready(int(env["HTTP_PORT"]))
        await _deliver(js, receiver, 0, WARM_UP)
        _control(bridge, "-z")
        await _deliver(js, receiver, WARM_UP, EVENTS)
        _control(bridge, "-d")
        return _dumped(out) / EVENTS
    finally:
        await bridge.stop()


def _dumped(out: Path) -> int:
    """The instructions counted between `-z` and `-d`: the first dump's summary."""
    return int(_SUMMARY.findall(Path(f"{out}.1").read_bytes())[-1])


def _argv(python: str, out: Path) -> list[str]:
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    # -P: not the current directory first on sys.path, so PYTHONPATH picks the checkout
    return [*valgrind, python, "-P", "-m", "bridge", "run"]


def _env(checkout: Path, server: EmbeddedNats, receiver: Receiver, port: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(checkout),  # this checkout's bridge, whatever the venv installed
        "NATS_URL": server.url,
        "DEFAULT_WEBHOOK_URLS": receiver.url(),
        "WEBHOOK_ENDPOINT_CONCURRENCY": "256",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "warning",
    }


def _control(bridge: Child, flag: str) -> None:
    subprocess.run(["callgrind_control", flag, str(bridge.pid)], check=True, capture_output=True)


async def _ready(port: int) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(READY_TIMEOUT_S):
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(POLL_S * 10)


async def _deliver(js: JetStreamContext, receiver: Receiver, first: int, count: int) -> None:
    """Publish `count` events and wait until the receiver has every one so far."""
    acks = [
        await js.publish_async(
            "greenlight.events.job.completed", event_body(i), headers={"Nats-Msg-Id": f"e{i}"}
        )
        for i in range(first, first + count)
    ]
    await asyncio.gather(*acks)
    async with aiohttp.ClientSession() as session, asyncio.timeout(DRAIN_TIMEOUT_S):
        while True:
            if (await receiver.stats(session)).count >= first + count:
                return
            await asyncio.sleep(POLL_S)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--checkout", type=Path, help="also measure this checkout")
    options.add_argument("--python", default=sys.executable, help="its venv's python")
    args = options.parse_args()
    measured = [("this checkout", ROOT, sys.executable)]
    if args.checkout:
        measured.append((str(args.checkout), args.checkout, args.python))
    print(f"{'bridge':40} {'instructions/delivery':>22}  ({EVENTS} deliveries, callgrind)")
    for name, checkout, python in measured:
        with tempfile.TemporaryDirectory() as folder:
            each = asyncio.run(per_delivery(checkout, python, Path(folder)))
        print(f"{name:40} {each:22,.0f}")


if __name__ == "__main__":
    main()
