"""Schedules and times in words: "At 02:30, Monday through Friday, Europe/Berlin", "in 5 min", "3 h ago".

Cron expressions are read by cron-descriptor (a well-kept library for exactly this) rather than by
rules of our own; intervals, one-offs and rrules are said from the manifest form of the entry.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timezone, tzinfo
from typing import Any

#: How a cron entry without a time zone is said: crontabs run in the beat app's zone, which Redis does not hold.
BEAT_ZONE = "beat's time zone"


@functools.lru_cache(maxsize=4096)
def cron_words(expression: str) -> str:
    """``30 2 * * 1-5`` -> ``At 02:30, Monday through Friday``; the expression itself when it cannot be read."""
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        return str(ExpressionDescriptor(expression, options).get_description())
    except Exception:  # cron-descriptor raises its own types (and others) for what it cannot read
        return f"cron {expression}"


def schedule_words(manifest: Mapping[str, Any]) -> str:
    """An entry's schedule (its manifest form, :func:`reconciler.schedules.convert.entry_to_manifest`) in words."""
    zone = manifest.get("timezone")
    if "cron" in manifest:
        return f"{cron_words(str(manifest['cron']))}, {zone or BEAT_ZONE}"
    if "every" in manifest:
        text = f"Every {manifest['every']}"
    elif "at" in manifest:
        text = f"Once, at {manifest['at']}"
    elif "crontab" in manifest:
        fields = " ".join(f"{key}={value}" for key, value in manifest["crontab"].items())
        return f"Crontab {fields}, {zone or BEAT_ZONE}"
    elif "rrule" in manifest:
        rule = manifest["rrule"]
        text = "Recurring: " + ", ".join(f"{key} {value}" for key, value in rule.items() if key != "dtstart")
    else:
        return "unknown schedule"
    return f"{text}, {zone}" if zone else text


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def relative(moment: datetime | None, now: datetime) -> str:
    """``in 5 min``, ``3.0 h ago``, ``now``; empty for None."""
    if moment is None:
        return ""
    delta = (moment - now).total_seconds()
    if abs(delta) < 1:
        return "now"
    return f"in {_span(delta)}" if delta > 0 else f"{_span(delta)} ago"


def duration(seconds: float | None) -> str:
    """A lease or a lag: ``4.2 s``, ``12 min``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f} s" if seconds >= 0.1 else f"{seconds * 1000:.0f} ms"
    return _span(seconds)


def parse_iso(text: Any) -> datetime | None:
    """An ISO time as the status rows hold them; None for anything else (a row's problem says why)."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _zone(name: Any) -> tzinfo:
    """The entry's zone by name; UTC for none or an unknown one (the row's problem says why)."""
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(str(name)) if name else timezone.utc
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError; a bad path a ValueError
        return timezone.utc


def compact_time(moment: datetime | None, zone: Any, now: datetime) -> str:
    """``Dec 4, 00:00 CET`` in the entry's zone: the time alone today, the year only when it is not this one,
    seconds only when they are not zero (an every-second entry); empty for None."""
    if moment is None:
        return ""
    local = moment.astimezone(_zone(zone))
    today = now.astimezone(local.tzinfo)
    clock = local.strftime("%H:%M:%S" if local.second else "%H:%M")
    abbreviation = local.strftime("%Z") or local.strftime("%z")
    if local.date() == today.date():
        return f"{clock} {abbreviation}"
    day = f"{local:%b} {local.day}" + (f" {local.year}" if local.year != today.year else "")
    return f"{day}, {clock} {abbreviation}"
