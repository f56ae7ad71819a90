"""How the CLI shows things to a person: aligned tables, key/value views and a progress bar."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TextIO

BAR_WIDTH = 30
MIN_TOTAL_FOR_BAR = 20  # a short run is over before a bar could tell anything


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns left-aligned to their widest cell, two spaces apart, header first."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = (
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
    return "\n".join(lines)


def pairs(rows: Sequence[tuple[str, str]]) -> str:
    """`key  value` lines, the values aligned two spaces past the longest key."""
    width = max((len(key) for key, _ in rows), default=0)
    return "\n".join(f"{key.ljust(width)}  {value}".rstrip() for key, value in rows)


def bar(label: str, done: int, total: int) -> str:
    """`label  37/120 [#########.....................]  30%`."""
    fraction = done / total if total else 1.0
    filled = int(fraction * BAR_WIDTH)
    return f"{label} {done}/{total} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%}"


class Progress:
    """A progress bar redrawn in place, only on a terminal and for runs worth one.

    Elsewhere (a pipe, a log file, CI) it writes nothing: the command's final count line says
    what happened.
    """

    def __init__(self, stream: TextIO, label: str, total: int) -> None:
        self._stream = stream
        self._label = label
        self._total = total
        self._shown_percent = -1
        self.enabled = stream.isatty() and total >= MIN_TOTAL_FOR_BAR

    def update(self, done: int) -> None:
        percent = done * 100 // self._total if self._total else 100
        if not self.enabled or percent == self._shown_percent:
            return  # redraw once per percent, not once per item
        self._shown_percent = percent
        self._stream.write("\r" + bar(self._label, done, self._total))
        self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.enabled and self._shown_percent >= 0:
            self._stream.write("\n")
            self._stream.flush()
