"""Durations (``every``, ``jitter``): parsing numbers and ``1h30m`` text, bounds, and the shortest spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.errors import DurationError
from reconciler.schedules.duration import MAX_SECONDS, format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (60, 60.0),
        ("60", 60.0),
        ("60s", 60.0),
        ("1m", 60.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("1.5h", 5400.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        (2.5, 2.5),
    ],
)
def test_parse(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "0: the interval must be greater than 0"),
        ("0s", "'0s': the interval must be greater than 0"),
        (-1, "-1: the interval must be greater than 0"),
        ("5 minutes", "'5 minutes' is not a duration"),
        ("1x", "'1x' is not a duration"),
        (True, "expected a number of seconds or a duration string, got True"),
        (float("inf"), "inf is not a finite duration"),
    ],
)
def test_parse_errors(value: object, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(value)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60.0, "1m"), (30.0, "30s"), (5400.0, "1h30m"), (0.5, "500ms"), (86400.0, "1d"), (90061.5, "1d1h1m1s500ms")],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_gives_up_when_not_exact() -> None:
    assert format_duration(1.2345) is None
    assert format_duration(0.0) is None


def test_format_gives_up_beyond_the_longest_duration_instead_of_raising() -> None:
    """An interval read from Redis may be any number; export writes a longer one as seconds, which validate refuses."""
    assert format_duration(MAX_SECONDS) == "36500d"
    assert format_duration(MAX_SECONDS + 1) is None


@given(st.integers(1, 10**9))
def test_format_round_trips_whole_milliseconds(millis: int) -> None:
    seconds = millis / 1000
    text = format_duration(seconds)
    assert text is not None
    assert parse_duration(text) == seconds


@given(st.integers(0, 30), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_spellings_of_one_interval_agree(d: int, h: int, m: int, s: int) -> None:
    total = d * 86400 + h * 3600 + m * 60 + s
    if total == 0:
        return
    parts = "".join(f"{n}{u}" for n, u in ((d, "d"), (h, "h"), (m, "m"), (s, "s")) if n)
    assert parse_duration(parts) == parse_duration(total) == parse_duration(f"{total}s") == float(total)
