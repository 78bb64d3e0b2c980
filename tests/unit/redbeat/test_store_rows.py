"""redbeat.store: the fetch script's flat reply read back into StoredEntry rows."""

from __future__ import annotations

import pytest

from redbeat.store import StoredEntry, _stored_entries


def test_plain_rows_are_read_as_they_come_and_absent_fields_are_none():
    values = ["redbeat:a", "10", '{"d": 1}', '{"m": 1}', None, None, None,
              "redbeat:b", "11.5", '{"d": 2}', None, '{"e": 1}', '{"p": 1}', '{"t": 1}']
    assert _stored_entries(values) == [
        StoredEntry("redbeat:a", "10", '{"d": 1}', '{"m": 1}', None),
        StoredEntry("redbeat:b", "11.5", '{"d": 2}', None, '{"e": 1}', '{"p": 1}', '{"t": 1}'),
    ]


def test_a_row_with_bytes_that_are_not_utf8_names_them_and_leaves_the_others_alone():
    values = [["ff00"], "1", '{"d": 1}', None, None, None, None,
              "redbeat:ok", "2", ["c328"], ["ff"], None, None, ["fe"],
              "redbeat:next", "3", '{"d": 3}', None, None, None, None]
    bad_name, bad_fields, fine = _stored_entries(values)
    assert bad_name.member == b"\xff\x00" and bad_name.not_utf8 == ()
    assert bad_fields.member == "redbeat:ok"
    assert (bad_fields.definition, bad_fields.meta, bad_fields.trigger) == (None, None, None)
    assert bad_fields.not_utf8 == ("definition", "meta", "trigger")
    assert fine == StoredEntry("redbeat:next", "3", '{"d": 3}', None, None)


def test_empty_reply_is_no_entries():
    assert _stored_entries([]) == []


@pytest.mark.parametrize("length", [1, 6, 8, 13])
def test_a_reply_that_is_not_whole_rows_is_refused(length):
    with pytest.raises(ValueError):
        _stored_entries(["x"] * length)
