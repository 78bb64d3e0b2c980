"""celery-redbeat's import path for the JSON codec and its time helpers (``redbeat.decoder``).

The standard-library and celery names below are imported here, unused, because celery-redbeat's
``decoder`` module had them at top level and code imports them from it.
"""

from __future__ import annotations

import calendar  # noqa: F401
import json  # noqa: F401
import zoneinfo  # noqa: F401
from datetime import datetime, timedelta, timezone  # noqa: F401

from celery.schedules import crontab, schedule  # noqa: F401
from dateutil.rrule import weekday  # noqa: F401

from .codec import (  # noqa: F401
    RedBeatJSONDecoder,
    RedBeatJSONEncoder,
    decode_tagged,
    encode_tagged,
)
from .epoch import from_timestamp, get_utcoffset_minutes, to_timestamp  # noqa: F401
from .schedules import rrule  # noqa: F401

__all__ = ["RedBeatJSONDecoder", "RedBeatJSONEncoder", "from_timestamp", "get_utcoffset_minutes", "to_timestamp"]
