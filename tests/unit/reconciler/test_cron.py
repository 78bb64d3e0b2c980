from __future__ import annotations

import pytest
from celery.schedules import crontab_parser
from hypothesis import given
from hypothesis import strategies as st

from reconciler.schedules.cron import (
    BOUNDS,
    CELERY_FIELDS,
    CronError,
    canonical_field,
    cron_string,
    parse_cron,
    parse_crontab,
    parse_field,
)


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
    ("field", "text", "message"),
    [
        ("minute", "61", "minute 61 is out of range 0-59"),
        ("hour", "24", "hour 24 is out of range 0-23"),
        ("day_of_month", "0", "day of month 0 is out of range 1-31"),
        ("month_of_year", "mon", "month 'mon' is not a number (or jan-dec)"),
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
    assert spec.celery_fields()["day_of_week"] == "1"


def test_cron_string_round_trip() -> None:
    assert cron_string(parse_cron("*/5 * * * *")) == "*/5 * * * *"
    assert cron_string(parse_cron("30 2 * * mon-fri")) == "30 2 * * 1-5"


values = st.sampled_from(CELERY_FIELDS).flatmap(
    lambda f: st.tuples(
        st.just(f), st.frozensets(st.integers(BOUNDS[f][0], BOUNDS[f][1]), min_size=1)
    )
)


@given(values, st.randoms(use_true_random=False))
def test_equal_sets_written_differently_give_one_spelling(case, rnd) -> None:  # type: ignore[no-untyped-def]
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
