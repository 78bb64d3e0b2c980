"""redbeat.timing: when an entry is due.  Oracles: a brute-force minute scan and celery's own crontab."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab, schedule
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from redbeat import timing
from redbeat.schedules import rrule

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WINDOW_DAYS = 366 * 8 + 2


def cron_of(minutes, hours, doms, months, dows) -> crontab:
    join = lambda values: ",".join(str(v) for v in sorted(values))  # noqa: E731
    try:
        return crontab(minute=join(minutes), hour=join(hours), day_of_month=join(doms),
                       month_of_year=join(months), day_of_week=join(dows))
    except ValueError:
        # celery refuses a day that no chosen month has (30 February): not a schedule to compare
        assume(False)
        raise


def _day_matches(day: date, doms, months, dows) -> bool:
    # celery's crontab: day of month AND month AND day of week (0 = Sunday) must all match
    return day.month in months and day.day in doms and (day.isoweekday() % 7) in dows


def brute_next(minutes, hours, doms, months, dows, after: datetime, inclusive=False):
    """The first matching minute after `after` (UTC), scanning every day of the window."""
    day = after.date()
    for _ in range(WINDOW_DAYS):
        if _day_matches(day, doms, months, dows):
            for hour in range(24):
                if hour not in hours:
                    continue
                for minute in range(60):
                    if minute not in minutes:
                        continue
                    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if moment > after or (inclusive and moment == after):
                        return moment
        day += timedelta(days=1)
    return None


def brute_previous(minutes, hours, doms, months, dows, before: datetime, inclusive=True):
    day = before.date()
    for _ in range(WINDOW_DAYS):
        if _day_matches(day, doms, months, dows):
            for hour in reversed(range(24)):
                if hour not in hours:
                    continue
                for minute in reversed(range(60)):
                    if minute not in minutes:
                        continue
                    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if moment < before or (inclusive and moment == before):
                        return moment
        day -= timedelta(days=1)
    return None


def subsets(lo, hi, max_size):
    return st.sets(st.integers(lo, hi), min_size=1, max_size=max_size)


cron_fields = st.tuples(
    subsets(0, 59, 4),
    subsets(0, 23, 4),
    st.one_of(st.just(set(range(1, 32))), subsets(1, 31, 3)),
    st.one_of(st.just(set(range(1, 13))), subsets(1, 12, 3)),
    st.one_of(st.just(set(range(7))), subsets(0, 6, 3)),
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)
on_the_minute = instants.map(lambda dt: dt.replace(second=0, microsecond=0))
any_instant = st.one_of(instants, on_the_minute)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(fields=cron_fields, after=any_instant, inclusive=st.booleans())
def test_next_occurrence_in_utc_equals_a_brute_force_scan(fields, after, inclusive):
    expected = brute_next(*fields, after, inclusive=inclusive)
    got = timing.next_occurrence(cron_of(*fields), after, tz=UTC, inclusive=inclusive)
    if expected is None:  # nothing within 8 years (Feb 30, or Feb 29 on a given weekday ...)
        assert got is None or got > after + timedelta(days=WINDOW_DAYS - 1)
    else:
        assert got == expected
        assert got.utcoffset() == timedelta(0)


@PROPERTY
@given(fields=cron_fields, before=any_instant, inclusive=st.booleans())
def test_previous_occurrence_in_utc_equals_a_brute_force_scan(fields, before, inclusive):
    expected = brute_previous(*fields, before, inclusive=inclusive)
    got = timing.previous_occurrence(cron_of(*fields), before, tz=UTC, inclusive=inclusive)
    if expected is None:
        assert got is None or got < before - timedelta(days=WINDOW_DAYS - 1)
    else:
        assert got == expected


@PROPERTY
@given(
    fields=st.tuples(subsets(0, 59, 4), subsets(0, 23, 4), st.just(set(range(1, 32))),
                     st.just(set(range(1, 13))), subsets(0, 6, 3)),
    now=instants,
)
def test_next_occurrence_agrees_with_celerys_own_crontab(fields, now):
    """celery's crontab.remaining_estimate from a pinned now is the reference for everyday crontabs."""
    cron = cron_of(*fields)
    reference = crontab(minute=cron._orig_minute, hour=cron._orig_hour, day_of_week=cron._orig_day_of_week,
                        day_of_month=cron._orig_day_of_month, month_of_year=cron._orig_month_of_year,
                        nowfun=lambda: now)
    last_run = now.replace(second=0, microsecond=0)
    celery_next = now + reference.remaining_estimate(last_run)
    assert timing.next_occurrence(cron, last_run, tz=UTC) == celery_next


