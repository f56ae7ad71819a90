"""Response parsing, per response: `python -m bench.parser [--rev REV]`.

Times `bridge.delivery.http1.ResponseParser` on typical receiver answers, each fed in one
piece, next to httptools (llhttp) with callbacks that do nothing, the floor any parser built
on it stands on. `--rev` adds the parser of a git revision, loaded from `git show`, so that a
change to the parser is measured against what it replaces in one run. Best of five rounds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import httptools

from bridge.delivery import http1

ROUNDS = 5
CALLS = 50_000
RESPONSES = {
    "aiohttp 200, 2-byte body": (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n"
        b"Date: Thu, 03 Dec 2026 09:00:00 GMT\r\nServer: Python/3.11 aiohttp/3.14.5\r\n\r\nok"
    ),
    "204 no body": (
        b"HTTP/1.1 204 No Content\r\nDate: Thu, 03 Dec 2026 09:00:00 GMT\r\nServer: nginx\r\n\r\n"
    ),
    "chunked 1 KiB in 4 chunks": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
        + b"100\r\n"
        + b"x" * 256
        + b"\r\n"
        + b"100\r\n"
        + b"x" * 256
        + b"\r\n"
        + b"100\r\n"
        + b"x" * 256
        + b"\r\n"
        + b"100\r\n"
        + b"x" * 256
        + b"\r\n0\r\n\r\n"
    ),
    "503 Retry-After, 10 headers": (
        b"HTTP/1.1 503 Service Unavailable\r\n"
        + b"".join(b"X-H%d: value-%d\r\n" % (i, i) for i in range(9))
        + b"Retry-After: 3\r\nContent-Length: 0\r\n\r\n"
    ),
}
Parse = Callable[[bytes], object]


class _Sink:
    """httptools callbacks that only note the end."""

    def __init__(self) -> None:
        self.done = False

    def on_message_complete(self) -> None:
        self.done = True


def llhttp_alone(data: bytes) -> object:
    sink = _Sink()
    httptools.HttpResponseParser(sink).feed_data(data)
    assert sink.done
    return sink


def with_module(module: types.ModuleType) -> Parse:
    def parse(data: bytes) -> object:
        parser = module.ResponseParser()
        parser.feed(data)
        assert parser.complete
        return parser.head

    return parse


# where the parser lives: since the layout by part, and before it
PARSER_PATHS = ("bridge/delivery/http1.py", "bridge/http1.py")


def module_at(rev: str) -> types.ModuleType:
    """The response parser as it was at `rev`, as a module of its own."""
    path, source = _source_at(rev)
    module = types.ModuleType(f"http1_at_{rev}")
    sys.modules[module.__name__] = module  # NamedTuple and dataclasses look themselves up
    exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def _source_at(rev: str) -> tuple[str, bytes]:
    root = Path(__file__).resolve().parent.parent
    for path in PARSER_PATHS:
        shown = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, check=False
        )
        if shown.returncode == 0:
            return path, shown.stdout
    raise SystemExit(f"no response parser at {rev} ({' or '.join(PARSER_PATHS)})")


def per_call_us(parse: Parse, data: bytes) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS):
            parse(data)
        best = min(best, (time.perf_counter() - start) / CALLS * 1e6)
    return best


def table(parsers: dict[str, Parse]) -> str:
    lines = [f"{'response (µs per response)':30}" + "".join(f"{n:>16}" for n in parsers)]
    for name, data in RESPONSES.items():
        cells = "".join(f"{per_call_us(parse, data):16.2f}" for parse in parsers.values())
        lines.append(f"{name:30}{cells}")
    return "\n".join(lines)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rev", help="also time the parser of this git revision")
    args = options.parse_args()
    parsers = {"http1": with_module(http1)}
    if args.rev:
        parsers[f"http1@{args.rev}"] = with_module(module_at(args.rev))
    parsers["llhttp alone"] = llhttp_alone
    print(table(parsers))
    print(f"httptools {httptools.__version__}, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
