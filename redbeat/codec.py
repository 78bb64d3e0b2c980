"""Entry definition, run state and extensions <-> the JSON stored in Redis.

Byte-compatible with celery-redbeat 2.4.2 where it matters for reading:
``json.dumps`` with default separators, the definition keys in the order
name, task, args, kwargs, options, schedule, enabled, and the ``__type__``
tags of its ``RedBeatJSONEncoder`` (datetime, interval, crontab, rrule,
weekday).  celery-redbeat builds ``Entry(app=app, **definition, **meta)``, so
nothing of ours may appear in ``definition`` or ``meta``: extensions go into
the separate ``ext`` hash field (sorted-key JSON), which it never reads.

The first RedBeat releases let users write *flat* definitions by hand
(``{"name", "task", "__type__": "interval", "every": 5}`` or crontab fields
at top level); :func:`decode_definition` reads those too and returns the
modern shape, so the next save rewrites them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from celery.schedules import crontab
from celery.schedules import schedule as interval_schedule
from dateutil.rrule import weekday

from .epoch import from_timestamp
from .schedules import rrule

DEFINITION_FIELDS = ("name", "task", "args", "kwargs", "options", "schedule", "enabled")
CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
_TZ_CACHE: dict[Any, Any] = {}
_ZONE_JSON: dict[str, str] = {}  # a time zone's name -> its JSON string
_NO_KEY = object()
_MEMO_TYPES = ("interval", "crontab")
_PLAIN = (str, int, float, bool, type(None))
_DATETIME_FIELDS = frozenset(
    ("__type__", "year", "month", "day", "hour", "minute", "second", "microsecond", "timezone")
)


class CorruptEntryError(ValueError):
    """Stored JSON that cannot be turned into an entry; the message says why."""


def _zone(zone: Any) -> Any:
    try:
        return _TZ_CACHE[zone]
    except KeyError:
        pass
    if isinstance(zone, (int, float)) and not isinstance(zone, bool):
        tz: Any = timezone(timedelta(seconds=zone))
    elif isinstance(zone, str):
        tz = ZoneInfo(zone)
    else:
        raise CorruptEntryError(f"datetime timezone must be a name or seconds, not {zone!r}")
    _TZ_CACHE[zone] = tz
    return tz


def encode_tagged(obj: Any) -> Any:
    """The ``__type__``-tagged JSON form of a datetime or schedule (celery-redbeat's branch order)."""
    if isinstance(obj, datetime):
        if obj.tzinfo is None:
            zone: Any = "UTC"
        elif hasattr(obj.tzinfo, "key"):
            zone = obj.tzinfo.key
        else:
            zone = obj.utcoffset().total_seconds()  # type: ignore[union-attr]
        return {
            "__type__": "datetime",
            "year": obj.year,
            "month": obj.month,
            "day": obj.day,
            "hour": obj.hour,
            "minute": obj.minute,
            "second": obj.second,
            "microsecond": obj.microsecond,
            "timezone": zone,
        }
    if isinstance(obj, crontab):
        return {
            "__type__": "crontab",
            "minute": obj._orig_minute,
            "hour": obj._orig_hour,
            "day_of_week": obj._orig_day_of_week,
            "day_of_month": obj._orig_day_of_month,
            "month_of_year": obj._orig_month_of_year,
        }
    if isinstance(obj, rrule):
        return obj.to_json()
    if isinstance(obj, weekday):
        return {"__type__": "weekday", "wkday": obj.weekday}
    if isinstance(obj, interval_schedule):
        return {
            "__type__": "interval",
            "every": obj.run_every.total_seconds(),
            "relative": bool(obj.relative),
        }
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def decode_tagged(d: dict[str, Any]) -> Any:
    """Inverse of :func:`encode_tagged`; an unknown ``__type__`` passes through as the dict."""
    kind = d.get("__type__")
    if kind is None:
        return d
    fields = {k: v for k, v in d.items() if k != "__type__"}
    try:
        if kind == "datetime":
            tz = _zone(fields.pop("timezone", "UTC"))
            return datetime(tzinfo=tz, **fields)
        if kind == "interval":
            return interval_schedule(run_every=fields["every"], relative=fields.get("relative", False))
        if kind == "crontab":
            return crontab(**fields)
        if kind == "weekday":
            return weekday(**fields)
        if kind == "rrule":
            for key, tz_key in (("dtstart", "dtstart_tz"), ("until", "until_tz")):
                tz_minutes = fields.pop(tz_key, 0)
                if fields.get(key) is not None:
                    fields[key] = from_timestamp(fields[key], tz_minutes)
            return rrule(**fields)
    except CorruptEntryError:
        raise
    except Exception as exc:
        raise CorruptEntryError(f"bad {kind!r} value {d!r}: {exc}") from exc
    return d


class RedBeatJSONEncoder(json.JSONEncoder):
    """celery-redbeat's encoder: datetimes and schedules as ``__type__``-tagged objects."""

    def default(self, obj: Any) -> Any:  # celery-redbeat's parameter name (json's is ``o``)
        return encode_tagged(obj)


class RedBeatJSONDecoder(json.JSONDecoder):
    """celery-redbeat's decoder: ``__type__``-tagged objects back into datetimes and schedules."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("object_hook", self.dict_to_object)
        super().__init__(*args, **kwargs)

    def dict_to_object(self, d: dict[str, Any]) -> Any:
        """One decoded JSON object: a tagged one as its value, any other as it is (a subclass may extend it)."""
        return decode_tagged(d)


_ENCODER = RedBeatJSONEncoder()
_DECODER = json.JSONDecoder()


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def encode_definition(
    *,
    name: str,
    task: str,
    args: Any,
    kwargs: Any,
    options: Any,
    schedule: Any,
    enabled: bool,
) -> str:
    return dumps(
        {
            "name": name,
            "task": task,
            "args": list(args) if isinstance(args, tuple) else args,
            "kwargs": kwargs,
            "options": options,
            "schedule": schedule,
            "enabled": enabled,
        }
    )


def _loads(raw: str | bytes, what: str) -> Any:
    if isinstance(raw, str):
        # The tick decodes two of these per due entry: the scanner alone skips json.loads' two regex
        # passes for surrounding whitespace.  Anything but a bare document takes json.loads' way.
        try:
            value, end = _DECODER.raw_decode(raw)
        except ValueError:
            pass
        else:
            if end == len(raw):
                return value
    try:
        return json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise CorruptEntryError(f"{what} is not valid JSON: {exc}") from exc


def _decode_nested(value: Any) -> Any:
    if isinstance(value, dict):
        return decode_tagged({k: _decode_nested(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_decode_nested(v) for v in value]
    return value


def _memo_schedule(value: Any, memo: dict[Any, Any]) -> Any:
    """``_decode_nested(value)``, taken from ``memo`` for an interval or crontab whose fields are plain values."""
    key = _schedule_key(value)
    if key is None:
        return _decode_nested(value)
    found = memo.get(key)
    if found is None:
        found = _decode_nested(value)
        if hasattr(found, "is_due"):
            memo[key] = found
    return found


def _schedule_key(value: Any) -> tuple[Any, ...] | None:
    """A hashable key of a schedule's JSON fields, typed (so 1, 1.0 and true differ); None when not memoised."""
    if not isinstance(value, dict) or value.get("__type__") not in _MEMO_TYPES:
        return None
    key = []
    for field, item in value.items():
        if type(item) not in _PLAIN:
            return None
        key.append((field, type(item), item))
    return tuple(key)


def _flat_schedule(data: Mapping[str, Any]) -> Any:
    """The schedule of a first-releases flat definition, or an error if it has none."""
    has_cron = any(field in data for field in CRONTAB_FIELDS)
    if "every" in data and not has_cron:
        every = data["every"]
        if isinstance(every, bool) or not isinstance(every, (int, float)) or every <= 0:
            raise CorruptEntryError(f"flat definition: 'every' must be a positive number, not {every!r}")
        return interval_schedule(run_every=float(every), relative=bool(data.get("relative", False)))
    if has_cron:
        # That README's own crontab example carries "__type__": "interval" and
        # writes a month range as "[1-12]": read what it plainly means.
        fields = {}
        for field in CRONTAB_FIELDS:
            value = data.get(field, "*")
            if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
                value = value[1:-1]
            fields[field] = str(value)
        try:
            return crontab(**fields)
        except Exception as exc:
            raise CorruptEntryError(f"flat definition: bad crontab {fields!r}: {exc}") from exc
    raise CorruptEntryError("definition has no schedule (neither 'schedule', 'every' nor crontab fields)")


def decode_definition(raw: str | bytes, schedules: dict[Any, Any] | None = None) -> dict[str, Any]:
    """A stored definition as a dict of the modern shape with a schedule object.

    Raises :class:`CorruptEntryError` for JSON that is not an entry: not an
    object, no task, a schedule that is not a schedule.  ``schedules``: a
    memo of interval and crontab schedules by their JSON fields, shared by
    the definitions decoded with it (building a crontab costs far more than
    decoding its JSON); the caller owns it and bounds its size.
    """
    data = _loads(raw, "definition")
    if not isinstance(data, dict):
        raise CorruptEntryError(f"definition must be a JSON object, not {type(data).__name__}")
    if "schedule" not in data:
        schedule = _flat_schedule(data)
    elif schedules is None:
        schedule = _decode_nested(data["schedule"])
    else:
        schedule = _memo_schedule(data["schedule"], schedules)
    if isinstance(schedule, dict):
        raise CorruptEntryError(f"unknown schedule type {schedule.get('__type__')!r}")
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool) and schedule > 0:
        schedule = interval_schedule(run_every=float(schedule))
    if not hasattr(schedule, "is_due"):
        raise CorruptEntryError(f"schedule must be a schedule object, not {schedule!r}")
    task = data.get("task")
    if not isinstance(task, str) or not task:
        raise CorruptEntryError(f"definition needs a task name, got {task!r}")
    # celery-redbeat stores an entry made without args as "args": null; keep it
    # so that a decoded definition encodes back to the same bytes.
    args = data.get("args")
    kwargs = data.get("kwargs") or {}
    options = data.get("options") or {}
    if args is not None and not isinstance(args, (list, tuple)):
        raise CorruptEntryError(f"args must be a list, not {type(args).__name__}")
    if not isinstance(kwargs, dict):
        raise CorruptEntryError(f"kwargs must be an object, not {type(kwargs).__name__}")
    if not isinstance(options, dict):
        raise CorruptEntryError(f"options must be an object, not {type(options).__name__}")
    enabled = data.get("enabled", True)
    return {
        "name": data.get("name"),
        "task": task,
        "args": None if args is None else _decode_nested(list(args)),
        "kwargs": _decode_nested(kwargs),
        "options": options,
        "schedule": schedule,
        "enabled": bool(enabled),
    }