# -- daylight saving time ---------------------------------------------------------------------


def occurrences(cron, tz, start, end):
    out, moment = [], start
    for _ in range(1000):
        following = timing.next_occurrence(cron, moment, tz=tz)
        assert following is None or following > moment, f"next after {moment} is {following}"
        if following is None or following > end:
            return out
        out.append(following)
        moment = following
    raise AssertionError("more than 1000 occurrences")


@pytest.mark.parametrize(
    "tz, wall, day, expected_utc",
    [
        # spring forward: 02:30 does not exist; it runs once, when the gap ends (03:00 local)
        (BERLIN, "30 2", date(2026, 3, 29), [datetime(2026, 3, 28, 1, 30), datetime(2026, 3, 29, 1, 0),
                                              datetime(2026, 3, 30, 0, 30)]),
        (NEW_YORK, "30 2", date(2026, 3, 8), [datetime(2026, 3, 7, 7, 30), datetime(2026, 3, 8, 7, 0),
                                               datetime(2026, 3, 9, 6, 30)]),
        # fall back: 02:30 happens twice in Berlin (01:00 twice in New York); it runs once, the first time
        (BERLIN, "30 2", date(2026, 10, 25), [datetime(2026, 10, 24, 0, 30), datetime(2026, 10, 25, 0, 30),
                                               datetime(2026, 10, 26, 1, 30)]),
        (NEW_YORK, "30 1", date(2026, 11, 1), [datetime(2026, 10, 31, 5, 30), datetime(2026, 11, 1, 5, 30),
                                                datetime(2026, 11, 2, 6, 30)]),
        (NEW_YORK, "30 2", date(2026, 11, 1), [datetime(2026, 10, 31, 6, 30), datetime(2026, 11, 1, 7, 30),
                                                datetime(2026, 11, 2, 7, 30)]),
    ],
)
def test_daily_run_across_dst_runs_exactly_once_a_day(tz, wall, day, expected_utc):
    minute, hour = wall.split()
    cron = crontab(minute=minute, hour=hour)
    start = datetime(day.year, day.month, day.day, tzinfo=tz) - timedelta(days=1)
    got = occurrences(cron, tz, start.astimezone(UTC), (start + timedelta(days=3)).astimezone(UTC))
    assert [g.astimezone(UTC).replace(tzinfo=None) for g in got] == expected_utc
    assert all(g.tzinfo is tz for g in got)


def test_every_15_minutes_in_the_spring_gap_runs_once_at_its_end():
    cron = crontab(minute="*/15", hour="2")
    got = occurrences(cron, BERLIN, datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 6, tzinfo=UTC))
    assert [g.astimezone(UTC) for g in got] == [datetime(2026, 3, 29, 1, 0, tzinfo=UTC)]


def test_every_15_minutes_in_the_doubled_hour_runs_the_first_hour_only():
    cron = crontab(minute="*/15", hour="2")
    got = occurrences(cron, BERLIN, datetime(2026, 10, 24, 23, tzinfo=UTC), datetime(2026, 10, 25, 6, tzinfo=UTC))
    assert [g.astimezone(UTC).strftime("%H:%M") for g in got] == ["00:00", "00:15", "00:30", "00:45"]


