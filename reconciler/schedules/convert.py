"""Manifest schedule <-> celery-redbeat ``definition``, both ways.

:func:`manifest_to_entry` turns one (defaults-merged, schema-valid) manifest
schedule into the canonical ``definition`` celery-redbeat 2.4.2 reads, plus
our extensions (``ext``). Canonical means that equal schedules give equal
definitions whatever their spelling: ``every: 1m`` == ``every: 60``, rrule
lists sorted. Crontab fields are the exception: they are stored as written
(:mod:`reconciler.schedules.cron`), because celery-redbeat's repr, Flower and
``status`` show them; :func:`same_times` and :func:`respellings` compare them
by what they match.

:func:`entry_to_manifest` is the inverse used by ``export``: the shortest
natural manifest (``every: 30s``, ``cron: "*/5 * * * *"``) whose definition is
the one given. manifest -> definition -> manifest -> definition is the
identity on definitions.
"""

from __future__ import annotations

import calendar
import functools
import math
import re
import zoneinfo
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeGuard

from dateutil import rrule as du

from reconciler.core.errors import CronError, DurationError, FieldError, Inexpressible, Unrunnable
from reconciler.schedules import cron, duration, runnable
from redbeat.schedules import NTH_WEEKDAYS_EXT, rule_weekdays

FREQS = ("yearly", "monthly", "weekly", "daily", "hourly", "minutely", "secondly")
WEEKDAYS = ("mo", "tu", "we", "th", "fr", "sa", "su")
RRULE_LISTS = (
    "bysetpos", "bymonth", "bymonthday", "byyearday", "byeaster", "byweekno",
    "byweekday", "byhour", "byminute", "bysecond",
)  # fmt: skip
KINDS = ("cron", "crontab", "every", "rrule", "at")
CATCH_UP = ("skip", "once", "all")
#: Extension fields of a schedule, stored in ``ext`` (celery-redbeat never reads it).
EXT_FIELDS = ("catch_up", "catch_up_limit", "starting_deadline", "jitter", "start_at", "end_at")
#: The shortest ``every``: beat makes a Redis round trip and a broker send per run, so a
#: shorter interval only measures how fast beat can loop (0.5 ms gave ~950 sends/s).
MIN_INTERVAL = 0.1
MIN_INTERVAL_TEXT = "100ms"
#: Beat steps back through at most this many missed slots (catch_up: all), one per tick.
MAX_CATCH_UP_LIMIT = 1000
#: rrule ``interval`` above this cannot be searched for a first occurrence within datetime's range.
MAX_RRULE_INTERVAL = 1000
#: byeaster offsets that stay in Easter's year whatever the year (Easter is day 80..115, from 0, of a year).
EASTER_OFFSETS = (-80, 250)
#: The latest year of any datetime field: beat adds intervals to it, and datetime ends at 9999.
MAX_YEAR = 9000


# --- manifest -> definition -----------------------------------------------------


_PLAIN = frozenset({str, bool, int, type(None)})  # what YAML scalars give, bar floats: always JSON


def _json_value(value: Any, path: tuple[str | int, ...]) -> None:
    """Raise FieldError unless ``value`` encodes to JSON and decodes back unchanged."""
    kind = type(value)
    if kind in _PLAIN:
        return
    # Lists and mappings of plain scalars (most args, kwargs and options) without a call per item.
    if kind is list and all(type(item) in _PLAIN for item in value):
        return
    if kind is dict and all(type(k) is str and type(v) in _PLAIN for k, v in value.items()):
        return
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FieldError(path, f"{value!r} cannot be encoded as JSON")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _json_value(item, (*path, index))
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise FieldError(path, f"key {key!r} is not a string; JSON object keys must be strings (quote it)")
            _json_value(item, (*path, key))
        return
    raise FieldError(path, f"{type(value).__name__} value cannot be encoded as JSON")


