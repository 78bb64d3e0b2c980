"""When entries run next: the exact next runs of one entry, and the runs of many in a window, fast.

Both follow beat's own rule (:func:`redbeat.timing.upcoming_runs`).  For the timeline of thousands of
entries, each entry starts from the next run its status row computed; the runs after it come from its
schedule's calendar, computed once per distinct (schedule, zone, end) and shared by every entry with the
same one (300 jobs at ``0 0 * * *`` cost one calendar).  Intervals are stepped arithmetically.  Entries
with jitter are computed one by one, as their offsets depend on their names.
"""

from __future__ import annotations

import bisect
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from redbeat import timing
from redbeat.codec import decode_definition
from redbeat.entry import entry_timezone

#: Errors a stored schedule may raise when computed (a bad zone, a date past year 9999, a bad value).
UNCOMPUTABLE = (OverflowError, ValueError, OSError, TypeError, KeyError, IndexError, ArithmeticError)


def next_runs(definition: str, ext: dict[str, Any] | None, last_run_at: datetime | None, name: str,
              now: datetime, *, count: int = 10, horizon: timedelta = timedelta(days=3660)) -> list[datetime]:
    """The entry's next ``count`` runs, in its zone, exactly as beat would run them (for the entry page)."""
    schedule = decode_definition(definition)["schedule"]
    zone = entry_timezone(ext)
    policy = timing.Policy.from_ext(ext, name)
    runs = timing.upcoming_runs(schedule, last_run_at, now=now, until=now + horizon, tz=zone, policy=policy,
                                limit=count)
    return [run.astimezone(zone or timezone.utc) for run in runs]


@dataclass(frozen=True, slots=True)
class Runs:
    """An entry's runs in a window (epoch seconds), and whether it runs more often than ``limit`` allowed."""

    times: list[float]
    dense: bool = False

    @property
    def rate(self) -> float:
        """Runs per second, for a dense entry spread evenly over the window."""
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / max(1e-9, self.times[-1] - self.times[0])


class Calendars:
    """The calendars of the crontab and rrule schedules met in one timeline, by (schedule, zone, end)."""

    def __init__(self, now: datetime, until: datetime, limit: int) -> None:
        self.now, self.until, self.limit = now, until, limit
        self._slots: dict[tuple[str, str, str], tuple[list[float], bool]] = {}

    def slots(self, schedule: dict[str, Any], ext: dict[str, Any]) -> tuple[list[float], bool]:
        """The schedule's slots after ``now`` up to ``until`` (at most ``limit``), and whether there are more."""
        key = (repr(sorted(schedule.items())), str(ext.get("timezone") or ""), str(ext.get("end_at") or ""))
        found = self._slots.get(key)
        if found is None:
            found = self._compute(schedule, ext)
            self._slots[key] = found
        return found

    def _compute(self, schedule_spec: dict[str, Any], ext: dict[str, Any]) -> tuple[list[float], bool]:
        probe = json.dumps({"name": "calendar", "task": "calendar", "schedule": schedule_spec})
        schedule = decode_definition(probe)["schedule"]
        policy = timing.Policy.from_ext({k: v for k, v in ext.items() if k == "end_at"})
        # "just ran at now": the calendar's slots strictly after now, whatever any entry's own state.
        runs = timing.upcoming_runs(schedule, self.now, now=self.now, until=self.until, tz=entry_timezone(ext),
                                    policy=policy, limit=self.limit + 1)
        times = [run.timestamp() for run in runs]
        return times[: self.limit], len(times) > self.limit


def window_runs(first: datetime, definition: dict[str, Any], ext: dict[str, Any] | None, name: str,
                calendars: Calendars, not_before: float | None = None) -> Runs:
    """The runs of one entry from its next run ``first`` up to the calendars' ``until``.

    ``not_before``: the end of a pause (runs before it do not happen).  Raises one of UNCOMPUTABLE for a
    schedule that cannot be computed (the caller shows that entry's problem instead).
    """
    ext = ext or {}
    until, limit = calendars.until.timestamp(), calendars.limit
    schedule = definition.get("schedule") or {}
    start = first.timestamp()
    cut_short = False
    if ext.get("jitter"):
        runs = timing.upcoming_runs(decode_definition(json.dumps(definition))["schedule"], None, now=first,
                                    until=calendars.until, tz=entry_timezone(ext),
                                    policy=timing.Policy.from_ext(ext, name), limit=limit + 1)
        times = [run.timestamp() for run in runs]
    elif schedule.get("__type__") == "interval":
        every = float(schedule["every"])
        if not math.isfinite(every) or every <= 0:
            raise ValueError(f"interval of {every!r} seconds")
        end = min(until, datetime.fromisoformat(ext["end_at"]).timestamp()) if ext.get("end_at") else until
        count = 0 if start > end else min(limit + 1, int((end - start) // every) + 1)
        times = [start + step * every for step in range(count)]
    else:
        slots, more = calendars.slots(schedule, ext)
        later = slots[bisect.bisect_right(slots, start):]
        times = [start, *later] if start <= until else []
        cut_short = more  # the calendar ran past ``limit`` slots: this entry is dense too
    if not_before is not None:
        times = [t for t in times if t >= not_before]
    return Runs(times[:limit], dense=cut_short or len(times) > limit)
