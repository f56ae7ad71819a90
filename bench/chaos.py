"""`python -m bench.chaos`: the chaos ledger of tests/integration/test_chaos.py, bigger.

    python -m bench.chaos [--events 5000] [--endpoints 4] [--seed 1] [--batches 10]
                          [--bridges 3] [--faults kill,term,nats,nats-kill] [--workdir DIR]

Publishes the events in batches to every endpoint of a chaos receiver (seeded per-pair
plans: 200, 500, hangs past the timeout, connection resets, 410), injects one fault after
each batch (kill -9 a bridge, SIGTERM one, restart nats-server, kill -9 nats-server; each
bridge replaced), waits until nothing is in flight and reconciles the ledger: the table goes
to stdout. Exit status 1 when a pair was lost or ended other than its plan says.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import typing
from pathlib import Path

import uvloop

# The harness is shared with the tests, which import it as `harness` from tests/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness.chaos_run import ChaosConfig, ChaosRun, FaultKind

SETTLE_TIMEOUT_S = 600.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--endpoints", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batches", type=int, default=10, help="a fault after each batch")
    parser.add_argument("--bridges", type=int, default=3, help="bridge processes at a time")
    parser.add_argument("--faults", type=_faults, default=",".join(ChaosConfig.faults))
    parser.add_argument("--workdir", help="where the store and logs go (default: a temp dir)")
    return parser


def _faults(text: str) -> tuple[FaultKind, ...]:
    kinds = typing.get_args(FaultKind)
    chosen = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in chosen if name not in kinds]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"faults are {', '.join(kinds)}; got {text!r}")
    return typing.cast(tuple[FaultKind, ...], chosen)


def config_from(args: argparse.Namespace) -> ChaosConfig:
    return ChaosConfig(
        events=args.events,
        endpoints=args.endpoints,
        seed=args.seed,
        batches=args.batches,
        bridges=args.bridges,
        faults=args.faults,
        settle_timeout_s=SETTLE_TIMEOUT_S,
        log_level="warning",  # one line per successful attempt would cost more than it tells
    )


async def run(config: ChaosConfig, workdir: Path) -> int:
    async with ChaosRun(config, workdir) as chaos:
        report = await chaos.execute()
    print(report.table())
    return 1 if report.ledger.missing or report.ledger.wrong else 0


def main() -> None:
    args = _parser().parse_args()
    config = config_from(args)
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        sys.exit(uvloop.run(run(config, workdir)))
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        sys.exit(uvloop.run(run(config, Path(tmp))))


if __name__ == "__main__":
    main()
