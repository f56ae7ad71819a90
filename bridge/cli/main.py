"""The `webhook-bridge` command: subcommands, exit codes, no business logic.

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from bridge import __version__
from bridge.cli import commands, usage, webhooks, workers
from bridge.cli.api_client import ApiError
from bridge.config.settings import Settings, load_settings
from bridge.config.values import ConfigError
from bridge.jetstream.bus import BusError
from bridge.jetstream.embedded import EmbeddedError
from bridge.observability.logs import configure_logging

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
# 3,000 a minute clears a backlog without flooding a receiver that has just recovered
DEFAULT_REPLAY_RATE_PER_S = 50


class UsageError(Exception):
    """Bad arguments that argparse cannot see; exit code 2."""


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
) -> int:
    args = _parser().parse_args(argv)
    environ = dict(os.environ if env is None else env)
    try:
        return int(_dispatch(args, environ, stdin or sys.stdin))
    except (ConfigError, UsageError) as error:
        return _fail(str(error), EXIT_USAGE)
    except ApiError as error:  # 2 when the API refused the request (4xx), else 1
        return _fail(str(error), error.exit_code)
    except (BusError, EmbeddedError, OSError) as error:
        return _fail(str(error), EXIT_FAILURE)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # one line for the user instead of a traceback
        return _fail(f"unexpected {type(error).__name__}: {error}", EXIT_FAILURE)


def _fail(message: str, code: int) -> int:
    print(f"webhook-bridge: {message}", file=sys.stderr)
    return code


def _dispatch(args: argparse.Namespace, env: dict[str, str], stdin: TextIO) -> int:
    if args.command == "webhooks":  # a client of the admin API: no settings, no NATS
        return webhooks.run(args, env, stdin)
    if args.command == "verify":
        return commands.verify(args.secret, args.signature, args.id, args.timestamp)
    if args.command == "demo":
        return _run_async(commands.demo)
    settings = load_settings(env)
    if args.command == "config":
        return commands.config_check(settings)
    configure_logging(settings.log_level, settings.log_format)
    if args.command == "run":
        data_dir = Path(args.data_dir) if args.embedded_nats else None
        if args.workers > 1:
            return _run_async(
                lambda stopping: workers.supervise(settings, args.workers, env, stopping, data_dir)
            )
        return _run_async(lambda stopping: commands.run(settings, stopping, data_dir))
    # short-lived commands keep the default signals: Ctrl-C or SIGTERM ends them at once
    return _event_loop_runner()(_client_command(args, settings))


async def _client_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "publish":
        return await commands.publish(settings, args.event, args.job_id, args.webhook, args.data)
    if args.command == "deliveries":
        return await commands.deliveries(
            settings, args.job_id, args.event_id, args.limit, as_json=args.json
        )
    wanted = commands.dlq_filter(args.event, args.endpoint, args.since, args.all)
    if args.dlq_command == "list":
        return await commands.dlq_list(settings, wanted, as_json=args.json)
    return await commands.dlq_replay(settings, wanted, dry_run=args.dry_run, rate_per_s=args.rate)


def _run_async(command: Callable[[asyncio.Event], Coroutine[Any, Any, int]]) -> int:
    """Run a long-lived command: SIGTERM and SIGINT set its stop event for a graceful exit."""

    async def runner() -> int:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        return await command(stopping)

    return _event_loop_runner()(runner())


def _event_loop_runner() -> Callable[[Coroutine[Any, Any, int]], int]:
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up
    except ImportError:
        return asyncio.run
    return uvloop.run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webhook-bridge",
        description="Deliver NATS JetStream lifecycle events as signed HTTP webhooks.",
        epilog=usage.MAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    _command(sub, "demo", "run a self-contained demo: NATS, the bridge, receivers", usage.DEMO)
    _add_publish(sub)
    _add_dlq(sub)
    _add_deliveries(sub)
    _add_verify(sub)
    webhooks.register(sub, _command)
    config = _command(sub, "config", "check the configuration", usage.CONFIG)
    config.add_argument("config_command", choices=["check"], help="print the effective config")
    return parser


def _command(sub: Any, name: str, text: str, epilog: str) -> argparse.ArgumentParser:
    """A subcommand whose --help keeps the examples' line breaks."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=text,
        description=text[0].upper() + text[1:] + ".",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _add_run(sub: Any) -> None:
    run = _command(sub, "run", "run the bridge until SIGTERM", usage.RUN)
    run.add_argument(
        "--embedded-nats",
        action="store_true",
        help="start nats-server with JetStream where NATS_URL points (127.0.0.1:4222)",
    )
    run.add_argument(
        "--data-dir", default="data/nats", help="JetStream store of --embedded-nats (data/nats)"
    )
    run.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="run N bridge processes sharing the consumers; worker i serves HTTP_PORT+i (1)",
    )