@functools.cache
def check_timezone(name: str) -> None:
    """Raise FieldError unless ``name`` is a known IANA time zone."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        import difflib

        close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
        hint = f"did you mean '{close[0]}'?" if close else None
        raise FieldError(("timezone",), f"unknown time zone {name!r}", hint) from None


def _parse_datetime(path: tuple[str | int, ...], text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError as exc:
        raise FieldError(path, f"{text!r} is not a valid datetime: {exc}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise FieldError(path, f"{text!r} needs a UTC offset, e.g. +01:00 or Z")
    if moment.year > MAX_YEAR:
        raise FieldError(path, f"{text!r} is after the year {MAX_YEAR}, the latest beat can compute with")
    try:
        moment.astimezone(timezone.utc)  # stored as UTC seconds: 0001-01-01T00:00+14:00 is before datetime's start
    except OverflowError:
        raise FieldError(path, f"{text!r} is before 0001-01-01T00:00:00Z, the earliest datetime there is") from None
    return moment


def _offset_minutes(moment: datetime) -> float:
    offset = moment.utcoffset()
    assert offset is not None
    return offset.total_seconds() / 60.0


def _int_list(value: Any) -> list[int] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return sorted({int(i) for i in items})


def _weekday(path: tuple[str | int, ...], item: Any) -> tuple[int, int | None]:
    if isinstance(item, int):
        return item, None
    text = str(item).lower()
    n_text, day = text[:-2], text[-2:]
    n = int(n_text) if n_text not in ("", "+", "-") else None
    if n == 0 or day not in WEEKDAYS:
        raise FieldError(path, f"{item!r} is not a weekday")
    return WEEKDAYS.index(day), n


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _rrule_weekdays(spec: Mapping[str, Any]) -> tuple[list[int] | None, list[str] | None]:
    """The plain weekdays of the celery-redbeat encoding, and the RFC 5545 codes when any is numbered."""
    if "byweekday" not in spec:
        return None, None
    path = ("rrule", "byweekday")
    raw = spec["byweekday"] if isinstance(spec["byweekday"], list) else [spec["byweekday"]]
    parsed = [_weekday(path, item) for item in raw]
    weekdays = sorted({day for day, _ in parsed})
    numbered = [item for item, (_, n) in zip(raw, parsed, strict=True) if n is not None]
    if not numbered:
        return weekdays, None
    if spec["freq"] not in ("monthly", "yearly"):
        # dateutil (beat) reads "-1fr" in a weekly or daily rule as every Friday; RFC 5545 forbids it.
        raise FieldError(
            path,
            f"{numbered[0]!r}: a numbered weekday needs freq monthly or yearly "
            f"(with freq {spec['freq']} it would run on every such weekday)",
        )
    if spec["freq"] == "monthly":
        # A month has at most 5 of a weekday; dateutil raises IndexError on 8 to 53 (6, 7 and -6 to -53 never fire).
        beyond = [item for item, (_, n) in zip(raw, parsed, strict=True) if n is not None and abs(n) > 5]
        if beyond:
            raise FieldError(
                path,
                f"{beyond[0]!r}: with freq monthly a numbered weekday is 1 to 5 or -1 to -5 "
                "(a month has at most 5 of each weekday)",
            )
    codes = [
        WEEKDAYS[day].upper() if n is None else f"{n:+d}{WEEKDAYS[day].upper()}"
        for day, n in sorted(set(parsed), key=lambda p: (p[0], p[1] or 0))
    ]
    return weekdays, codes


def _rrule(spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The celery-redbeat rrule encoding of ``spec``, and its extensions."""
    base = ("rrule",)
    ext: dict[str, Any] = {}
    dtstart = _parse_datetime((*base, "dtstart"), spec["dtstart"])
    until = _parse_datetime((*base, "until"), spec["until"]) if "until" in spec else None
    lists = {key: _int_list(spec.get(key)) for key in RRULE_LISTS if key != "byweekday"}
    weekdays, nth = _rrule_weekdays(spec)
    if nth:
        ext[NTH_WEEKDAYS_EXT] = nth
    if lists["bymonthday"] and 0 in lists["bymonthday"]:
        raise FieldError((*base, "bymonthday"), "day 0 does not exist; use 1..31, or -1..-31 from the end")
    if until is not None and "count" in spec:
        raise FieldError((*base, "until"), "count and until cannot both be set (RFC 5545): choose one")
    if until is not None and until < dtstart:
        raise FieldError(
            (*base, "until"), f"until {spec['until']!r} is before dtstart {spec['dtstart']!r}: the rule never fires"
        )
    if (
        lists["bymonthday"]
        and lists["bymonth"]
        and not any(abs(d) <= _MONTH_DAYS[m - 1] for m in lists["bymonth"] for d in lists["bymonthday"])
    ):
        raise FieldError((*base, "bymonthday"), "no month in bymonth has these days: the rule never fires")
    easter = [d for d in lists["byeaster"] or [] if not EASTER_OFFSETS[0] <= d <= EASTER_OFFSETS[1]]
    if easter:
        raise FieldError(
            (*base, "byeaster"),
            f"{easter[0]} days from Easter can leave Easter's year; use {EASTER_OFFSETS[0]}..{EASTER_OFFSETS[1]} "
            "(dateutil, which beat runs rules with, fails or picks a wrong day otherwise)",
        )
    if int(spec.get("interval", 1)) > MAX_RRULE_INTERVAL:
        raise FieldError(
            (*base, "interval"), f"interval {spec['interval']} is above {MAX_RRULE_INTERVAL}, the largest allowed"
        )
    schedule: dict[str, Any] = {
        "__type__": "rrule",
        "freq": FREQS.index(spec["freq"]),
        "interval": int(spec.get("interval", 1)),
        "wkst": WEEKDAYS.index(spec["wkst"]) if "wkst" in spec else None,
        "count": int(spec["count"]) if "count" in spec else None,
    }
    for key in RRULE_LISTS:
        schedule[key] = weekdays if key == "byweekday" else lists[key]
    schedule["dtstart"] = calendar.timegm(dtstart.utctimetuple())
    schedule["dtstart_tz"] = _offset_minutes(dtstart)
    if until is not None:
        schedule["until"] = calendar.timegm(until.utctimetuple())
        schedule["until_tz"] = _offset_minutes(until)
    _check_fires(schedule, ext, dtstart, until)
    return schedule, ext


