"""Pure parts of the operating commands: times and durations, run folding, safe rendering."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from reconciler.core.errors import RedbeatError
from reconciler.operating.operate import parse_moment, printable, render_history
from redbeat.history import RunState, runs_from_records

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def test_a_duration_counts_back_or_ahead_and_a_time_defaults_to_utc():
    assert parse_moment("90m", NOW, ago=True) == NOW - timedelta(minutes=90)
    assert parse_moment("2h", NOW, ago=False) == NOW + timedelta(hours=2)
    assert parse_moment("2026-12-03T14:00", NOW, ago=False) == datetime(2026, 12, 3, 14, tzinfo=timezone.utc)
    assert parse_moment("2026-12-03T14:00+01:00", NOW, ago=False).utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize("bad", ["yesterday", "", "-5m", "14:00\x1b[2J"])
def test_a_bad_moment_is_one_line_naming_the_value(bad):
    with pytest.raises(RedbeatError) as raised:
        parse_moment(bad, NOW, ago=True)
    assert "\n" not in str(raised.value) and "\x1b" not in str(raised.value)


def record(event, entry, slot, at, reason=None):
    fields = {b"event": event.encode(), b"entry": entry.encode(), b"slot": slot.encode(), b"at": at.encode()}
    if reason:
        fields[b"reason"] = reason.encode()
    return fields


def test_outcomes_complete_their_claims_and_unknown_records_are_skipped():
    records = [
        ("1-0", record("claimed", "a", "100.0", "100.5")),
        ("2-0", record("claimed", "b", "100.0", "100.5")),
        ("3-0", record("triggered-by-a-newer-beat", "a", "100.0", "100.6")),
        ("4-0", record("sent", "a", "100.0", "100.7")),
        ("5-0", record("lost", "b", "100.0", "100.8", "send failed: down")),
        ("6-0", record("sent", "gone-claim", "50.0", "51.0")),  # its claim was trimmed away
        ("7-0", record("claimed", "a", "160.0", "160.1")),
    ]
    runs = runs_from_records(records)
    assert [(r.entry, r.state, r.claimed_at) for r in runs] == [
        ("a", RunState.SENT, 100.5), ("b", RunState.LOST, 100.5), ("gone-claim", RunState.SENT, None),
        ("a", RunState.PENDING, 160.1)]
    assert runs[0].lag == pytest.approx(0.7)
    assert runs[1].lost_reason == "send failed: down"


def test_hostile_names_are_escaped_in_the_text_table():
    name = "evil\x1b[2J\r\n[bold]<script>\u202e"
    runs = runs_from_records([("1-0", record("claimed", name, "100.0", "100.5")),
                              ("2-0", {b"event": b"sent", b"entry": name.encode(), b"slot": b"100.0",
                                       b"at": b"\xff\xfe"})])
    text = render_history(runs)
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert text.count("\n") == 2  # header + one run
    assert printable(name) in text and "<script>" in text
