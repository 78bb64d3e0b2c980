"""Whether beat can run a schedule and send its task: the checks behind "a green validate means it runs".

Each check is the same computation beat or Celery does later, done once at
validate time, so that what validate accepts beat can run:

* :func:`check_crontab_fires`: the crontab built as beat builds it (recent
  Celery refuses ``0 0 30 2 *`` there, older Celery builds it and never fires),
  then its next occurrence found with beat's own search
  (``redbeat.timing.next_occurrence``).
* :func:`check_options`: the ``apply_async`` options Celery turns into numbers
  or datetimes when beat sends the task (``expires``, ``countdown``, the time
  limits). A value Celery cannot convert fails every send, so every run would
  be lost.

Each raises :class:`Unrunnable` with the path of the offending value (relative
to ``options`` for the options) and a message that says the rule.
"""

from __future__ import annotations

import functools
import math
import zoneinfo
from collections.abc import Mapping
from datetime import date, datetime, timezone
from typing import Any

from celery.schedules import crontab
from dateutil.parser import isoparse

from reconciler.core.errors import Unrunnable
from reconciler.schedules.cron import parse_field
from reconciler.schedules.duration import MAX_SECONDS, MAX_TEXT
from redbeat.timing import next_occurrence

# datetime.UTC is Python 3.11+; this package supports 3.10.
UTC = timezone.utc

#: ``options`` keys Celery reads as a number of seconds.
SECONDS_OPTIONS = ("countdown", "time_limit", "soft_time_limit")


def check_crontab_fires(fields: Mapping[str, str], zone: str | None, now: datetime) -> None:
    """Raise Unrunnable when beat finds no next occurrence of the crontab ``fields`` after ``now``."""
    if min(parse_field("day_of_month", fields["day_of_month"])) <= 28:
        # Every month has days 1-28, and each such date falls on every weekday within a few years:
        # it fires. Only days 29-31 can be missing, so only they need the (slower) search.
        return
    problem = _crontab_problem(tuple(sorted(fields.items())), zone, now.date())
    if problem is not None:
        raise Unrunnable(problem)


@functools.lru_cache(maxsize=1024)
def _crontab_problem(fields: tuple[tuple[str, str], ...], zone: str | None, today: date) -> str | None:
    """Why beat cannot run this crontab, or None; cached per day (many schedules share one spec)."""
    tz = zoneinfo.ZoneInfo(zone) if zone else UTC
    try:
        schedule = crontab(**dict(fields))
    except ValueError as exc:  # Celery >= 5.5 refuses a day that no named month has
        return f"this schedule never fires: Celery says {exc}"
    start = datetime(today.year, today.month, today.day, tzinfo=UTC)
    if next_occurrence(schedule, start, tz=tz, inclusive=True) is None:
        return "this schedule never fires (no such day in any month it names, within the 30 years beat looks ahead)"
    return None


def _seconds(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unrunnable(f"{value!r} is not a number of seconds", key)
    if not math.isfinite(value) or value < 0:
        raise Unrunnable(f"{value!r} must be a number of seconds >= 0", key)
    if value > MAX_SECONDS:
        raise Unrunnable(f"{value!r} seconds is longer than {MAX_TEXT}, the longest Celery can compute with", key)


def _expires_datetime(text: str, now: datetime) -> None:
    try:
        moment = isoparse(text.strip())
    except (ValueError, OverflowError):
        raise Unrunnable(
            f"{text!r} is neither a number of seconds nor an ISO 8601 datetime with a UTC offset "
            "(e.g. 3600, or \"2026-12-31T23:00:00+01:00\")",
            "expires",
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Unrunnable(f"{text!r} needs a UTC offset, e.g. +01:00 or Z (Celery would read it as UTC)", "expires")
    if moment <= now:
        raise Unrunnable(f"{text!r} has passed: every run would be discarded unstarted", "expires")


def check_options(options: Mapping[str, Any], now: datetime) -> None:
    """Raise Unrunnable for an option value Celery cannot turn into what it sends."""
    if "expires" in options:
        expires = options["expires"]
        if isinstance(expires, str):
            _expires_datetime(expires, now)
        else:
            _seconds("expires", expires)
    for key in SECONDS_OPTIONS:
        if key in options:
            _seconds(key, options[key])