def _check_fires(
    schedule: Mapping[str, Any], ext: Mapping[str, Any], dtstart: datetime, until: datetime | None
) -> None:
    # The Gregorian calendar repeats every 400 years; with the interval that
    # bounds how far the first occurrence can be from dtstart.
    horizon_years = 400 * max(1, schedule["interval"]) if schedule["freq"] <= 1 else 8
    # ... but never past the end of datetime (a yearly rule with interval 20 would reach the year 10026).
    limit = dtstart + min(
        timedelta(days=366 * horizon_years), datetime.max.replace(tzinfo=timezone.utc) - dtstart - timedelta(days=2)
    )
    if until is not None:
        limit = min(limit, until)
    weekdays: Any = schedule["byweekday"]
    if NTH_WEEKDAYS_EXT in ext:  # as beat runs them (dateutil alone intersects "mo" with "-1fr")
        weekdays = rule_weekdays(schedule["freq"], schedule["bymonth"], ext[NTH_WEEKDAYS_EXT])
    try:
        rule = du.rrule(
            schedule["freq"],
            dtstart=dtstart,
            interval=schedule["interval"],
            wkst=schedule["wkst"],
            until=limit,  # the first occurrence does not depend on count
            bysetpos=schedule["bysetpos"],
            bymonth=schedule["bymonth"],
            bymonthday=schedule["bymonthday"],
            byyearday=schedule["byyearday"],
            byeaster=schedule["byeaster"],
            byweekno=schedule["byweekno"],
            byweekday=weekdays,
            byhour=schedule["byhour"],
            byminute=schedule["byminute"],
            bysecond=schedule["bysecond"],
        )
        first = next(iter(rule), None)
    except ValueError as exc:
        raise FieldError(("rrule",), f"invalid rrule: {exc}") from None
    if first is None:
        raise FieldError(("rrule",), "the rule never fires")


