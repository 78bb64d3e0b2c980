"""Scheduling extensions in the due-time rules: time zones across DST, catch-up, deadlines, windows, one-offs, jitter.

``simulate`` plays beat: it looks at the entry at each tick and, when it is
due, records the run for its slot as the tick does (last_run_at = slot).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab
from celery.schedules import schedule as every
from hypothesis import given, settings
from hypothesis import strategies as st

from redbeat.schedules import rrule
from redbeat.timing import DEFAULT_POLICY, Policy, decide, next_occurrence, previous_occurrence

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def simulate(schedule, *, start, end, step, policy=DEFAULT_POLICY, tz=None, last_run_at=None, anchor=None,
             ticks=None):
    """Runs (slot, sent at) from ticks every ``step`` between start and end (or at the given ``ticks``)."""
    runs = []
    moments = ticks if ticks is not None else _range(start, end, step)
    for now in moments:
        decision = decide(schedule, last_run_at, now=now, anchor=anchor or start, tz=tz, policy=policy)
        while decision.due:
            runs.append((decision.slot, now))
            last_run_at = decision.slot
            decision = decide(schedule, last_run_at, now=now, anchor=anchor or start, tz=tz, policy=policy)
    return runs


def _range(start, end, step):
    now = start
    while now <= end:
        yield now
        now += step


# -- per-entry time zones across the real 2026 transitions -------------------------------------------

@pytest.mark.parametrize("zone, spring_day", [(BERLIN, 29), (NEW_YORK, 8)])
def test_daily_0230_runs_once_at_0300_on_spring_forward_night(zone, spring_day):
    day = datetime(2026, 3, spring_day, tzinfo=zone)
    runs = simulate(crontab(minute="30", hour="2"), start=day - timedelta(hours=12), end=day + timedelta(hours=12),
                    step=timedelta(minutes=1), tz=zone)
    assert [slot.astimezone(zone).strftime("%m-%d %H:%M %Z") for slot, _ in runs] == [
        f"03-{spring_day:02d} 03:00 {'CEST' if zone is BERLIN else 'EDT'}"
    ]


@pytest.mark.parametrize("zone, autumn, month", [(BERLIN, 25, 10), (NEW_YORK, 1, 11)])
def test_daily_0130_and_0230_run_once_on_fall_back_night(zone, autumn, month):
    day = datetime(2026, month, autumn, tzinfo=zone)
    for hour in (1, 2):
        runs = simulate(crontab(minute="30", hour=str(hour)), start=day - timedelta(hours=6),
                        end=day + timedelta(hours=18), step=timedelta(minutes=1), tz=zone)
        assert len(runs) == 1, runs
        assert runs[0][0].astimezone(zone).strftime("%H:%M") == f"0{hour}:30"


def test_same_crontab_in_two_zones_runs_at_different_instants():
    start = datetime(2026, 6, 1, tzinfo=UTC)
    berlin = simulate(
        crontab(minute="0", hour="9"), start=start, end=start + timedelta(days=1), step=timedelta(minutes=5), tz=BERLIN
    )
    new_york = simulate(
        crontab(minute="0", hour="9"),
        start=start,
        end=start + timedelta(days=1),
        step=timedelta(minutes=5),
        tz=NEW_YORK,
    )
    assert [s.astimezone(UTC).hour for s, _ in berlin] == [7]
    assert [s.astimezone(UTC).hour for s, _ in new_york] == [13]


def test_rrule_in_a_zone_keeps_local_wall_time_across_dst():
    rule = rrule(
        "DAILY",
        dtstart=datetime(2026, 3, 27, 9, 0, tzinfo=timezone(timedelta(hours=1))),
        byhour=[9],
        byminute=[0],
        bysecond=[0],
    )
    runs = simulate(
        rule,
        start=datetime(2026, 3, 27, tzinfo=UTC),
        end=datetime(2026, 3, 31, tzinfo=UTC),
        step=timedelta(minutes=10),
        tz=BERLIN,
    )
    assert [s.astimezone(BERLIN).strftime("%d %H:%M") for s, _ in runs] == [
        "27 09:00",
        "28 09:00",
        "29 09:00",
        "30 09:00",
    ]


# -- catch-up after downtime ----------------------------------------------------------------------------

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MINUTELY = every(timedelta(minutes=1))
DOWN = [T0 + timedelta(seconds=1), T0 + timedelta(minutes=30, seconds=1), T0 + timedelta(minutes=31, seconds=1)]


def after_downtime(ticks, policy=DEFAULT_POLICY):
    """Runs of MINUTELY, last run the minute before T0, as beat ticking only at ``ticks`` sends them."""
    return simulate(MINUTELY, start=T0, end=None, step=None, last_run_at=T0 - timedelta(minutes=1), ticks=ticks,
                    policy=policy)


def minutes_after_t0(runs):
    return [(slot - T0).total_seconds() / 60 for slot, _ in runs]


def test_catch_up_once_runs_the_newest_missed_slot_once():
    assert minutes_after_t0(after_downtime(DOWN)) == [0, 30, 31]


def test_catch_up_skip_runs_no_slot_missed_by_more_than_the_grace():
    # 12:00 ran on time; 12:01..12:30 missed while down; at 12:30:01 the 12:30 slot is 1 s late: it runs.
    assert minutes_after_t0(after_downtime(DOWN, Policy(catch_up="skip"))) == [0, 30, 31]
    late = [T0 + timedelta(seconds=1), T0 + timedelta(minutes=30, seconds=50), T0 + timedelta(minutes=31, seconds=1)]
    assert minutes_after_t0(after_downtime(late, Policy(catch_up="skip", starting_deadline=30))) == [0, 31]


def test_catch_up_all_runs_each_missed_slot_oldest_first_up_to_the_limit():
    runs = after_downtime([T0 + timedelta(minutes=4, seconds=1)], Policy(catch_up="all"))
    assert minutes_after_t0(runs) == [0, 1, 2, 3, 4]
    capped = after_downtime([T0 + timedelta(days=7)], Policy(catch_up="all", catch_up_limit=3))
    assert minutes_after_t0(capped) == [7 * 1440 - 2, 7 * 1440 - 1, 7 * 1440]


def test_catch_up_all_with_a_crontab_caps_too():
    runs = simulate(
        crontab(minute="0"),
        start=T0,
        end=None,
        step=None,
        last_run_at=T0 - timedelta(hours=1),
        ticks=[T0 + timedelta(days=2, minutes=5)],
        policy=Policy(catch_up="all", catch_up_limit=4),
    )
    assert [(s - T0) / timedelta(hours=1) for s, _ in runs] == [45, 46, 47, 48]


@pytest.mark.parametrize(
    "late, runs_it", [(timedelta(seconds=30), True), (timedelta(seconds=30, microseconds=1), False)]
)
def test_starting_deadline_boundary(late, runs_it):
    policy = Policy(starting_deadline=30)
    decision = decide(MINUTELY, T0 - timedelta(minutes=1), now=T0 + late, anchor=None, policy=policy)
    assert decision.due is runs_it
    assert decision.next_due == T0 + timedelta(minutes=1)


# -- windows ---------------------------------------------------------------------------------------------


def test_start_at_keeps_an_entry_dormant_until_its_first_slot_after_it():
    start_at = T0 + timedelta(minutes=2, seconds=30)
    policy = Policy(start_at=start_at)
    decision = decide(MINUTELY, None, now=T0, anchor=T0, policy=policy)
    assert (decision.due, decision.next_due) == (False, T0 + timedelta(minutes=3))
    cron = decide(crontab(minute="*/5"), None, now=T0, anchor=T0, policy=policy)
    assert cron.next_due == T0 + timedelta(minutes=5)


def test_end_at_exactly_on_a_slot_runs_that_slot_then_finishes():
    policy = Policy(end_at=T0 + timedelta(minutes=3))
    runs = simulate(
        MINUTELY,
        start=T0,
        end=T0 + timedelta(minutes=10),
        step=timedelta(seconds=20),
        last_run_at=T0 - timedelta(minutes=1),
        policy=policy,
    )
    assert [(s - T0).total_seconds() / 60 for s, _ in runs] == [0, 1, 2, 3]
    after = decide(MINUTELY, T0 + timedelta(minutes=3), now=T0 + timedelta(minutes=10), anchor=None, policy=policy)
    assert (after.due, after.next_due, after.next_score) == (False, None, -1.0)


# -- one-off runs -----------------------------------------------------------------------------------------


def test_one_off_runs_once_then_is_finished():
    at = rrule(0, dtstart=T0 + timedelta(hours=1), count=1)
    assert decide(at, None, now=T0, anchor=T0).next_due == T0 + timedelta(hours=1)
    runs = simulate(at, start=T0, end=T0 + timedelta(days=3), step=timedelta(minutes=7))
    assert [slot for slot, _ in runs] == [T0 + timedelta(hours=1)]
    assert decide(at, T0 + timedelta(hours=1), now=T0 + timedelta(days=30), anchor=None).next_score == -1.0


def test_one_off_in_the_past_never_runs_for_a_new_entry():
    at = rrule(0, dtstart=T0 - timedelta(hours=1), count=1)
    assert decide(at, None, now=T0, anchor=T0) == decide(at, None, now=T0, anchor=T0)
    assert decide(at, None, now=T0, anchor=T0).next_score == -1.0


# -- jitter -----------------------------------------------------------------------------------------------


def test_jitter_is_deterministic_per_entry_and_slot_and_within_the_window():
    a, again, other = Policy(name="a", jitter=30), Policy(name="a", jitter=30), Policy(name="b", jitter=30)
    slots = [T0 + timedelta(minutes=i) for i in range(200)]
    offsets = [a.offset(s).total_seconds() for s in slots]
    assert offsets == [again.offset(s).total_seconds() for s in slots]
    assert all(0 <= o < 30 for o in offsets)
    assert len({round(o, 3) for o in offsets}) > 150  # spread, not one value
    assert offsets != [other.offset(s).total_seconds() for s in slots]


def test_jittered_slot_runs_at_its_offset_not_before():
    policy = Policy(name="spread", jitter=40)
    slot = T0 + timedelta(minutes=1)
    runs_at = policy.runs_at(slot)
    assert slot <= runs_at < slot + timedelta(seconds=40)
    before = decide(MINUTELY, T0, now=runs_at - timedelta(microseconds=1), anchor=None, policy=policy)
    assert (before.due, before.next_due) == (False, runs_at)
    at = decide(MINUTELY, T0, now=runs_at, anchor=None, policy=policy)
    assert (at.due, at.slot) == (True, slot)
    assert at.next_due == policy.runs_at(slot + timedelta(minutes=1))


def test_policy_from_ext():
    ext = {
        "catch_up": "all",
        "catch_up_limit": 3,
        "starting_deadline": 90.0,
        "jitter": 5.0,
        "start_at": "2026-12-01T00:00:00+01:00",
        "end_at": "2026-12-31T00:00:00+01:00",
        "timezone": "UTC",
    }
    assert Policy.from_ext(ext, "n") == Policy(
        name="n",
        catch_up="all",
        catch_up_limit=3,
        starting_deadline=90.0,
        jitter=5.0,
        start_at=datetime(2026, 11, 30, 23, tzinfo=UTC),
        end_at=datetime(2026, 12, 30, 23, tzinfo=UTC),
    )
    assert Policy.from_ext(None, "n") is DEFAULT_POLICY


# -- the spacing rule and the score as a floor (issue 19) ---------------------------------------------------


def beat_runs(schedule, outages, *, start, lateness, policy=DEFAULT_POLICY):
    """Play a leader that wakes at the entry's score (``lateness`` of the period late), ticks, files it as beat
    does; during each (begin, length) outage nobody ticks, and the next leader ticks at its end."""
    runs, last_run_at, score = [], start - timedelta(seconds=1), start
    now, end = start, (outages[-1][0] if outages else start) + timedelta(days=2)
    for begin, length in [*outages, (end, 0.0)]:
        while score is not None and score < begin and len(runs) < 400:
            now = max(now, score) + timedelta(seconds=lateness * _period(schedule, score))
            decision = decide(schedule, last_run_at, now=now, anchor=score, policy=policy, floor=score)
            if decision.due:
                runs.append((decision.slot, now))
                last_run_at = decision.slot
            score = decision.next_due
        now = max(now, begin + timedelta(seconds=length))  # the takeover, at any phase of the period
    return runs


def _period(schedule, moment):
    if isinstance(schedule, every):
        return schedule.seconds
    previous = previous_occurrence(schedule, moment, tz=UTC)
    return (next_occurrence(schedule, previous, tz=UTC) - previous).total_seconds()


SPACED = {
    "every-1s": every(1.0),
    "every-7s": every(7.0),
    "cron-9-and-10": crontab(minute="0", hour="9,10"),
    "cron-every-5-min": crontab(minute="*/5"),
}


@given(
    kind=st.sampled_from(sorted(SPACED)),
    outages=st.lists(st.tuples(st.floats(2.0, 50.0), st.floats(0.01, 3.0)), min_size=1, max_size=6),
    lateness=st.floats(0.0, 0.2),
)
@settings(max_examples=150, deadline=None)
def test_a_catch_up_never_runs_less_than_half_a_period_before_the_next_run(kind, outages, lateness):
    """Issue 19 #1: after an outage (takeover, restart) ending at any phase, runs stay half a period apart.

    Outages are (time led before it, its length), both in periods of the entry; beat is a little late at
    every tick.  (A second outage before the merged slot runs is outside the rule: see redbeat.timing.)
    """
    schedule = SPACED[kind]
    start = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    # the longest gap between two slots: outages are spaced and sized by it
    period = {"every-1s": 1.0, "every-7s": 7.0, "cron-9-and-10": 23 * 3600.0, "cron-every-5-min": 300.0}[kind]
    spans, at = [], start
    for led, length in outages:
        at += timedelta(seconds=led * period)
        spans.append((at, length * period))
        at += timedelta(seconds=length * period)
    runs = beat_runs(schedule, spans, start=start, lateness=lateness)
    assert runs
    for (slot, sent), (next_slot, next_sent) in zip(runs, runs[1:], strict=False):
        gap = _period(schedule, slot)  # an interval's, or for a crontab the gap from the slot to the next
        assert (next_sent - sent).total_seconds() >= gap / 2 - 1e-6, (slot, sent, next_slot, next_sent)


def test_an_overloaded_beat_never_merges_a_slot_away_twice():
    """A beat late by more than half a period at every tick still runs the entry at least every other slot."""
    runs = beat_runs(every(1.0), [], start=datetime(2026, 11, 25, 8, 0, tzinfo=UTC), lateness=0.75)
    assert len(runs) >= 100


def test_a_catch_up_is_merged_only_past_half_a_period_and_never_with_catch_up_all():
    hourly = crontab(minute="0")
    last = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    on_time_enough = decide(hourly, last, now=datetime(2026, 11, 25, 10, 30, tzinfo=UTC), anchor=None)
    assert on_time_enough.due and on_time_enough.slot == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    late = decide(hourly, last, now=datetime(2026, 11, 25, 10, 31, tzinfo=UTC), anchor=None)
    assert not late.due and late.next_due == late.next_slot == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    everything = decide(
        hourly, last, now=datetime(2026, 11, 25, 10, 31, tzinfo=UTC), anchor=None, policy=Policy(catch_up="all")
    )
    assert everything.due and everything.slot == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    # The last slot before end_at has no next slot to merge into: it runs, however late.
    ending = Policy(end_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    assert decide(hourly, last, now=datetime(2026, 11, 25, 10, 50, tzinfo=UTC), anchor=None, policy=ending).due


def test_an_entry_filed_under_now_starts_afresh_from_its_next_slot():
    """Re-enabled (a writer files it under "now"): the slots it missed while disabled do not run."""
    minutely = crontab()
    last = datetime(2026, 11, 25, 9, 59, tzinfo=UTC)
    filed = datetime(2026, 11, 25, 10, 0, 16, tzinfo=UTC)
    decision = decide(minutely, last, now=filed, anchor=filed, floor=filed)
    assert not decision.due and decision.next_due == datetime(2026, 11, 25, 10, 1, tzinfo=UTC)
    assert decide(minutely, last, now=filed, anchor=filed).due  # without the floor it caught up at once
    # Beat's own filing (a slot's jittered run time, read back from a float score) never skips that slot.
    jittered = Policy(name="j", jitter=20.0)
    slot = datetime(2026, 11, 25, 10, 1, tzinfo=UTC)
    score = datetime.fromtimestamp(jittered.runs_at(slot).timestamp(), tz=UTC)
    again = decide(minutely, last, now=score, anchor=score, floor=score, policy=jittered)
    assert again.due and again.slot == slot


def test_a_never_run_entry_waiting_out_its_jitter_is_filed_under_its_slot():
    policy = Policy(name="cache-warm", jitter=30.0)
    created = datetime(2026, 11, 25, 10, 0, 5, tzinfo=UTC)
    decision = decide(crontab(), None, now=created, anchor=created, policy=policy)
    assert decision.next_slot == datetime(2026, 11, 25, 10, 1, tzinfo=UTC)
    assert decision.next_due == policy.runs_at(decision.next_slot)
