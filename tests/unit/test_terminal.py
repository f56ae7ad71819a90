"""Tables and the progress bar the CLI shows a person."""

from __future__ import annotations

import io

import pytest

from bridge.cli.terminal import MIN_TOTAL_FOR_BAR, Progress, bar, pairs, table


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_table_aligns_columns_under_the_header() -> None:
    text = table(("SEQ", "EVENT", "REASON"), [("7", "job.completed", "gone"), ("12", "x", "-")])
    assert text.splitlines() == [
        "SEQ  EVENT          REASON",
        "7    job.completed  gone",
        "12   x              -",
    ]


def test_table_with_no_rows_is_its_header() -> None:
    assert table(("A", "B"), []) == "A  B"


def test_pairs_align_values_past_the_longest_key() -> None:
    assert pairs([("id", "erp"), ("max_retry", "-"), ("description", "")]).splitlines() == [
        "id           erp",
        "max_retry    -",
        "description",
    ]
    assert pairs([]) == ""


@pytest.mark.parametrize(
    ("done", "total", "expected"),
    [
        (0, 10, "replaying 0/10 [..............................]   0%"),
        (5, 10, "replaying 5/10 [###############...............]  50%"),
        (10, 10, "replaying 10/10 [##############################] 100%"),
        (1, 3, "replaying 1/3 [##########....................]  33%"),
        (0, 0, "replaying 0/0 [##############################] 100%"),
    ],
)
def test_bar(done: int, total: int, expected: str) -> None:
    assert bar("replaying", done, total) == expected


def test_progress_redraws_in_place_on_a_terminal_and_ends_the_line() -> None:
    stream, total = Tty(), MIN_TOTAL_FOR_BAR * 10
    with Progress(stream, "replaying", total) as progress:
        for done in range(1, total + 1):
            progress.update(done)
    text = stream.getvalue()
    assert text.count("\r") == 101  # once per percent (0 to 100), not once per item
    assert text.endswith(f"replaying {total}/{total} [{'#' * 30}] 100%\n")


@pytest.mark.parametrize(
    ("stream", "total"),
    [
        (io.StringIO(), 1000),  # a pipe or a file: the final count line is enough
        (Tty(), MIN_TOTAL_FOR_BAR - 1),  # too short to be worth a bar
    ],
)
def test_progress_is_silent_off_a_terminal_or_for_short_runs(
    stream: io.StringIO, total: int
) -> None:
    with Progress(stream, "replaying", total) as progress:
        for done in range(1, total + 1):
            progress.update(done)
    assert stream.getvalue() == ""
