"""UTC epoch seconds and offset minutes <-> datetimes: the time form celery-redbeat stores.

Below both :mod:`redbeat.codec` (which writes entries' JSON) and
:mod:`redbeat.schedules` (whose ``rrule`` writes its own ``dtstart``/``until``
this way), so neither imports the other for them.  celery-redbeat's code
imports them from ``redbeat.decoder`` and ``redbeat.schedulers``, which
re-export them.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone


def to_timestamp(dt: datetime) -> int:
    """Whole UTC epoch seconds, as celery-redbeat computes its scores."""
    return calendar.timegm(dt.utctimetuple())


def get_utcoffset_minutes(dt: datetime) -> float:
    """``dt``'s offset from UTC in minutes; 0 for a naive datetime (taken as UTC)."""
    offset = dt.utcoffset()
    return offset.total_seconds() / 60 if offset else 0


def from_timestamp(seconds: float, tz_minutes: float = 0) -> datetime:
    """An aware datetime for UTC epoch ``seconds``, in the fixed offset ``tz_minutes`` (UTC when 0)."""
    tz = timezone(timedelta(minutes=tz_minutes)) if tz_minutes else timezone.utc
    return datetime.fromtimestamp(seconds, tz=tz)
