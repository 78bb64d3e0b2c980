"""Pause state: encoding, reading hostile fields, the rules of a new pause."""

from __future__ import annotations

import pytest

from redbeat.operator import INDEFINITE_RECHECK_SECONDS, Pause, PauseError, active_pause, decode_pause, new_pause


def test_a_pause_round_trips_and_ends_at_until():
    pause = Pause("alice@host", 100.0, 200.0, "incident 4711 ü <script>")
    assert decode_pause(pause.encode()) == pause
    assert active_pause(pause.encode(), 199.9) == pause
    assert active_pause(pause.encode(), 200.0) is None
    assert pause.recheck_score(150.0) == 200.0
    assert Pause("bob", 1.0).recheck_score(10.0) == 10.0 + INDEFINITE_RECHECK_SECONDS
    assert Pause("alice", 0.0, 0.0, "x").words() == "paused by alice until 1970-01-01 00:00:00 UTC: x"


@pytest.mark.parametrize("raw", [b"\xff\xfe", "[]", "{}", '{"by": "a", "at": "soon"}', '{"by":"a","at":1e999}',
                                 '{"by":"a","at":1,"until":"NaN"}', "null"])
def test_an_unreadable_pause_field_is_an_error_and_counts_as_paused(raw):
    with pytest.raises(PauseError):
        decode_pause(raw)
    assert active_pause(raw, 5.0) is not None


def test_a_new_pause_must_end_in_the_future_and_keep_its_note_short():
    with pytest.raises(PauseError, match="--until is in the past"):
        new_pause("a", 100.0, 100.0, "")
    with pytest.raises(PauseError, match="--note is longer"):
        new_pause("a", 100.0, None, "x" * 501)
    assert new_pause("a", 100.0, 101.0, "ok") == Pause("a", 100.0, 101.0, "ok")