def _schedule(schedule: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    kinds = [k for k in KINDS if k in schedule]
    if len(kinds) != 1:
        raise FieldError((), f"a schedule needs exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    if kind == "every":
        try:
            seconds = duration.parse_duration(schedule["every"])
        except DurationError as exc:
            raise FieldError(("every",), str(exc)) from None
        if seconds < MIN_INTERVAL:
            raise FieldError(
                ("every",),
                f"{schedule['every']!r} is shorter than {MIN_INTERVAL_TEXT}, the shortest interval",
                "beat sends one message per run; a faster task belongs in a worker loop",
            )
        return {"__type__": "interval", "every": seconds, "relative": bool(schedule.get("relative", False))}, {}
    if kind == "cron":
        text = schedule["cron"]
        try:
            spec = cron.parse_cron(text)
        except CronError as exc:
            raise FieldError(("cron",), f"{text!r}: {exc}") from None
        return {"__type__": "crontab", **spec.celery_fields()}, {}
    if kind == "crontab":
        fields = schedule["crontab"]
        stored = {}
        for name in cron.CELERY_FIELDS:
            try:
                stored[name] = cron.stored_field(name, fields.get(name, "*"))
            except CronError as exc:
                raise FieldError(("crontab", name), f"{fields.get(name)!r}: {exc}") from None
        return {"__type__": "crontab", **stored}, {}
    if kind == "at":
        return _one_off(schedule["at"])
    return _rrule(schedule["rrule"])


def _one_off(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``at:`` as celery-redbeat can run it too: an rrule whose only occurrence is that instant."""
    moment = _parse_datetime(("at",), text)
    if moment.microsecond:
        raise FieldError(("at",), f"{text!r}: whole seconds only")
    schedule: dict[str, Any] = {"__type__": "rrule", "freq": 0, "interval": 1, "wkst": None, "count": 1}
    for key in RRULE_LISTS:
        schedule[key] = None
    schedule["dtstart"] = calendar.timegm(moment.utctimetuple())
    schedule["dtstart_tz"] = _offset_minutes(moment)
    return schedule, {}


def _is_one_off(schedule: Mapping[str, Any]) -> bool:
    return (
        schedule.get("count") == 1
        and schedule.get("freq") == 0
        and schedule.get("interval", 1) == 1
        and schedule.get("until") is None
        and all(schedule.get(key) is None for key in RRULE_LISTS)
    )


def _extensions(schedule: Mapping[str, Any], sched: Mapping[str, Any]) -> dict[str, Any]:
    """The scheduling extensions of a manifest schedule, validated, as stored in ``ext``."""
    ext: dict[str, Any] = {}
    policy = schedule.get("catch_up", "once")
    if policy not in CATCH_UP:
        raise FieldError(("catch_up",), f"{policy!r} is not one of {', '.join(CATCH_UP)}")
    if policy != "once":
        ext["catch_up"] = policy
    if "catch_up_limit" in schedule:
        if policy != "all":
            raise FieldError(("catch_up_limit",), "catch_up_limit only applies with catch_up: all")
        ext["catch_up_limit"] = int(schedule["catch_up_limit"])
        if ext["catch_up_limit"] > MAX_CATCH_UP_LIMIT:
            raise FieldError(
                ("catch_up_limit",), f"{ext['catch_up_limit']} is above {MAX_CATCH_UP_LIMIT}, the largest allowed"
            )
    for key in ("starting_deadline", "jitter"):
        # jitter: 0s (or null) turns off a jitter set in the group's defaults.
        if key in schedule and not (key == "jitter" and schedule[key] is None):
            try:
                seconds = duration.parse_duration(schedule[key], zero=key == "jitter")
            except DurationError as exc:
                raise FieldError((key,), str(exc)) from None
            if seconds:
                ext[key] = seconds
    if "jitter" in ext and sched["__type__"] == "interval" and ext["jitter"] >= sched["every"]:
        raise FieldError(
            ("jitter",), f"jitter {schedule['jitter']!r} must be shorter than the interval ({sched['every']:g}s)"
        )
    window = {}
    for key in ("start_at", "end_at"):
        if key in schedule:
            moment = _parse_datetime((key,), schedule[key])
            window[key] = moment
            ext[key] = moment.isoformat()
    if len(window) == 2 and window["end_at"] <= window["start_at"]:
        raise FieldError(("end_at",), f"end_at {schedule['end_at']!r} is not after start_at {schedule['start_at']!r}")
    return ext


#: django-celery-beat's limit; a name is a Redis key and shows in every diff and log line.
MAX_NAME_LENGTH = 200
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _check_name(name: str) -> None:
    """Names reach terminals and CI logs: no control characters (escape sequences, forged lines), bounded length."""
    if len(name) > MAX_NAME_LENGTH:
        raise FieldError(("name",), f"name is {len(name)} characters long; at most {MAX_NAME_LENGTH}")
    bad = _CONTROL.search(name)
    if bad:
        raise FieldError(("name",), f"name {name[:60]!r} contains the control character {bad.group()!r}")


def _check_runnable(schedule: Mapping[str, Any], sched: Mapping[str, Any], ext: Mapping[str, Any]) -> None:
    """What beat and Celery compute later, computed now: a schedule that never fires, an option Celery cannot send."""
    now = datetime.now(timezone.utc)
    try:
        if sched["__type__"] == "crontab":
            fields = {f: sched[f] for f in cron.CELERY_FIELDS}
            runnable.check_crontab_fires(fields, ext.get("timezone"), now)
        runnable.check_options(schedule.get("options") or {}, now)
    except Unrunnable as exc:
        kind = "cron" if "cron" in schedule else "crontab"
        path = ("options", exc.key) if exc.key is not None else (kind,)
        raise FieldError(path, exc.message) from None


def manifest_to_entry(schedule: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(definition, ext) of one defaults-merged manifest schedule; raises FieldError.

    ``ext`` is None when the schedule uses no extension; its keys are sorted.
    """
    _check_name(schedule["name"])
    for key in ("args", "kwargs", "options"):
        if key in schedule:
            _json_value(schedule[key], (key,))
    sched, ext = _schedule(schedule)
    ext.update(_extensions(schedule, sched))
    if "timezone" in schedule:
        if sched["__type__"] == "interval":
            raise FieldError(("timezone",), "timezone has no effect on an 'every' schedule; remove it")
        if "at" in schedule:
            raise FieldError(
                ("timezone",), "timezone has no effect on a one-off 'at' (it carries its own offset); remove it"
            )
        check_timezone(schedule["timezone"])
        ext["timezone"] = schedule["timezone"]
    _check_runnable(schedule, sched, ext)
    definition = {
        "name": schedule["name"],
        "task": schedule["task"],
        "args": list(schedule.get("args", [])),
        "kwargs": dict(schedule.get("kwargs", {})),
        "options": dict(schedule.get("options", {})),
        "schedule": sched,
        "enabled": bool(schedule.get("enabled", True)),
    }
    return definition, ({k: ext[k] for k in sorted(ext)} or None)


# --- definition -> manifest -----------------------------------------------------


def _iso(epoch: int, offset_minutes: float) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    return datetime.fromtimestamp(epoch, zone).isoformat()


def _rrule_manifest(schedule: Mapping[str, Any], ext: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"freq": FREQS[schedule["freq"]]}
    if schedule.get("interval", 1) != 1:
        out["interval"] = schedule["interval"]
    if schedule.get("count") is not None:
        out["count"] = schedule["count"]
    if schedule.get("wkst") is not None:
        out["wkst"] = WEEKDAYS[schedule["wkst"]]
    for key in RRULE_LISTS:
        value = schedule.get(key)
        if value is None:
            continue
        if key == "byweekday":
            if NTH_WEEKDAYS_EXT in ext and schedule["freq"] <= FREQS.index("monthly"):
                out[key] = [w.lower().lstrip("+") for w in ext[NTH_WEEKDAYS_EXT]]
            else:
                out[key] = [WEEKDAYS[d] for d in value]
        else:
            out[key] = list(value)
    out["dtstart"] = _iso(schedule["dtstart"], schedule.get("dtstart_tz", 0.0))
    if schedule.get("until") is not None:
        out["until"] = _iso(schedule["until"], schedule.get("until_tz", 0.0))
    return out


def _crontab_text(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(str(item) for item in sorted(value) if not isinstance(item, bool))
    return str(value)


def crontab_fields(schedule: Mapping[str, Any]) -> dict[str, str]:
    """The five fields of a stored crontab schedule as text (celery-redbeat stores what was given: "0", 0, [3, 9])."""
    return {name: _crontab_text(schedule.get(name, "*")) for name in cron.CELERY_FIELDS}


def _crontab_manifest(stored: Mapping[str, str]) -> dict[str, Any]:
    """``{"cron": ...}`` in the stored spelling, or ``{"crontab": ...}`` when cron would read it otherwise.

    A field Celery reads only by accident (``satxyz``) is written as what Celery reads (``6``).
    """
    fields = {name: cron.exported_field(name, text) for name, text in stored.items()}
    try:
        spec = cron.parse_crontab(fields)
    except CronError:
        return {"crontab": {name: text for name, text in fields.items() if text != "*"}}
    text = cron.cron_string(spec)
    if text is not None:
        return {"cron": text}
    return {"crontab": {name: text for name, text in spec.celery_fields().items() if text != "*"}}


def _is_crontab(schedule: object) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(schedule, Mapping) and schedule.get("__type__") == "crontab"


def same_times(old: object, new: object) -> bool:
    """Whether two stored schedules fire at the same times: equal, or crontabs whose fields match the same values.

    Either may be anything read from Redis; what is not a crontab is compared as it is.
    """
    if old == new:
        return True
    if _is_crontab(old) and _is_crontab(new):
        return cron.same_times(crontab_fields(old), crontab_fields(new))
    return False


def respellings(old: object, new: object) -> list[tuple[str, str, str]]:
    """(field, old text, new text) of each crontab field spelled differently in two schedules with the same times."""
    if old == new or not (_is_crontab(old) and _is_crontab(new) and same_times(old, new)):
        return []
    before, after = crontab_fields(old), crontab_fields(new)
    return [(name, before[name], after[name]) for name in cron.CELERY_FIELDS if before[name] != after[name]]


# --- what entry_to_manifest reads: a definition from Redis may be anything --------------------------------------

#: Epoch seconds datetime can show in any UTC offset: its years 1 to 9999, a day inside either end.
_EPOCHS = (-62_135_596_800 + 86_400, 253_402_300_799 - 86_400)


def _is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number (not a boolean) that float() takes exactly enough: finite, below 10**15."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -1e15 < value < 1e15


def _is_index(value: object, size: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size


def _is_epoch(value: object) -> bool:
    return _is_number(value) and _EPOCHS[0] <= value <= _EPOCHS[1]


def _is_offset(value: object) -> bool:
    """Minutes east of UTC, as a fixed offset takes them (less than a day)."""
    return _is_number(value) and abs(value) < 1440


def _is_list_of(value: object, check: Any) -> bool:
    return isinstance(value, list) and all(check(item) for item in value)


def _crontab_shape(schedule: Mapping[str, Any], ext: Mapping[str, Any]) -> str | None:
    for name in cron.CELERY_FIELDS:
        value = schedule.get(name, "*")
        # A list is sorted into text: all numbers or all strings (celery-redbeat stores what it was given).
        if isinstance(value, list) and not (_is_list_of(value, _is_int) or _is_list_of(value, _is_str)):
            return f"crontab field {name} is a list of mixed values"
    return None  # any other value is read as its text, which validate refuses if Celery does


def _rrule_shape(schedule: Mapping[str, Any], ext: Mapping[str, Any]) -> str | None:
    if not _is_index(schedule.get("freq"), len(FREQS)):
        return "rrule freq is not one of its 7 numbers"
    if not _is_epoch(schedule.get("dtstart")) or not _is_offset(schedule.get("dtstart_tz", 0)):
        return "rrule dtstart is not epoch seconds with an offset in minutes"
    if schedule.get("until") is not None and not (
        _is_epoch(schedule["until"]) and _is_offset(schedule.get("until_tz", 0))
    ):
        return "rrule until is not epoch seconds with an offset in minutes"
    if schedule.get("wkst") is not None and not _is_index(schedule["wkst"], len(WEEKDAYS)):
        return "rrule wkst is not a weekday number"
    for key in RRULE_LISTS:
        day = functools.partial(_is_index, size=len(WEEKDAYS)) if key == "byweekday" else _is_int
        if schedule.get(key) is not None and not _is_list_of(schedule[key], day):
            return f"rrule {key} is not a list of numbers"
    if NTH_WEEKDAYS_EXT in ext and not _is_list_of(ext[NTH_WEEKDAYS_EXT], _is_str):
        return f"ext {NTH_WEEKDAYS_EXT} is not a list of weekday codes"
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


_SHAPES: dict[object, Any] = {
    "interval": lambda schedule, ext: None if _is_number(schedule.get("every")) else "interval every is not a number",
    "crontab": _crontab_shape,
    "rrule": _rrule_shape,
}


def stored_problem(definition: object, ext: object) -> str | None:
    """Why :func:`entry_to_manifest` cannot read a definition and ``ext`` read from Redis, or None when it can."""
    if not isinstance(definition, Mapping) or not (ext is None or isinstance(ext, Mapping)):
        return "the definition or ext is not a JSON object"
    if not (isinstance(definition.get("name"), str) and isinstance(definition.get("task"), str)):
        return "the name or task is not a string"
    for key, kind in (("args", list), ("kwargs", Mapping), ("options", Mapping)):
        if definition.get(key) and not isinstance(definition[key], kind):
            return f"{key} is not a JSON {'array' if kind is list else 'object'}"
    ext = ext or {}
    unknown = sorted(set(ext) - {"timezone", NTH_WEEKDAYS_EXT, *EXT_FIELDS})
    if unknown:
        return f"unknown extension field(s) {', '.join(unknown)}"
    if any(key in ext and not _is_number(ext[key]) for key in ("starting_deadline", "jitter")):
        return "ext starting_deadline or jitter is not a number of seconds"
    schedule = definition.get("schedule")
    if not isinstance(schedule, Mapping):
        return "the schedule is not a JSON object"
    shape = _SHAPES.get(schedule.get("__type__"))
    if shape is None:
        return f"unknown schedule type {schedule.get('__type__')!r}"
    problem: str | None = shape(schedule, ext)
    return problem


def entry_to_manifest(definition: Mapping[str, Any], ext: Mapping[str, Any] | None) -> dict[str, Any]:
    """The shortest natural manifest schedule whose definition is ``definition``.

    Raises :class:`Inexpressible` for what the manifest format cannot express (:func:`stored_problem`);
    anything else it raises is a bug.
    """
    problem = stored_problem(definition, ext)
    if problem is not None:
        name = definition.get("name") if isinstance(definition, Mapping) else None
        raise Inexpressible(f"{problem} in entry {str(name)[:200]!r}")
    ext = dict(ext or {})
    out: dict[str, Any] = {"name": definition["name"], "task": definition["task"]}
    schedule = definition["schedule"]
    kind = schedule.get("__type__")
    if kind == "interval":
        every = float(schedule["every"])
        out["every"] = duration.format_duration(every) or (int(every) if every.is_integer() else every)
        if schedule.get("relative"):
            out["relative"] = True
    elif kind == "crontab":
        out.update(_crontab_manifest(crontab_fields(schedule)))
    elif kind == "rrule" and _is_one_off(schedule) and "rrule_byweekday" not in ext:
        out["at"] = _iso(schedule["dtstart"], schedule.get("dtstart_tz", 0.0))
    elif kind == "rrule":
        out["rrule"] = _rrule_manifest(schedule, ext)
    else:  # stored_problem() lets no other kind through
        raise AssertionError(f"unexpected schedule type {kind!r}")
    for key in ("args", "kwargs", "options"):
        if definition.get(key):
            out[key] = definition[key]
    if definition.get("enabled") is False:
        out["enabled"] = False
    if "timezone" in ext:
        out["timezone"] = ext["timezone"]
    for key in EXT_FIELDS:
        if key not in ext:
            continue
        value = ext[key]
        if key in ("starting_deadline", "jitter"):
            value = duration.format_duration(float(value)) or value
        out[key] = value
    return out
