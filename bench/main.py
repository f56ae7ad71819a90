"""The `python -m bench` command: options, the scenario loop, the machine line and the table.

    python -m bench [--runs 3] [--scale 1.0] [--only 1,5] [--backlog-events 1000000]
                    [--api-webhooks 500]

Progress goes to stderr; the table (and the machine it ran on) to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from bench.profile import top_entries
from bench.report import Row, Run, against_first, summarise, table
from bench.run import run_once
from bench.scenarios import Scenario, scenarios
from bench.webhooks import MATCHING

MIN_API_WEBHOOKS = MATCHING + 1  # a tenth of them are decoys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every event count")
    parser.add_argument("--only", help="comma-separated scenario keys, e.g. 1,5")
    parser.add_argument("--backlog-events", type=int, default=1_000_000, help="scenario 6 size")
    parser.add_argument("--backlog-runs", type=int, default=1, help="runs of scenario 6")
    parser.add_argument("--api-webhooks", type=int, default=500, help="scenario 8's webhooks")
    parser.add_argument("--workdir", help="where stores and logs go (default: a temp dir)")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy on each consumer; bridge's top entries"
    )
    return parser


def machine() -> str:
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    cpus = os.cpu_count()
    python = platform.python_version()
    return f"{cpus} CPUs, {platform.platform()}, Python {python}, load {load}"


async def run_scenario(scenario: Scenario, args: argparse.Namespace, workdir: Path) -> Row:
    found: list[Run] = []
    for index in range(scenario.runs or args.runs):
        started_s = time.monotonic()
        rundir = workdir / f"s{scenario.key}-{index}"
        rundir.mkdir(parents=True)
        found.append(await run_once(scenario, rundir, index, args.profile))
        if args.profile:
            print(top_entries(rundir / "bridge.pyspy"), file=sys.stderr)
        took_s = time.monotonic() - started_s
        ratio = found[-1]["bridge"].rate_per_s / found[-1]["raw"].rate_per_s
        progress = f"  scenario {scenario.key} run {index + 1}: {took_s:.0f}s, ratio {ratio:.2f}x"
        print(progress, file=sys.stderr)
    return summarise(scenario, found)


async def run_all(args: argparse.Namespace, workdir: Path) -> list[Row]:
    wanted = set(args.only.split(",")) if args.only else None
    rows = []
    for scenario in scenarios(
        args.scale, args.backlog_events, args.backlog_runs, args.api_webhooks
    ):
        if wanted is None or scenario.key in wanted:
            print(f"scenario {scenario.key}: {scenario.title}", file=sys.stderr)
            rows.append(await run_scenario(scenario, args, workdir))
    return against_first(rows)


def main() -> None:
    parser = _parser()
    args = parser.parse_args()
    if args.api_webhooks < MIN_API_WEBHOOKS:
        parser.error(f"--api-webhooks: at least {MIN_API_WEBHOOKS} (one event name)")
    started = machine()
    with tempfile.TemporaryDirectory(prefix="bench-") as temp:
        workdir = Path(args.workdir or temp)
        rows = uvloop.run(run_all(args, workdir))
    print(f"machine: {started}")
    print(f"after:   load {'/'.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(table(rows))
