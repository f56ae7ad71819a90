"""Which per-job webhook entries an event carries and a job remembers (SPEC §13)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.policy.entries import ENTRY_MAX_CHARS, Admitted, admit

LONG = "x" * (ENTRY_MAX_CHARS + 1)
EDGE = "y" * ENTRY_MAX_CHARS


@pytest.mark.parametrize(
    ("entries", "max_entries", "max_bytes", "expected"),
    [
        ((), 10, None, Admitted(())),
        (("a", "b"), 10, None, Admitted(("a", "b"))),
        (("a", "b", "a"), 10, None, Admitted(("a", "b"))),
        (("a", "b", "c"), 2, None, Admitted(("a", "b"), ("c",))),
        ((LONG, "a"), 10, None, Admitted(("a",), (LONG,))),
        ((EDGE,), 10, None, Admitted((EDGE,))),
        # remembered first: the earliest win over a later event's entries
        (
            ("old-1", "old-2", "new-1", "new-2"),
            3,
            None,
            Admitted(("old-1", "old-2", "new-1"), ("new-2",)),
        ),
        # the JSON list ["a","bb"] is 11 bytes; ["a"] 5
        (("a", "bb"), 10, 11, Admitted(("a", "bb"))),
        (("a", "bb"), 10, 10, Admitted(("a",), ("bb",))),
        (("a", "bb", "c"), 10, 10, Admitted(("a", "c"), ("bb",))),
    ],
)
def test_admit(
    entries: tuple[str, ...], max_entries: int, max_bytes: int | None, expected: Admitted
) -> None:
    assert admit(entries, max_entries, max_bytes) == expected


@given(st.lists(st.text(max_size=3000), max_size=40), st.integers(1, 20), st.integers(2, 50_000))
def test_what_is_kept_fits(entries: list[str], max_entries: int, max_bytes: int) -> None:
    admitted = admit(entries, max_entries, max_bytes)
    assert len(admitted.kept) <= max_entries
    assert all(len(entry) <= ENTRY_MAX_CHARS for entry in admitted.kept)
    assert len(msgspec.json.encode(list(admitted.kept))) <= max_bytes
    assert set(admitted.kept) | set(admitted.dropped) == set(entries)
    assert not set(admitted.kept) & set(admitted.dropped)