def _add_publish(sub: Any) -> None:
    publish = _command(sub, "publish", "publish one event, e.g. job.completed", usage.PUBLISH)
    publish.add_argument("event", help="event name, e.g. job.completed")
    publish.add_argument("--job-id", help="job id (default: a new one)")
    publish.add_argument(
        "--webhook", action="append", default=[], help="per-job webhook URL or id (repeatable)"
    )
    publish.add_argument("--data", help="JSON object merged into the event body")


def _add_dlq(sub: Any) -> None:
    dlq = _command(sub, "dlq", "list or replay dead letters", usage.DLQ_LIST)
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    for name, text, epilog in (
        ("list", "list dead letters", usage.DLQ_LIST),
        ("replay", "re-deliver dead letters", usage.DLQ_REPLAY),
    ):
        action = _command(actions, name, text, epilog)
        action.add_argument("--event", help="only this event name, e.g. job.completed")
        action.add_argument(
            "--endpoint", metavar="ID|HOST|URL", help="only this webhook id, URL or host"
        )
        action.add_argument(
            "--since", metavar="DURATION", help="only dead letters younger than this, e.g. 1h"
        )
        action.add_argument(
            "--all", action="store_true", help="include dead letters already replayed"
        )
        if name == "list":
            action.add_argument("--json", action="store_true", help="one JSON record per line")
        else:
            _add_replay_pace(action)


def _add_replay_pace(replay: argparse.ArgumentParser) -> None:
    replay.add_argument(
        "--dry-run", action="store_true", help="show what would be replayed; change nothing"
    )
    replay.add_argument(
        "--rate",
        type=_rate,
        default=DEFAULT_REPLAY_RATE_PER_S,
        metavar="N",
        help=f"replay at most N dead letters a second; 0: no limit ({DEFAULT_REPLAY_RATE_PER_S})",
    )


def _add_deliveries(sub: Any) -> None:
    log = sub.add_parser(
        "deliveries",
        help="show the delivery log: every attempt of a job or an event",
        epilog="Example: webhook-bridge deliveries --job-id j_01HAYP  (no filter: the latest)",
    )
    log.add_argument("--job-id", help="attempts of this job")
    log.add_argument("--event-id", help="attempts of this event (Nats-Msg-Id or <stream>-<seq>)")
    log.add_argument("--limit", type=_positive, default=100, help="latest N attempts (100)")
    log.add_argument("--json", action="store_true", help="one JSON record per line")


def _add_verify(sub: Any) -> None:
    verify = _command(sub, "verify", "verify a signature of a body read from stdin", usage.VERIFY)
    verify.add_argument(
        "--secret", required=True, help="the webhook secret, or its public key (whpk_...)"
    )
    verify.add_argument(
        "--signature", required=True, help="X-Greenlight-Signature or webhook-signature value"
    )
    verify.add_argument("--id", help="webhook-id (for Standard Webhooks signatures)")
    verify.add_argument("--timestamp", type=int, help="webhook-timestamp (Standard Webhooks)")


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value
