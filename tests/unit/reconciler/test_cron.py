"""Cron fields: parsing, canonical and stored spellings, and agreement with Celery's own crontab parser."""

from __future__ import annotations

import pytest
from celery.schedules import crontab_parser
from hypothesis import given
from hypothesis import strategies as st

from reconciler.core.errors import CronError
from reconciler.schedules.cron import (
    BOUNDS,
    CELERY_FIELDS,
    MAX_FIELD_LENGTH,
    canonical_field,
    cron_string,
    exported_field,
    parse_cron,
    parse_crontab,
    parse_field,
    same_times,
    stored_field,
)

DAY_NAMES = " (or a weekday name: sun-sat, sunday-saturday)"
MONTH_NAMES = " (or a month name: jan-dec, january-december)"


def celery_reads(field: str, text: str) -> set[int]:
    """What beat and celery-redbeat read: Celery's own parser, as crontab() builds it."""
    low, high = BOUNDS[field]
    return set(crontab_parser(high - low + 1, low).parse(text))


@pytest.mark.parametrize(
    ("field", "text", "canonical"),
    [
        ("minute", "*/15", "*/15"),
        ("minute", "0,15,30,45", "*/15"),
        ("minute", "0-59", "*"),
        ("minute", "5", "5"),
        ("minute", "1,2", "1,2"),
        ("minute", "1,2,3,7", "1-3,7"),
        ("hour", "9-17/2", "9,11,13,15,17"),
        ("day_of_week", "mon-fri", "1-5"),
        ("day_of_week", "MON-Fri", "1-5"),
        ("day_of_week", "7", "0"),
        ("day_of_week", "5-7", "0,5,6"),
        ("day_of_week", "sat-mon", "0,1,6"),
        ("day_of_week", "sun-sat", "*"),
        ("day_of_month", "*/2", "*/2"),
        ("day_of_month", "1-31", "*"),
        # Two values are a list, not a step: "*/6" would hide what the user wrote in repr, Flower and status.
        ("month_of_year", "jan,jul", "1,7"),
        ("day_of_week", "sat,sun", "0,6"),
        ("minute", "*/30", "0,30"),
        ("minute", "*/20", "*/20"),
        ("month_of_year", "dec", "12"),
        ("hour", 3, "3"),
    ],
)
def test_canonical_spelling(field: str, text: object, canonical: str) -> None:
    assert canonical_field(field, parse_field(field, text)) == canonical


@pytest.mark.parametrize(
    ("field", "text", "values"),
    [
        ("day_of_week", "saturday", {6}),
        ("day_of_week", "Saturday-Sunday", {6, 0}),
        ("day_of_week", "MONDAY-friday/2", {1, 3, 5}),
        ("day_of_week", "tues,thur,thurs,wednes", {2, 3, 4}),
        ("month_of_year", "January,sept,DECEMBER", {1, 9, 12}),
        ("month_of_year", "march-may", {3, 4, 5}),
    ],
)
def test_full_names_and_longer_abbreviations_are_names_and_stored_as_written(field, text, values) -> None:
    """Any start of the English name of three letters or more, as Celery (which reads three letters) takes it."""
    assert parse_field(field, text) == values
    assert stored_field(field, text) == text
    assert celery_reads(field, text) == values


@pytest.mark.parametrize(
    ("field", "stored", "exported"),
    [
        ("day_of_week", "Saturday", "Saturday"),  # validate reads it as Celery does: kept
        ("day_of_week", "satxyz", "6"),  # Celery reads three letters
        ("day_of_week", "mon/2", "1"),  # Celery ignores a step after a single value
        ("day_of_week", "jan", "1"),  # Celery tries month names in every field
        ("month_of_year", "mon,tue", "1,2"),  # ... and weekday names
        ("hour", "\u0663", "3"),  # int() reads Arabic-Indic digits
        ("minute", "1-5 junk", "1-5"),  # a range is matched at the start of the item only
        ("minute", "0_5", "5"),  # int() takes underscores
        ("day_of_week", "7", "7"),  # Celery refuses it: beat cannot run it, validate says why (not respelled)
        ("minute", "banana", "banana"),
    ],
)
def test_export_writes_what_celery_reads(field: str, stored: str, exported: str) -> None:
    assert exported_field(field, stored) == exported


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("minute", "61", "minute 61 is out of range 0-59"),
        ("hour", "24", "hour 24 is out of range 0-23"),
        ("day_of_month", "0", "day of month 0 is out of range 1-31"),
        ("month_of_year", "mon", f"month 'mon' is not a number{MONTH_NAMES}"),
        ("day_of_week", "8", "day of week 8 is out of range 0-7"),
        ("minute", "*/0", "minute step '0' must be a whole number >= 1"),
        ("minute", "1,,2", "minute '1,,2' has an empty list item"),
        ("minute", "-5", "minute range '-5' needs a start and an end"),
        ("minute", "", "minute is empty"),
        ("minute", True, "minute must be a string or an integer, got True"),
    ],
)
def test_field_errors(field: str, text: object, message: str) -> None:
    with pytest.raises(CronError) as info:
        parse_field(field, text)
    assert str(info.value) == message