def test_previous_occurrence_across_dst():
    cron = crontab(minute="30", hour="2")
    assert timing.previous_occurrence(cron, datetime(2026, 3, 29, 5, tzinfo=UTC), tz=BERLIN) == \
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # (an ambiguous local time never compares equal across zones: compare in UTC)
    assert timing.previous_occurrence(cron, datetime(2026, 10, 25, 5, tzinfo=UTC), tz=BERLIN).astimezone(UTC) == \
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_decide_on_the_spring_forward_day_runs_the_gap_slot_once():
    cron = crontab(minute="30", hour="2")
    last = datetime(2026, 3, 28, 1, 30, tzinfo=UTC)  # 02:30 CET on the day before
    before_gap_end = timing.decide(cron, last, now=datetime(2026, 3, 29, 0, 59, tzinfo=UTC), anchor=None, tz=BERLIN)
    assert not before_gap_end.due and before_gap_end.next_due == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    at_gap_end = timing.decide(cron, last, now=datetime(2026, 3, 29, 1, 0, 1, tzinfo=UTC), anchor=None, tz=BERLIN)
    assert at_gap_end.due and at_gap_end.slot == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert at_gap_end.next_due == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)
    again = timing.decide(cron, at_gap_end.slot, now=datetime(2026, 3, 29, 1, 30, tzinfo=UTC), anchor=None, tz=BERLIN)
    assert not again.due


# -- intervals: coalescing and no drift -------------------------------------------------------


T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_missed_interval_slots_are_coalesced_into_one_run():
    decision = timing.decide(schedule(600), T0, now=T0 + timedelta(minutes=34, seconds=59), anchor=None)
    assert decision.due
    assert decision.slot == T0 + timedelta(minutes=30)  # the newest missed slot
    assert decision.next_due == T0 + timedelta(minutes=40)
    assert decision.next_score == (T0 + timedelta(minutes=40)).timestamp()


def test_interval_not_due_yet():
    decision = timing.decide(schedule(600), T0, now=T0 + timedelta(minutes=9, seconds=59), anchor=None)
    assert decision == timing.Decision(False, None, T0 + timedelta(minutes=10))


@pytest.mark.parametrize("lags", [[0.0] * 20, [0.9, 0.01, 2.5, 0.3, 1.7] * 4])
def test_interval_keeps_its_phase_whatever_the_dispatch_lag(lags):
    every = 0.5
    last = T0
    for lag in lags:
        due = timing.first_due(schedule(every), last, anchor=T0)
        now = due + timedelta(seconds=lag)
        decision = timing.decide(schedule(every), last, now=now, anchor=T0)
        if not decision.due:  # more than half a period late: merged into the next slot, on the grid
            assert timedelta(0) < decision.next_due - now < timedelta(seconds=every / 2)
            decision = timing.decide(schedule(every), last, now=decision.next_due, anchor=T0)
            now = decision.slot
        assert decision.due
        # the slot is on the grid: T0 + k * 0.5 s, never T0 + k * 0.5 s + accumulated lag
        offset = (decision.slot - T0).total_seconds()
        assert offset == pytest.approx(round(offset / every) * every)
        assert decision.next_due > now - timedelta(seconds=every)
        last = decision.slot
    assert (last - T0).total_seconds() >= len(lags) * every


def test_fractional_scores_are_kept():
    decision = timing.decide(schedule(0.5), T0, now=T0 + timedelta(seconds=0.5), anchor=None)
    assert decision.next_score == T0.timestamp() + 1.0
    assert timing.decide(schedule(0.25), T0, now=T0, anchor=None).next_score == T0.timestamp() + 0.25


def test_relative_interval_rounds_like_celery():
    ninety = schedule(timedelta(minutes=90), relative=True)
    last = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
    ninety.nowfun = lambda: last
    assert timing.first_due(ninety, last, anchor=last) == last + ninety.remaining_estimate(last)
    assert timing.first_due(ninety, last, anchor=last) == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)
    hourly = schedule(3600, relative=True)
    assert timing.first_due(hourly, datetime(2026, 1, 1, 12, 20, 5, tzinfo=UTC), anchor=last) == \
        datetime(2026, 1, 1, 13, 0, tzinfo=UTC)


