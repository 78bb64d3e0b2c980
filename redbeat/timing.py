"""When is an entry due?  Pure functions of (schedule, run state, now); no I/O, no clock.

The rule, shared by the tick, ``Entry.due_at`` and ``redbeat-apply``:

* An entry that has run is next due at the first slot after ``last_run_at``.
* An entry that never ran is due at its first slot at or after its *anchor*:
  the score it was given when it was saved (celery-redbeat writes "now"
  there).  An interval entry's first slot is the anchor itself, so it runs
  at once as in celery-redbeat; a crontab or rrule entry waits for its first
  real occurrence (celery-redbeat ran it at creation: its #79, #154).
* When several slots fell due while no beat ran, they are *coalesced*: the
  entry runs once, for the newest missed slot, and is next due at the slot
  after that (celery's and celery-redbeat's "catch up once").
* ``last_run_at`` records the slot, not the wall-clock moment of sending, so
  an interval entry keeps its phase and never drifts by the dispatch lag.

Crontab fields are matched on the wall clock of the entry's time zone.  A
wall time that does not exist (clocks spring forward) runs at the instant
the gap ends (02:30 in a 02:00-03:00 gap runs at 03:00, once, even when
several slots fall in the gap); a wall time that happens twice (clocks fall
back) runs once, at its first occurrence.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import MINYEAR, date, datetime, timedelta, timezone, tzinfo
from typing import Any

from celery.schedules import crontab
from celery.schedules import schedule as interval_schedule
from celery.utils.time import remaining

from .schedules import rrule

UTC = timezone.utc
# Long enough for "Feb 29 that is a Monday" (28 years) and then some.
_CRON_SEARCH_DAYS = 366 * 30
_NEVER_RUN = datetime(MINYEAR, 1, 2, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Decision:
    due: bool
    slot: datetime | None  # the slot to dispatch now, when due
    next_due: datetime | None  # None: the schedule has no further slot

    @property
    def next_score(self) -> float:
        return -1.0 if self.next_due is None else self.next_due.timestamp()


def decide(
    schedule: Any,
    last_run_at: datetime | None,
    *,
    now: datetime,
    anchor: datetime | None,
    tz: tzinfo | None = None,
) -> Decision:
    """Whether the entry is due at ``now``; if so the slot it runs for; and when it is due next."""
    first = first_due(schedule, last_run_at, anchor=anchor or now, tz=tz)
    if isinstance(first, Decision):
        return first
    if first is None:
        return Decision(False, None, None)
    if first > now:
        return Decision(False, None, first)
    if isinstance(schedule, interval_schedule):
        every = schedule.run_every.total_seconds()
        missed = math.floor((now - first).total_seconds() / every)
        slot = first + timedelta(seconds=missed * every)
        return Decision(True, slot, slot + timedelta(seconds=every))
    slot = previous_occurrence(schedule, now, tz=tz)
    if slot is None or slot < first:
        slot = first
    return Decision(True, slot, next_occurrence(schedule, slot, tz=tz))


def first_due(
    schedule: Any, last_run_at: datetime | None, *, anchor: datetime, tz: tzinfo | None = None
) -> datetime | None | Decision:
    """The first slot not yet run: may lie in the past (overdue); None when there is none."""
    if isinstance(schedule, interval_schedule):
        every = schedule.run_every.total_seconds()
        if not every > 0:
            raise ValueError(f"interval must be positive, not {every!r} seconds")
        if last_run_at is None:
            return anchor
        if schedule.relative:
            # celery rounds the *end* (last run + interval) down to the interval's
            # resolution; rounding the start instead differs for e.g. 90 minutes.
            return last_run_at + remaining(last_run_at, schedule.run_every, now=last_run_at, relative=True)
        return last_run_at + schedule.run_every
    if isinstance(schedule, (crontab, rrule)):
        if last_run_at is None:
            return next_occurrence(schedule, anchor, tz=tz, inclusive=True)
        return next_occurrence(schedule, last_run_at, tz=tz)
    return _generic_decision(schedule, last_run_at)


def _generic_decision(schedule: Any, last_run_at: datetime | None) -> Decision:
    """Any other celery schedule (solar, user-defined): ask its own is_due."""
    state = schedule.is_due(last_run_at or _NEVER_RUN)
    now = schedule.maybe_make_aware(schedule.now())
    following = None if state.next is None else now + timedelta(seconds=float(state.next))
    return Decision(bool(state.is_due), now if state.is_due else None, following)


def next_occurrence(
    schedule: Any, after: datetime, *, tz: tzinfo | None = None, inclusive: bool = False
) -> datetime | None:
    if isinstance(schedule, rrule):
        rule = schedule.localised(tz) if tz is not None else schedule
        return rule.next_after(after, inclusive=inclusive)
    return _cron_next(schedule, after, tz or schedule.tz, inclusive)


def previous_occurrence(
    schedule: Any, before: datetime, *, tz: tzinfo | None = None, inclusive: bool = True
) -> datetime | None:
    if isinstance(schedule, rrule):
        rule = schedule.localised(tz) if tz is not None else schedule
        return rule.previous_before(before, inclusive=inclusive)
    return _cron_previous(schedule, before, tz or schedule.tz, inclusive)


# -- crontab on the wall clock -------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CronSets:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]  # celery's numbering: 0 = Sunday

    @classmethod
    def of(cls, cron: crontab) -> "_CronSets":
        return cls(
            tuple(sorted(cron.minute)),
            tuple(sorted(cron.hour)),
            frozenset(cron.day_of_month),
            frozenset(cron.month_of_year),
            frozenset(cron.day_of_week),
        )

    def day_matches(self, day: date) -> bool:
        return (
            day.month in self.months
            and day.day in self.days_of_month
            and (day.weekday() + 1) % 7 in self.days_of_week
        )


def _sets(cron: crontab) -> _CronSets:
    cached = getattr(cron, "_redbeat_sets", None)
    if cached is None:
        cached = _CronSets.of(cron)
        cron._redbeat_sets = cached
    return cached


def _near_transition(moment: datetime, tz: tzinfo) -> bool:
    span = timedelta(hours=3)
    return (moment - span).astimezone(tz).utcoffset() != (moment + span).astimezone(tz).utcoffset()


def _wall_to_instant(wall: datetime, tz: tzinfo) -> datetime:
    """The instant a naive wall-clock time means in ``tz``: first occurrence if doubled, gap end if skipped."""
    aware = wall.replace(tzinfo=tz)
    instant = aware.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == wall:
        return instant
    # Nonexistent: the transition lies between the two readings; find it to the minute.
    low = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = instant
    offset_before = low.astimezone(tz).utcoffset()
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) / 2
        middle = middle.replace(second=0, microsecond=0)
        if middle <= low:
            break
        if middle.astimezone(tz).utcoffset() == offset_before:
            low = middle
        else:
            high = middle
    return high


def _walls_forward(sets: _CronSets, start: datetime) -> Iterator[datetime]:
    day = start.date()
    first = True
    for _ in range(_CRON_SEARCH_DAYS):
        if sets.day_matches(day):
            hours = sets.hours[bisect.bisect_left(sets.hours, start.hour):] if first else sets.hours
            for hour in hours:
                minutes = sets.minutes
                if first and hour == start.hour:
                    minutes = minutes[bisect.bisect_left(minutes, start.minute):]
                for minute in minutes:
                    yield datetime(day.year, day.month, day.day, hour, minute)
        first = False
        day += timedelta(days=1)


def _walls_backward(sets: _CronSets, start: datetime) -> Iterator[datetime]:
    day = start.date()
    first = True
    for _ in range(_CRON_SEARCH_DAYS):
        if sets.day_matches(day):
            hours = sets.hours[: bisect.bisect_right(sets.hours, start.hour)] if first else sets.hours
            for hour in reversed(hours):
                minutes = sets.minutes
                if first and hour == start.hour:
                    minutes = minutes[: bisect.bisect_right(minutes, start.minute)]
                for minute in reversed(minutes):
                    yield datetime(day.year, day.month, day.day, hour, minute)
        first = False
        try:
            day -= timedelta(days=1)
        except OverflowError:
            return


def _cron_next(cron: crontab, after: datetime, tz: Any, inclusive: bool) -> datetime | None:
    sets = _sets(cron)
    wall = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    if _near_transition(after, tz):
        wall -= timedelta(hours=3)
    for candidate in _walls_forward(sets, wall):
        instant = _wall_to_instant(candidate, tz)
        if instant > after or (inclusive and instant == after):
            return instant.astimezone(tz)
    return None


def _cron_previous(cron: crontab, before: datetime, tz: Any, inclusive: bool) -> datetime | None:
    sets = _sets(cron)
    wall = before.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    if _near_transition(before, tz):
        wall += timedelta(hours=3)
    for candidate in _walls_backward(sets, wall):
        instant = _wall_to_instant(candidate, tz)
        if instant < before or (inclusive and instant == before):
            return instant.astimezone(tz)
    return None