def test_shortcuts() -> None:
    assert parse_cron("@daily") == parse_cron("0 0 * * *") == parse_cron("@midnight")
    assert parse_cron("@yearly") == parse_cron("@annually") == parse_cron("0 0 1 1 *")
    assert parse_cron("@weekly").celery_fields()["day_of_week"] == "0"
    assert parse_cron("@hourly").celery_fields() == {
        "minute": "0", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"
    }  # fmt: skip


def test_both_day_fields_restricted_is_refused_for_cron_but_not_crontab() -> None:
    with pytest.raises(CronError, match="both restricted"):
        parse_cron("0 0 1 * mon")
    spec = parse_crontab({"day_of_month": "1", "day_of_week": "mon"})
    assert cron_string(spec) is None
    assert spec.celery_fields()["day_of_week"] == "mon"


def test_cron_string_round_trip() -> None:
    assert cron_string(parse_cron("*/5 * * * *")) == "*/5 * * * *"
    assert cron_string(parse_cron("30 2 * * mon-fri")) == "30 2 * * mon-fri"
    assert cron_string(parse_cron(" 0  0 1  1,7 * ")) == "0 0 1 1,7 *"
    assert cron_string(parse_cron("@weekly")) == "0 0 * * 0"


# --- the stored text: as written, unless Celery reads it otherwise


@pytest.mark.parametrize(
    ("field", "written", "stored", "values"),
    [
        ("day_of_week", "sat,sun", "sat,sun", {0, 6}),
        ("day_of_week", "SAT,sun", "SAT,sun", {0, 6}),  # Celery reads names in any case
        ("day_of_week", " sat , sun ", "sat,sun", {0, 6}),  # whitespace around tokens is not kept
        ("day_of_week", "mon-fri", "mon-fri", {1, 2, 3, 4, 5}),
        ("day_of_week", "mon - fri", "mon-fri", {1, 2, 3, 4, 5}),
        ("day_of_week", "sat-sun", "sat-sun", {6, 0}),  # a reversed range wraps, in Celery too
        ("day_of_week", "fri-mon/2", "fri-mon/2", {5, 0}),  # wraps at Saturday: Friday, Sunday
        ("day_of_week", "0", "0", {0}),
        # Celery refuses 7 in day of week: such a field is stored in the canonical spelling
        ("day_of_week", "1,7", "0,1", {0, 1}),  # Monday and Sunday
        ("day_of_week", "7", "0", {0}),
        ("day_of_week", "5-7", "0,5,6", {5, 6, 0}),
        ("day_of_week", "7-1", "0,1", {0, 1}),
        ("day_of_week", "7-7", "0", {0}),
        ("day_of_week", "0-7", "*", set(range(7))),
        ("minute", "*/15", "*/15", {0, 15, 30, 45}),
        ("minute", "* / 15", "*/15", {0, 15, 30, 45}),
        ("minute", "0,15,30,45", "0,15,30,45", {0, 15, 30, 45}),
        ("minute", "*/100", "*/100", {0}),
        ("minute", "05", "05", {5}),
        ("minute", 7, "7", {7}),
        ("minute", "0-59", "0-59", set(range(60))),
        ("month_of_year", "1,7", "1,7", {1, 7}),
        ("month_of_year", "jan,jul", "jan,jul", {1, 7}),
        ("month_of_year", "Dec-Feb", "Dec-Feb", {12, 1, 2}),
        ("hour", "9-17/2", "9-17/2", {9, 11, 13, 15, 17}),
    ],
)
def test_stored_as_written_and_read_alike_by_celery(field: str, written: object, stored: str, values: set[int]) -> None:
    assert stored_field(field, written) == stored
    assert parse_field(field, written) == values
    assert celery_reads(field, stored) == values
    # the stored text is stored as itself: export, then apply, writes nothing new
    assert stored_field(field, stored) == stored


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        # Celery reads the first three letters only: a typo of a name is not a name
        ("day_of_week", "satxyz", f"day of week 'satxyz' is not a number{DAY_NAMES}"),
        ("day_of_week", "sa", f"day of week 'sa' is not a number{DAY_NAMES}"),
        ("month_of_year", "septembre", f"month 'septembre' is not a number{MONTH_NAMES}"),
        ("day_of_week", "sat\x00", f"day of week 'sat\\x00' is not a number{DAY_NAMES}"),
        ("day_of_week", "sat\nsun", f"day of week 'sat\\nsun' is not a number{DAY_NAMES}"),
        ("day_of_week", "jan", f"day of week 'jan' is not a number{DAY_NAMES}"),  # Celery would read January as 1
        ("minute", "\u00b3", "minute '\u00b3' is not a number"),  # isdigit() but not a digit int() takes
        ("minute", "\u0663", "minute '\u0663' is not a number"),  # Arabic-Indic 3
        ("minute", "<script>", "minute '<script>' is not a number"),
        ("minute", "1 0", "minute '1 0' is not a number"),
        ("minute", "9" * 5000, "minute is 5000 characters long; at most 255"),
        ("minute", "9" * 20, "minute 999999999... is out of range 0-59"),
        ("minute", "*/" + "9" * 20, "minute step 999999999... is too large"),
        ("minute", "*/00", "minute step '00' must be a whole number >= 1"),
        ("minute", ",".join(["1"] * 200), "minute is 399 characters long; at most 255 (write a range or a step)"),
        ("day_of_week", "8", "day of week 8 is out of range 0-7"),
        ("month_of_year", "13", "month 13 is out of range 1-12"),
    ],
)
def test_hostile_fields_are_refused_by_name(field: str, text: str, message: str) -> None:
    with pytest.raises(CronError) as info:
        stored_field(field, text)
    assert str(info.value) == message