def encode_meta(last_run_at: datetime | None, total_run_count: int | None = None) -> str:
    """The run state as celery-redbeat's ``json.dumps(meta, cls=RedBeatJSONEncoder)`` writes it, byte for byte.

    Beat writes one per run it claims, so the usual shape (an aware or naive datetime, an int count) is
    formatted directly; anything else goes through the encoder.  ``tests/unit/redbeat/test_codec.py``
    checks the two agree.
    """
    if type(last_run_at) is datetime and (total_run_count is None or type(total_run_count) is int):
        zone = _zone_json(last_run_at)
        if zone is not None:
            count = "" if total_run_count is None else f', "total_run_count": {total_run_count}'
            return f'{{"last_run_at": {_datetime_json(last_run_at, zone)}{count}}}'
    meta: dict[str, Any] = {"last_run_at": last_run_at}
    if total_run_count is not None:
        meta["total_run_count"] = total_run_count
    return dumps(meta)


def _zone_json(moment: datetime) -> str | None:
    """The JSON of ``encode_tagged(moment)["timezone"]``; None when only the encoder can say."""
    tz = moment.tzinfo
    if tz is None:
        return '"UTC"'
    key = getattr(tz, "key", _NO_KEY)
    if key is _NO_KEY:
        offset = moment.utcoffset()
        return None if offset is None else repr(offset.total_seconds())
    if not isinstance(key, str):
        return None
    cached = _ZONE_JSON.get(key)
    if cached is None:
        cached = _ZONE_JSON[key] = json.dumps(key)
    return cached


