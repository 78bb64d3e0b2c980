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
* **Spacing**: a catch-up run never crowds the next slot.  A run of an entry
  that has run before, more than half a period late (measured from the
  slot's run time, jitter included), would be less than half a period before
  the next slot, so it is merged into it: nothing runs now and the next slot
  runs on time.  For a crontab or rrule the period is the gap from the slot
  to the next one.  The slot merged into runs however late beat gets to it
  (a slot is never merged away twice, so an overloaded beat never starves
  an entry); only a second outage ending more than half a period after that
  slot can then bring two runs closer.
  ``catch_up: all`` asks for every missed slot and is exempt.
* **The score is a floor**: an entry that has run never runs a slot whose run
  time lies before the score it is filed under (``floor``).  Beat files an
  entry under its next slot's run time, so this changes nothing for beat's
  own writes; a writer that files an entry under "now" (enabling it again, a
  changed schedule) starts it afresh from its next slot instead of catching
  up the slots it spent disabled.

An entry's :class:`Policy` (its ``ext`` extensions) refines this:

* ``catch_up: once`` (the default) is the coalescing above; ``skip`` runs a
  missed slot only if it is at most ``starting_deadline`` (default 60 s) late,
  else nothing until the next slot; ``all`` runs every missed slot, oldest
  first, one per tick, at most ``catch_up_limit`` (default 10) of the newest.
* ``starting_deadline``: a slot later than this when beat gets to it is
  skipped, never run (with any policy).  Skipping writes no run state: the
  entry is only re-filed under its next slot.
* ``start_at`` / ``end_at``: no slot before ``start_at`` runs (the entry is
  dormant, filed under its first slot after it); after the last slot at or
  before ``end_at`` the entry is finished (score -1), kept in Redis.
* ``jitter``: each slot runs ``offset(entry, slot)`` later, a fraction of
  ``jitter`` fixed by a hash of the entry name and the slot, so every beat
  computes the same time and a failover never re-rolls it.

Crontab fields are matched on the wall clock of the entry's time zone.  A
wall time that does not exist (clocks spring forward) runs at the instant
the gap ends (02:30 in a 02:00-03:00 gap runs at 03:00, once, even when
several slots fall in the gap); a wall time that happens twice (clocks fall
back) runs once, at its first occurrence.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
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
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


#: ``catch_up: skip`` without a ``starting_deadline``: how late a slot may still run.
SKIP_GRACE_SECONDS = 60.0
DEFAULT_CATCH_UP_LIMIT = 10


@dataclass(slots=True)  # not frozen: one per due entry per tick, and a frozen __init__ costs twice as much
class Decision:
    due: bool
    slot: datetime | None  # the slot to dispatch now, when due
    next_due: datetime | None  # when to look again (jitter included); None: no further slot
    # The slot ``next_due`` runs (jitter excluded): a never-run entry is filed under it, since its
    # score is its anchor and filing it under the jittered time would move the anchor each tick.
    next_slot: datetime | None = field(default=None, compare=False)

    @property
    def next_score(self) -> float:
        return -1.0 if self.next_due is None else self.next_due.timestamp()


@dataclass(frozen=True, slots=True)
class Policy:
    """An entry's scheduling extensions (its ``ext``); the default is celery-redbeat's behaviour."""

    name: str = ""
    catch_up: str = "once"
    catch_up_limit: int = DEFAULT_CATCH_UP_LIMIT
    starting_deadline: float | None = None
    jitter: float = 0.0
    start_at: datetime | None = None
    end_at: datetime | None = None

    @classmethod
    def from_ext(cls, ext: dict[str, Any] | None, name: str = "") -> Policy:
        if not ext:
            return DEFAULT_POLICY  # the name only matters for jitter, an extension

        def instant(key: str) -> datetime | None:
            value = ext.get(key)
            return datetime.fromisoformat(value) if value else None

        deadline = ext.get("starting_deadline")
        return cls(
            name=name,
            catch_up=str(ext.get("catch_up", "once")),
            catch_up_limit=int(ext.get("catch_up_limit", DEFAULT_CATCH_UP_LIMIT)),
            starting_deadline=float(deadline) if deadline is not None else None,
            jitter=float(ext.get("jitter", 0.0)),
            start_at=instant("start_at"),
            end_at=instant("end_at"),
        )

    @property
    def deadline(self) -> float | None:
        if self.starting_deadline is not None:
            return self.starting_deadline
        return SKIP_GRACE_SECONDS if self.catch_up == "skip" else None

    def offset(self, slot: datetime) -> timedelta:
        """The jitter of ``slot``: the same for every beat, every time."""
        if self.jitter <= 0:
            return timedelta(0)
        digest = hashlib.sha256(f"{self.name}\0{slot.timestamp():.6f}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "big") / 2**64
        return timedelta(seconds=fraction * self.jitter)

    def runs_at(self, slot: datetime) -> datetime:
        if self.jitter <= 0:
            return slot  # the common case, asked several times per decision: no timedelta arithmetic
        return slot + self.offset(slot)


DEFAULT_POLICY = Policy()


def decide(
    schedule: Any,
    last_run_at: datetime | None,
    *,
    now: datetime,
    anchor: datetime | None,
    tz: tzinfo | None = None,
    policy: Policy = DEFAULT_POLICY,
    floor: datetime | None = None,
    spacing: bool = True,
) -> Decision:
    """Whether the entry is due at ``now``; if so the slot it runs for; and when to look at it next.

    ``floor``: the score the entry is filed under; an entry that has run runs no slot whose run time
    is before it (see the module docstring).  ``spacing=False``: no merging (when is it due, not what
    the tick does about it).
    """
    first = first_due(schedule, last_run_at, anchor=anchor or now, tz=tz)
    if isinstance(first, Decision):
        return first
    if first is not None and policy.start_at is not None and first < policy.start_at:
        first = _first_slot_from(schedule, first, policy.start_at, tz)
    # A last run before 1970 is a placeholder (celery-redbeat users write datetime.min for "never"):
    # like a never-run entry it runs its first slot at once, with no previous run to space from.
    may_merge = spacing and policy.catch_up != "all" and last_run_at is not None and last_run_at >= _EPOCH
    filed_past_a_missed_slot = False
    if first is not None and floor is not None and last_run_at is not None:
        unrun = first
        first = _first_running_from(schedule, first, floor, tz, policy)
        filed_past_a_missed_slot = first != unrun
    if first is None or (policy.end_at is not None and first > policy.end_at):
        return Decision(False, None, None)
    if policy.runs_at(first) > now:
        return Decision(False, None, policy.runs_at(first), first)
    newest = _newest_slot(schedule, first, now, tz, policy)
    slot = newest
    if policy.catch_up == "all":
        slot = _oldest_to_run(schedule, first, newest, tz, policy.catch_up_limit)
    deadline = policy.deadline
    if deadline is not None:
        if (now - newest).total_seconds() > deadline:
            # Even the newest missed slot is too late: run nothing, look again at the next slot.
            return _after(schedule, newest, tz, policy, due=False)
        while (now - slot).total_seconds() > deadline:
            later = _next_slot(schedule, slot, tz)
            if later is None or later > newest:
                break
            slot = later
    # The slot a merge (or a writer) filed the entry under runs however late beat gets to it: a slot is
    # never merged away twice, so an overloaded beat cannot starve an entry.
    following = _following(schedule, slot, tz, policy)  # once: for a crontab it is a calendar search
    if following is None:
        return Decision(True, slot, None, None)
    if may_merge and not (filed_past_a_missed_slot and slot == first) and _merges(slot, following, now, policy):
        return Decision(False, None, policy.runs_at(following), following)
    return Decision(True, slot, policy.runs_at(following), following)


def next_due(
    schedule: Any, last_run_at: datetime | None, *, now: datetime, tz: tzinfo | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> datetime | None:
    """When an entry that last ran at ``last_run_at`` (None: never) is due, seen at ``now``; None: never again.

    Overdue entries answer with their first missed slot (a time in the past).
    """
    decision = decide(schedule, last_run_at, now=now, anchor=now, tz=tz, policy=policy, spacing=False)
    if not decision.due:
        return decision.next_due
    first = first_due(schedule, last_run_at, anchor=now, tz=tz)
    if isinstance(first, Decision):
        return now
    return first


def upcoming_runs(
    schedule: Any, last_run_at: datetime | None, *, now: datetime, until: datetime, tz: tzinfo | None = None,
    policy: Policy = DEFAULT_POLICY, limit: int = 10,
) -> list[datetime]:
    """The times (jitter included) the entry runs from ``now`` up to ``until`` (at most ``limit``), by this rule.

    An overdue entry's first run is ``now`` (beat runs it at its next tick); the runs after it follow its
    slots as the tick would file them (``end_at`` respected).  For pictures of the future, not for the tick.
    """
    decision = decide(schedule, last_run_at, now=now, anchor=now, tz=tz, policy=policy, spacing=False)
    runs: list[datetime] = []
    if decision.due:
        runs.append(now)
    slot = decision.next_slot
    try:
        while slot is not None and len(runs) < limit:
            at = policy.runs_at(slot)
            if at > until:
                break
            runs.append(max(at, now))
            slot = _following(schedule, slot, tz, policy)
    except OverflowError:  # past datetime.max: there is no later run
        pass
    return runs


def _after(schedule: Any, slot: datetime, tz: tzinfo | None, policy: Policy, *, due: bool) -> Decision:
    following = _following(schedule, slot, tz, policy)
    wake = None if following is None else policy.runs_at(following)
    return Decision(due, slot if due else None, wake, following)


def _following(schedule: Any, slot: datetime, tz: tzinfo | None, policy: Policy) -> datetime | None:
    """The slot after ``slot`` that may still run (not after ``end_at``); None when there is none."""
    following = _next_slot(schedule, slot, tz)
    if following is not None and policy.end_at is not None and following > policy.end_at:
        return None
    return following


def _merges(slot: datetime, following: datetime, now: datetime, policy: Policy) -> bool:
    """The spacing rule: a run of ``slot`` now, more than half a period late, merges into ``following``.

    Run now, it would be less than half a period before the next slot's run.
    """
    period = (following - slot).total_seconds()
    late = (now - policy.runs_at(slot)).total_seconds()
    return late * 2 > period


#: A score read back from Redis may differ from the instant it was written from by float rounding.
_FLOOR_TOLERANCE = timedelta(milliseconds=1)
#: Slots stepped over at most to find the first one running at or after a floor (jitter >> period).
_FLOOR_STEPS = 10_000


def _first_running_from(
    schedule: Any, first: datetime, floor: datetime, tz: tzinfo | None, policy: Policy
) -> datetime | None:
    """The first slot, ``first`` or later, whose run time (jitter included) is not before ``floor``."""
    target = floor - _FLOOR_TOLERANCE
    if policy.runs_at(first) >= target:
        return first
    start = target - timedelta(seconds=policy.jitter)
    slot: datetime | None = first if start <= first else _first_slot_from(schedule, first, start, tz)
    for _ in range(_FLOOR_STEPS):
        if slot is None or policy.runs_at(slot) >= target:
            return slot
        slot = _next_slot(schedule, slot, tz)
    return slot


def _next_slot(schedule: Any, slot: datetime, tz: tzinfo | None) -> datetime | None:
    if isinstance(schedule, interval_schedule):
        every: timedelta = schedule.run_every  # celery is untyped
        return slot + every
    return next_occurrence(schedule, slot, tz=tz)


def _first_slot_from(schedule: Any, first: datetime, start: datetime, tz: tzinfo | None) -> datetime | None:
    """The first slot at or after ``start`` on the grid (or calendar) that ``first`` belongs to."""
    if isinstance(schedule, interval_schedule):
        every = schedule.run_every.total_seconds()
        steps = math.ceil((start - first).total_seconds() / every)
        return first + timedelta(seconds=steps * every)
    return next_occurrence(schedule, start, tz=tz, inclusive=True)


def _newest_slot(schedule: Any, first: datetime, now: datetime, tz: tzinfo | None, policy: Policy) -> datetime:
    """The newest slot whose run time has come (not after ``end_at``); at least ``first``."""
    limit = now if policy.end_at is None else min(now, policy.end_at)
    if isinstance(schedule, interval_schedule):
        every = schedule.run_every.total_seconds()
        newest = first + timedelta(seconds=max(0, math.floor((limit - first).total_seconds() / every)) * every)
        if newest > first and policy.runs_at(newest) > now:
            newest -= schedule.run_every
        return newest
    latest = previous_occurrence(schedule, limit, tz=tz)
    if latest is None or latest < first:
        return first
    if latest > first and policy.runs_at(latest) > now:
        earlier = previous_occurrence(schedule, latest, tz=tz, inclusive=False)
        latest = first if earlier is None or earlier < first else earlier
    return latest


def _oldest_to_run(schedule: Any, first: datetime, newest: datetime, tz: tzinfo | None, limit: int) -> datetime:
    """``catch_up: all``: the oldest missed slot, but no more than ``limit`` slots back from the newest."""
    if isinstance(schedule, interval_schedule):
        every = schedule.run_every.total_seconds()
        missed = math.floor((newest - first).total_seconds() / every) + 1
        if missed <= limit:
            return first
        return newest - timedelta(seconds=(limit - 1) * every)
    slot = newest
    for _ in range(max(0, limit - 1)):
        earlier = previous_occurrence(schedule, slot, tz=tz, inclusive=False)
        if earlier is None or earlier < first:
            return slot if earlier is None else first
        slot = earlier
    return slot


def first_due(
    schedule: Any, last_run_at: datetime | None, *, anchor: datetime, tz: tzinfo | None = None
) -> datetime | None | Decision:
    """The first slot not yet run: may lie in the past (overdue); None when there is none.

    A ``last_run_at`` before 1970 (down to ``datetime.min``) means "due now" (the epoch, a score the tick
    fetches); a slot past ``datetime.max`` means none.
    """
    if last_run_at is not None and last_run_at.tzinfo is None:
        last_run_at = last_run_at.replace(tzinfo=UTC)  # naive = UTC, as celery-redbeat reads it
    if last_run_at is not None and last_run_at < _EPOCH:
        if isinstance(schedule, interval_schedule):
            return _EPOCH
        if not isinstance(schedule, (crontab, rrule)):
            return _generic_decision(schedule, last_run_at)
        last_run_at = _EPOCH - timedelta(microseconds=1)  # the epoch itself may be a slot
    try:
        return _first_due(schedule, last_run_at, anchor=anchor, tz=tz)
    except OverflowError:
        return None


def _first_due(
    schedule: Any, last_run_at: datetime | None, *, anchor: datetime, tz: tzinfo | None = None
) -> datetime | None | Decision:
    if isinstance(schedule, interval_schedule):
        every = schedule.run_every.total_seconds()
        if not every > 0:
            raise ValueError(f"interval must be positive, not {every!r} seconds")
        if last_run_at is None:
            return anchor
        run_every: timedelta = schedule.run_every  # celery is untyped
        if schedule.relative:
            # celery rounds the *end* (last run + interval) down to the interval's
            # resolution; rounding the start instead differs for e.g. 90 minutes.
            left: timedelta = remaining(last_run_at, run_every, now=last_run_at, relative=True)
            return last_run_at + left
        return last_run_at + run_every
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
    def of(cls, cron: crontab) -> _CronSets:
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
