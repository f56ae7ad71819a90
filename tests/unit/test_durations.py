"""Durations as people write them, and the canonical spelling the bridge prints back."""

from __future__ import annotations

import pytest

from bridge.config.durations import format_duration, parse_duration_s


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1ms", 0.001),
        ("0.5ms", 0.0005),
        ("15s", 15.0),
        ("2m", 120.0),
        ("1.5m", 90.0),
        ("1h", 3600.0),
        ("7d", 604800.0),
        ("14d", 1209600.0),
        ("2.5", 2.5),
        ("10", 10.0),
        ("0", 0.0),
        (" 15s ", 15.0),
        ("15 s", 15.0),
        ("15S", 15.0),
        ("500MS", 0.5),
        ("007s", 7.0),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "s",
        "-1s",
        "+1s",
        "1.s",
        ".5s",
        "1e3",
        "1 2",
        "1sec",
        "1w",
        "1h30m",
        "inf",
        "nan",
        "15s\n1",
    ],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration_s(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0ms"),
        (0.001, "1ms"),
        (0.25, "250ms"),
        (0.5, "500ms"),
        (1.0, "1s"),
        (1.5, "1500ms"),
        (15.0, "15s"),
        (59.0, "59s"),
        (60.0, "1m"),
        (90.0, "90s"),
        (120.0, "2m"),
        (3600.0, "1h"),
        (5400.0, "90m"),
        (86400.0, "1d"),
        (90000.0, "25h"),
        (604800.0, "7d"),
        (1209600.0, "14d"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    "text",
    ["0ms", "1ms", "250ms", "1500ms", "1s", "15s", "90s", "1m", "2m", "90m", "1h", "25h", "7d"],
)
def test_text_round_trip(text: str) -> None:
    assert format_duration(parse_duration_s(text)) == text


@pytest.mark.parametrize(
    "seconds",
    [
        0.0,
        0.001,
        0.1,
        0.25,
        1.1,
        2.5,
        15.0,
        90.0,
        123.456,
        3600.0,
        604800.0,
        pytest.param(0.7),
        pytest.param(1.001),
        pytest.param(0.0015),
        pytest.param(0.0005),
    ],
)
def test_seconds_round_trip(seconds: float) -> None:
    assert parse_duration_s(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("700ms", 0.7),
        pytest.param("1001ms", 1.001),
    ],
)
def test_parse_milliseconds_exactly(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["100000000d", "3153600001", "9" * 400, "36501d"])
def test_parse_refuses_durations_that_overflow_clocks(text: str) -> None:
    with pytest.raises(ValueError, match="longer than 100 years"):
        parse_duration_s(text)