# -- never-run anchors (celery-redbeat #79, #81, #154) and rrule's dtstart (#74) ---------------


def test_never_run_interval_is_due_at_its_anchor():
    anchor = T0 + timedelta(seconds=3)
    assert timing.decide(schedule(600), None, now=T0, anchor=anchor) == timing.Decision(False, None, anchor)
    due = timing.decide(schedule(600), None, now=anchor + timedelta(seconds=1), anchor=anchor)
    assert due.due and due.slot == anchor and due.next_due == anchor + timedelta(minutes=10)


def test_never_run_crontab_waits_for_its_first_real_slot():
    cron = crontab(minute="*/15")
    decision = timing.decide(cron, None, now=T0 + timedelta(minutes=7), anchor=T0 + timedelta(minutes=7), tz=UTC)
    assert decision == timing.Decision(False, None, T0 + timedelta(minutes=15))


def test_never_run_crontab_anchored_on_a_slot_is_due_on_it():
    cron = crontab(minute="*/15")
    decision = timing.decide(cron, None, now=T0, anchor=T0, tz=UTC)
    assert decision.due and decision.slot == T0 and decision.next_due == T0 + timedelta(minutes=15)


def test_never_run_crontab_overdue_since_its_anchor_runs_once():
    cron = crontab(minute="0")
    decision = timing.decide(cron, None, now=T0 + timedelta(hours=5, minutes=1),
                             anchor=T0 + timedelta(minutes=1), tz=UTC)
    assert decision.due
    assert decision.slot == T0 + timedelta(hours=5)
    assert decision.next_due == T0 + timedelta(hours=6)


def test_crontab_coalesces_missed_slots():
    cron = crontab(minute="0", hour="*/2")
    decision = timing.decide(cron, T0 - timedelta(hours=6), now=T0 + timedelta(minutes=30), anchor=None, tz=UTC)
    assert decision.due and decision.slot == T0 and decision.next_due == T0 + timedelta(hours=2)


def test_rrule_runs_its_dtstart_occurrence():
    rule = rrule("HOURLY", dtstart=T0, count=3)
    assert timing.first_due(rule, None, anchor=T0 - timedelta(minutes=30)) == T0
    assert timing.first_due(rule, None, anchor=T0) == T0
    at_start = timing.decide(rule, None, now=T0, anchor=T0 - timedelta(minutes=30))
    assert at_start.due and at_start.slot == T0 and at_start.next_due == T0 + timedelta(hours=1)


def test_rrule_never_run_waits_for_dtstart():
    rule = rrule("DAILY", dtstart=T0 + timedelta(days=1))
    decision = timing.decide(rule, None, now=T0, anchor=T0)
    assert decision == timing.Decision(False, None, T0 + timedelta(days=1))


def test_finished_rrule_is_never_due_again():
    rule = rrule("HOURLY", dtstart=T0, count=3)
    last = T0 + timedelta(hours=2)
    decision = timing.decide(rule, last, now=T0 + timedelta(days=1), anchor=None)
    assert decision == timing.Decision(False, None, None)
    assert decision.next_score == -1.0
    final = timing.decide(rule, T0 + timedelta(hours=1), now=T0 + timedelta(days=1), anchor=None)
    assert final.due and final.slot == last and final.next_due is None and final.next_score == -1.0


def test_rrule_in_a_time_zone_keeps_the_wall_clock_across_dst():
    rule = rrule("DAILY", dtstart=datetime(2026, 3, 27, 9, 0, tzinfo=UTC), byhour=[9], byminute=[0])
    got = timing.next_occurrence(rule, datetime(2026, 3, 29, 12, tzinfo=UTC), tz=BERLIN)
    assert got.astimezone(BERLIN).hour == 9
    assert got == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