def _datetime_json(moment: datetime, zone: str) -> str:
    return (
        f'{{"__type__": "datetime", "year": {moment.year}, "month": {moment.month}, "day": {moment.day}, '
        f'"hour": {moment.hour}, "minute": {moment.minute}, "second": {moment.second}, '
        f'"microsecond": {moment.microsecond}, "timezone": {zone}}}'
    )


def decode_meta(raw: str | bytes | None) -> dict[str, Any]:
    """Run state: ``{"last_run_at": datetime | None, "total_run_count": int}``; no meta means never run."""
    if not raw:
        return {"last_run_at": None, "total_run_count": 0}
    data = _loads(raw, "meta")
    if not isinstance(data, dict):
        raise CorruptEntryError(f"meta must be a JSON object, not {type(data).__name__}")
    last = data.get("last_run_at")
    if isinstance(last, dict):
        last = _decode_datetime(last)
    if last is not None and not isinstance(last, datetime):
        raise CorruptEntryError(f"meta.last_run_at must be a datetime, not {last!r}")
    count = data.get("total_run_count") or 0
    if isinstance(count, bool) or not isinstance(count, int):
        raise CorruptEntryError(f"meta.total_run_count must be an integer, not {count!r}")
    return {"last_run_at": last, "total_run_count": count}


def _decode_datetime(d: dict[str, Any]) -> Any:
    """:func:`decode_tagged` for the datetime every meta holds, without its generic detour.

    Only a datetime with exactly the encoder's fields takes the short way; any other dict, and any
    value datetime() refuses, goes through :func:`decode_tagged`, which explains what is wrong.
    """
    if d.keys() != _DATETIME_FIELDS or d["__type__"] != "datetime":
        return decode_tagged(d)
    try:
        return datetime(d["year"], d["month"], d["day"], d["hour"], d["minute"], d["second"], d["microsecond"],
                        tzinfo=_zone(d["timezone"]))
    except Exception:
        return decode_tagged(d)  # it says what is wrong


def encode_ext(ext: Mapping[str, Any] | None) -> str | None:
    """Sorted-key JSON of our extensions, or None when there are none (the field is then absent)."""
    if not ext:
        return None
    return json.dumps(dict(ext), sort_keys=True, separators=(",", ":"))


def decode_ext(raw: str | bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    data = _loads(raw, "ext")
    if not isinstance(data, dict):
        raise CorruptEntryError(f"ext must be a JSON object, not {type(data).__name__}")
    return data
