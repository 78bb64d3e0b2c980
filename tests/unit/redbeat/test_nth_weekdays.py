"""Numbered weekdays of an rrule (ext ``rrule_byweekday``): beat runs them as RFC 5545 means them.

Oracle: a day-by-day scan of the calendar with RFC 5545's rule written out
(a plain weekday: every such day; ``nFR``: the n-th Friday of the month, or of
the year in a yearly rule without ``bymonth``; negative counts from the end).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from celery import Celery
from dateutil.rrule import MONTHLY, WEEKLY, YEARLY
from hypothesis import given
from hypothesis import strategies as st

from redbeat import RedBeatSchedulerEntry
from redbeat.entry import entry_schedule
from redbeat.schedules import rrule, rule_weekdays

UTC = timezone.utc
START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def new_app() -> Celery:
    app = Celery(set_as_current=False)
    app.conf.redbeat_redis_url = "redis://127.0.0.1:1/0"
    return app


def _nth_of(day: date, first: date, last: date) -> tuple[int, int]:
    """(n from the start, -n from the end) of ``day`` among its weekday's days in [first, last]."""
    return (day - first).days // 7 + 1, -((last - day).days // 7 + 1)


def rfc_days(freq: int, codes: list[str], bymonth: list[int] | None, year: int) -> list[date]:
    wanted = []
    for code in codes:
        number, name = code[:-2], code[-2:]
        wanted.append((CODES.index(name), int(number) if number else None))
    days = []
    day = date(year, 1, 1)
    while day.year == year:
        if bymonth is None or day.month in bymonth:
            if freq == MONTHLY or bymonth:
                first = day.replace(day=1)
                last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            else:
                first, last = date(year, 1, 1), date(year, 12, 31)
            ordinals = _nth_of(day, first, last)
            if any(day.weekday() == wd and (n is None or n in ordinals) for wd, n in wanted):
                days.append(day)
        day += timedelta(days=1)
    return days


def beat_days(freq: int, codes: list[str], bymonth: list[int] | None, year: int) -> list[date]:
    plain = sorted({CODES.index(code[-2:]) for code in codes})
    schedule = rrule(freq, dtstart=datetime(year, 1, 1, 9, tzinfo=UTC), byweekday=plain, bymonth=bymonth)
    timed = entry_schedule(schedule, {"rrule_byweekday": codes})
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    return [moment.date() for moment in timed.rrule.between(timed.dtstart, end, inc=True)]


CODE = st.tuples(st.sampled_from([None, 1, 2, 3, 4, 5, -1, -2, -5]), st.sampled_from(CODES)).map(
    lambda p: p[1] if p[0] is None else f"{p[0]:+d}{p[1]}"
)


@given(
    freq=st.sampled_from([MONTHLY, YEARLY]),
    codes=st.lists(CODE, min_size=1, max_size=4, unique=True),
    bymonth=st.one_of(st.none(), st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True).map(sorted)),
    year=st.integers(2024, 2030),
)
def test_beat_runs_plain_and_numbered_weekdays_as_their_union(freq, codes, bymonth, year) -> None:
    assert beat_days(freq, codes, bymonth, year) == rfc_days(freq, codes, bymonth, year)


def test_monday_and_the_last_friday_of_each_month() -> None:
    days = beat_days(MONTHLY, ["MO", "-1FR"], None, 2026)[:6]
    assert days == [date(2026, 1, 5), date(2026, 1, 12), date(2026, 1, 19), date(2026, 1, 26), date(2026, 1, 30),
                    date(2026, 2, 2)]  # fmt: skip


def test_the_stored_definition_keeps_plain_weekdays() -> None:
    schedule = rrule(MONTHLY, dtstart=START, byweekday=[4])
    timed = entry_schedule(schedule, {"rrule_byweekday": ["-1FR"]})
    assert timed.to_json() == schedule.to_json()  # what celery-redbeat reads is unchanged
    assert timed.byweekday == [4]
    # time zones re-anchor the rule and keep the numbered weekdays
    berlin = timed.localised(timezone(timedelta(hours=1)))
    assert berlin.next_after(START).date() == date(2026, 1, 30)


def test_an_entry_loaded_from_redis_runs_on_the_last_friday_only() -> None:
    """celery-redbeat (and this beat before) ran "-1fr" every Friday: the definition holds only [4]."""
    definition = {
        "name": "close", "task": "t.close", "args": [], "kwargs": {}, "options": {}, "enabled": True,
        "schedule": {**rrule(MONTHLY, dtstart=START, byweekday=[4]).to_json()},
    }  # fmt: skip
    entry = RedBeatSchedulerEntry.from_stored(
        "redbeat:close", json.dumps(definition), None, json.dumps({"rrule_byweekday": ["-1FR"]}), app=new_app()
    )
    runs, moment = [], START
    for _ in range(3):
        moment = entry.next_due_after(moment, now=moment)
        runs.append(moment.date())
    assert runs == [date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27)]
    assert json.loads(entry._definition_json())["schedule"]["byweekday"] == [4]  # beat's save writes it back as is


def test_weekly_rules_keep_dateutil_plain_weekdays() -> None:
    assert [d.n for d in rule_weekdays(WEEKLY, None, ["MO"])] == [None]
    assert len(rule_weekdays(YEARLY, None, ["MO", "-1FR"])) == 54
    assert len(rule_weekdays(YEARLY, [3], ["MO", "-1FR"])) == 6


BAD_CODES = [["XX"], ["0FR"], ["+54MO"], ["1x2FR"], [7], "MO", ["٣FR"], ["1" * 5000 + "FR"], ["+-1FR"], [None]]


@pytest.mark.parametrize("codes", BAD_CODES)
def test_a_bad_code_is_a_clear_value_error(codes) -> None:
    with pytest.raises(ValueError, match="weekday"):
        rule_weekdays(MONTHLY, None, codes)