def test_a_field_of_the_longest_length_is_stored() -> None:
    text = ",".join(str(v) for v in range(60))  # every minute listed: 169 characters
    assert len(text) <= MAX_FIELD_LENGTH
    assert stored_field("minute", text) == text


def test_specs_compare_by_times_not_spelling() -> None:
    written = parse_cron("0 0 * * sat,sun")
    numbers = parse_cron("0 0 * * 0,6")
    assert written == numbers
    assert written.celery_fields()["day_of_week"] == "sat,sun"
    assert numbers.celery_fields()["day_of_week"] == "0,6"
    assert written.canonical_fields() == numbers.canonical_fields()
    assert same_times({"day_of_week": "sat,sun"}, {"day_of_week": "0,6", "minute": "*"})
    assert not same_times({"day_of_week": "sat,sun"}, {"day_of_week": "0,5"})
    assert same_times({"day_of_week": "Saturday"}, {"day_of_week": "6"})
    assert not same_times({"day_of_week": "satxyz"}, {"day_of_week": "6"})  # ours cannot read it: not the same


values = st.sampled_from(CELERY_FIELDS).flatmap(
    lambda f: st.tuples(
        st.just(f), st.frozensets(st.integers(BOUNDS[f][0], BOUNDS[f][1]), min_size=1)
    )
)


@given(values, st.randoms(use_true_random=False))
def test_equal_sets_written_differently_give_one_canonical_spelling(case, rnd) -> None:  # type: ignore[no-untyped-def]
    field, chosen = case
    items = sorted(chosen)
    rnd.shuffle(items)
    # the same set written as a shuffled list, with Sunday as 7 where it applies
    spelled = [str(7 if (field == "day_of_week" and v == 0 and rnd.random() < 0.5) else v) for v in items]
    listed = parse_field(field, ",".join(spelled))
    assert listed == chosen
    canonical = canonical_field(field, chosen)
    assert canonical_field(field, listed) == canonical
    # the canonical text reads back to the same set, in our parser and in Celery's
    assert parse_field(field, canonical) == chosen
    low, high = BOUNDS[field]
    assert set(crontab_parser(high - low + 1, low).parse(canonical)) == set(chosen)


@given(st.sampled_from(CELERY_FIELDS), st.data())
def test_ranges_and_steps_equal_their_expansion(field: str, data: st.DataObject) -> None:
    low, high = BOUNDS[field]
    start = data.draw(st.integers(low, high))
    end = data.draw(st.integers(start, high))
    step = data.draw(st.integers(1, 10))
    expanded = ",".join(str(v) for v in range(start, end + 1, step))
    assert canonical_field(field, parse_field(field, f"{start}-{end}/{step}")) == canonical_field(
        field, parse_field(field, expanded)
    )


_TOKENS = {
    "minute": ["*", "0", "5", "59", "7-20", "50-10", "*/7", "10-40/5"],
    "hour": ["*", "0", "23", "9-17", "22-2", "*/6", "1-23/4"],
    "day_of_month": ["*", "1", "31", "1-7", "28-3", "*/2", "5-25/10"],
    "month_of_year": ["*", "1", "12", "jan", "DEC", "nov-feb", "*/3", "mar-sep/2"],
    "day_of_week": ["*", "0", "6", "7", "sun", "Sat", "mon-fri", "fri-mon", "5-7", "7-2", "*/2", "mon-sun/3"],
}


@given(st.sampled_from(CELERY_FIELDS), st.data())
def test_stored_text_means_to_celery_what_it_means_to_us(field: str, data: st.DataObject) -> None:
    items = data.draw(st.lists(st.sampled_from(_TOKENS[field]), min_size=1, max_size=5))
    spaces = data.draw(st.sampled_from(["", " ", "  "]))
    written = f"{spaces},{spaces}".join(items)
    values = parse_field(field, written)
    stored = stored_field(field, written)
    assert celery_reads(field, stored) == values
    assert stored_field(field, stored) == stored
    if not (field == "day_of_week" and "7" in written):
        assert stored == written.replace(" ", "")  # nothing but whitespace removed
