"""Structured logs: one line per record, JSON or console, written whole; `log` is the logger."""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import msgspec
import structlog
from structlog.typing import FilteringBoundLogger

if TYPE_CHECKING:
    pass

log: FilteringBoundLogger = structlog.get_logger("webhook_bridge")
_JSON = msgspec.json.Encoder(enc_hook=repr)


def _json_line(event_dict: Any, **_options: Any) -> str:
    """JSON for structlog: msgspec encodes an attempt's line many times faster than json.dumps,
    and every attempt logs one at info; anything it cannot encode is written as its repr."""
    return _JSON.encode(event_dict).decode()


class _Timestamp:
    """structlog processor: `timestamp` as RFC 3339 UTC with microseconds, like TimeStamper
    (fmt="iso", utc=True) but with the date and time formatted once per second, not per line."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event_dict["timestamp"] = f"{self._prefix}.{int((now - second) * 1e6):06d}Z"
        return event_dict


class _LineWriter:
    """structlog logger: the lines of one event-loop iteration leave in one write.

    A busy bridge logs a line per attempt; writing and flushing each on its own cost a system
    call apiece. Lines are flushed at the end of the iteration that logged them (and at exit),
    so nothing waits longer than one iteration; outside a running loop each line goes at once.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lines: list[str] = []
        atexit.register(self.flush)  # once per configure_logging call: a handful per process

    def msg(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) > 1:
            return  # a flush is already scheduled
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:
            self.flush()

    debug = info = warning = warn = error = err = critical = exception = fatal = failure = msg

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            self._file.write("\n".join(lines) + "\n")
            self._file.flush()


def configure_logging(level: str, fmt: str) -> None:
    writer = _LineWriter(sys.stderr)
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _Timestamp(),
            structlog.processors.format_exc_info,
            # the log message goes under "message"; "event" is the webhook event (`_event=`)
            structlog.processors.EventRenamer("message", replace_by="_event"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=lambda *_args: writer,
        cache_logger_on_first_use=True,
    )
