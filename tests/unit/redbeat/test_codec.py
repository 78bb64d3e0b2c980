"""redbeat.codec: celery-redbeat's JSON, byte for byte, and the first releases' flat format."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab, schedule
from dateutil.rrule import FR, MO, weekday
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redbeat import codec
from redbeat.decoder import RedBeatJSONDecoder, RedBeatJSONEncoder
from redbeat.schedules import rrule

GOLDEN = json.loads(
    (Path(__file__).resolve().parents[2] / "data" / "celery_redbeat_2.4.2" / "golden.json").read_text()
)
HASHES = GOLDEN["hashes"]
PREFIX = GOLDEN["prefix"]
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
PLUS2 = timezone(timedelta(hours=2))
UTC = timezone.utc
# golden "rrule-count-until" has count and until, as celery-redbeat lets users write it
COUNT_AND_UNTIL = "ignore:Using both 'count' and 'until':DeprecationWarning"
pytestmark = pytest.mark.filterwarnings(COUNT_AND_UNTIL)


def roundtrip(value):
    return json.loads(json.dumps(value, cls=RedBeatJSONEncoder), cls=RedBeatJSONDecoder)


# -- every tagged type round-trips -------------------------------------------------------------


@pytest.mark.parametrize(
    "value, zone",
    [
        (datetime(2026, 3, 29, 2, 30, 5, 123456, tzinfo=ZoneInfo("Europe/Berlin")), "Europe/Berlin"),
        (datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC")), "UTC"),
        (datetime(2026, 1, 1, 10, tzinfo=timezone(timedelta(hours=4))), 14400.0),
        (datetime(2026, 1, 1, 10, tzinfo=timezone(timedelta(hours=-5, minutes=-30))), -19800.0),
        (datetime(2026, 1, 1, 10, tzinfo=UTC), 0.0),
    ],
)
def test_datetime_round_trips_with_its_zone(value, zone):
    encoded = codec.encode_tagged(value)
    assert encoded == {
        "__type__": "datetime", "year": value.year, "month": value.month, "day": value.day,
        "hour": value.hour, "minute": value.minute, "second": value.second,
        "microsecond": value.microsecond, "timezone": zone,
    }
    back = roundtrip(value)
    assert back == value
    assert back.utcoffset() == value.utcoffset()


def test_naive_datetime_is_stored_as_utc():
    back = roundtrip(datetime(2026, 1, 1, 10, 0))
    assert back == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert back.tzinfo == ZoneInfo("UTC")


def test_datetime_without_timezone_field_is_utc():
    raw = '{"__type__": "datetime", "year": 2026, "month": 1, "day": 2, "hour": 3, "minute": 4, ' \
          '"second": 5, "microsecond": 6}'
    assert json.loads(raw, cls=RedBeatJSONDecoder) == datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    "value, encoded",
    [
        (schedule(30), {"__type__": "interval", "every": 30.0, "relative": False}),
        (schedule(0.5), {"__type__": "interval", "every": 0.5, "relative": False}),
        (schedule(timedelta(hours=1), relative=True), {"__type__": "interval", "every": 3600.0, "relative": True}),
        (crontab(minute="*/5"), {"__type__": "crontab", "minute": "*/5", "hour": "*", "day_of_week": "*",
                                 "day_of_month": "*", "month_of_year": "*"}),
        (crontab(minute=15, hour=[3, 9, 21], day_of_week="mon-fri"),
         {"__type__": "crontab", "minute": 15, "hour": [3, 9, 21], "day_of_week": "mon-fri",
          "day_of_month": "*", "month_of_year": "*"}),
        (MO, {"__type__": "weekday", "wkday": 0}),
        (FR, {"__type__": "weekday", "wkday": 4}),
    ],
)
def test_schedules_and_weekdays_round_trip(value, encoded):
    assert codec.encode_tagged(value) == encoded
    back = roundtrip(value)
    assert type(back) is type(value)
    assert back == value
    if isinstance(value, schedule):
        assert back.relative == value.relative


def test_rrule_round_trips_with_dtstart_until_and_weekdays():
    rule = rrule("WEEKLY", dtstart=datetime(2026, 11, 2, 8, 0, tzinfo=PLUS2), byweekday=[MO, FR],
                 byhour=8, byminute=0, until=datetime(2027, 1, 1, tzinfo=UTC), count=None)
    encoded = codec.encode_tagged(rule)
    assert encoded["__type__"] == "rrule"
    assert encoded["freq"] == 2
    assert encoded["dtstart"] == 1793599200 and encoded["dtstart_tz"] == 120.0
    assert encoded["until"] == 1798761600 and encoded["until_tz"] == 0
    back = roundtrip(rule)
    assert isinstance(back, rrule)
    assert back == rule
    assert back.dtstart == rule.dtstart and back.dtstart.utcoffset() == timedelta(hours=2)
    assert back.byweekday == [MO, FR]
    assert list(back.rrule[:3]) == list(rule.rrule[:3])


def test_rrule_repr_is_celery_redbeats_field_for_field():
    """The text celery-redbeat 2.4.2's repr gives for these two rules (printed in its own venv)."""
    weekly = rrule("WEEKLY", dtstart=datetime(2026, 11, 2, 8, 0, tzinfo=PLUS2), byweekday=[MO, FR], byhour=8,
                   byminute=0, count=10)
    monthly = rrule("MONTHLY", dtstart=datetime(2026, 1, 1, 18, 0, tzinfo=UTC), byweekday=FR(-1),
                    until=datetime(2027, 1, 1, tzinfo=UTC))
    assert repr(weekly) == (
        "<rrule: freq: 2, dtstart: 2026-11-02 08:00:00+02:00, interval: 1, wkst: None, count: 10, until: None, "
        "bysetpos: None, bymonth: None, bymonthday: None, byyearday: None, byeaster: None, byweekno: None, "
        "byweekday: [MO, FR], byhour: 8, byminute: 0, bysecond: None>")
    assert repr(monthly) == (
        "<rrule: freq: 1, dtstart: 2026-01-01 18:00:00+00:00, interval: 1, wkst: None, count: None, "
        "until: 2027-01-01 00:00:00+00:00, bysetpos: None, bymonth: None, bymonthday: None, byyearday: None, "
        "byeaster: None, byweekno: None, byweekday: FR(-1), byhour: None, byminute: None, bysecond: None>")
    assert rrule.FREQ_MAP["WEEKLY"] == weekly.freq


def test_the_decoder_hook_is_dict_to_object_which_a_subclass_may_extend():
    """celery-redbeat's decoder decodes each object through ``dict_to_object``; code subclasses it."""
    tagged = {"__type__": "interval", "every": 30.0, "relative": False}
    assert RedBeatJSONDecoder().dict_to_object(dict(tagged)) == schedule(30)
    assert RedBeatJSONDecoder().dict_to_object({"a": 1}) == {"a": 1}

    class Marking(RedBeatJSONDecoder):
        def dict_to_object(self, d):
            return {"seen": super().dict_to_object(d)}

    assert json.loads(json.dumps({"x": tagged}), cls=Marking) == {"seen": {"x": {"seen": schedule(30)}}}
    assert RedBeatJSONEncoder().default(obj=schedule(30)) == tagged


def test_unknown_type_passes_through_as_a_dict():
    assert roundtrip({"__type__": "solar", "event": "sunrise"}) == {"__type__": "solar", "event": "sunrise"}


def test_encoder_refuses_what_celery_redbeat_cannot_store():
    from celery.schedules import BaseSchedule

    class Sunrise(BaseSchedule):  # like solar: a BaseSchedule that is not the interval class
        pass

    with pytest.raises(TypeError, match="Sunrise"):
        json.dumps({"s": Sunrise()}, cls=RedBeatJSONEncoder)


# -- our bytes are celery-redbeat's bytes (golden data written by celery-redbeat 2.4.2) -------


def golden_objects():
    import warnings

    warnings.filterwarnings("ignore", "Using both 'count' and 'until'", DeprecationWarning)
    """The entries tests/compat/cr_write.py writes, built with OUR classes: name -> definition kwargs."""
    def d(name, task, sched, args=None, kwargs=None, options=None, enabled=True):
        return name, dict(name=name, task=task, args=args, kwargs=kwargs or {}, options=options or {},
                          schedule=sched, enabled=enabled)

    return dict([
        d("interval-30s", "tasks.ping", schedule(30)),
        d("interval-half-second", "tasks.fast", schedule(0.5, relative=False)),
        d("interval-hourly-relative", "tasks.hourly", schedule(3600, relative=True)),
        d("cron-every-5", "tasks.five", crontab(minute="*/5")),
        d("cron-weekdays-0230", "reports.nightly", crontab(minute="30", hour="2", day_of_week="mon-fri")),
        d("cron-month-days", "billing.invoice", crontab(minute=0, hour=6, day_of_month="1,15")),
        d("cron-quarterly", "billing.quarter", crontab(minute="0", hour="0", day_of_month="1",
                                                       month_of_year="*/3")),
        d("cron-hour-list", "tasks.hours", crontab(minute=15, hour=[3, 9, 21])),
        d("rrule-daily-plus2", "tasks.rrule_daily",
          rrule("DAILY", dtstart=datetime(2026, 11, 1, 9, 0, tzinfo=PLUS2), byhour=[9, 17], byminute=[0, 30])),
        d("rrule-count-until", "tasks.rrule_bounded",
          rrule("HOURLY", dtstart=datetime(2026, 11, 25, 6, 0, tzinfo=UTC), interval=2, count=20,
                until=datetime(2026, 12, 31, 0, 0, tzinfo=UTC))),
        d("rrule-mo-fr", "tasks.rrule_weekdays",
          rrule("WEEKLY", dtstart=datetime(2026, 11, 2, 8, 0, tzinfo=PLUS2), byweekday=[MO, FR],
                byhour=8, byminute=0)),
        d("rrule-last-friday", "tasks.rrule_monthly",
          rrule("MONTHLY", dtstart=datetime(2026, 1, 1, 18, 0, tzinfo=UTC), byweekday=FR(-1))),
        d("rrule-finished", "tasks.rrule_done",
          rrule("MINUTELY", dtstart=datetime(2026, 11, 20, 0, 0, tzinfo=UTC), interval=15,
                until=datetime(2026, 11, 20, 1, 0, tzinfo=UTC))),
        d("with-args", "reports.build", schedule(900), args=(42, "x", None, 1.5),
          kwargs={"format": "pdf", "pages": [1, 2], "deep": {"a": True}},
          options={"queue": "reports", "priority": 5, "expires": 3600}),
        d("disabled", "tasks.paused", schedule(60), enabled=False),
        d("never-run", "tasks.first", schedule(600)),
        d("overdue", "tasks.late", schedule(600)),
        d("advanced-twice", "tasks.advanced", schedule(300)),
        d("rescheduled", "tasks.resched", crontab(minute="0", hour="*/2")),
        d("static-cleanup", "maint.cleanup", crontab(minute=0, hour=4), options={"expires": 43200}),
        d("static-every-2m", "maint.poll", 120.0, args=(1, 2)),
        d("celery.backend_cleanup", "celery.backend_cleanup", crontab("0", "4", "*"), options={"expires": 43200}),
    ])


def test_golden_objects_cover_every_golden_entry():
    assert sorted(golden_objects()) == sorted(key[len(PREFIX):] for key in HASHES)


@pytest.mark.parametrize("name", sorted(golden_objects()))
def test_definition_bytes_equal_celery_redbeats(name):
    fields = golden_objects()[name]
    if not hasattr(fields["schedule"], "is_due"):
        fields["schedule"] = schedule(fields["schedule"])  # beat_schedule's plain number, as celery turns it
    assert codec.encode_definition(**fields) == HASHES[PREFIX + name]["definition"]


@pytest.mark.parametrize("key", sorted(HASHES))
def test_golden_definition_and_meta_decode_and_encode_back_unchanged(key):
    stored = HASHES[key]
    fields = codec.decode_definition(stored["definition"])
    assert codec.encode_definition(**fields) == stored["definition"]
    meta = codec.decode_meta(stored["meta"])
    count = meta["total_run_count"] if "total_run_count" in stored["meta"] else None
    assert codec.encode_meta(meta["last_run_at"], count) == stored["meta"]


@pytest.mark.parametrize(
    "name, last_run_at, count",
    [
        ("overdue", NOW - timedelta(hours=1), None),
        ("interval-30s", datetime(2026, 11, 25, 12, 0, tzinfo=ZoneInfo("UTC")), None),
        ("rescheduled", datetime(2026, 11, 25, 12, 30, tzinfo=ZoneInfo("Europe/Berlin")), None),
        ("never-run", None, None),
        ("advanced-twice", datetime(2026, 11, 25, 12, 0, tzinfo=ZoneInfo("UTC")), 2),
    ],
)
def test_meta_bytes_equal_celery_redbeats(name, last_run_at, count):
    assert codec.encode_meta(last_run_at, count) == HASHES[PREFIX + name]["meta"]


def test_decoded_golden_values():
    rule = codec.decode_definition(HASHES[PREFIX + "rrule-mo-fr"]["definition"])["schedule"]
    assert rule.byweekday == [weekday(0), weekday(4)]
    assert rule.dtstart == datetime(2026, 11, 2, 8, 0, tzinfo=PLUS2)
    fields = codec.decode_definition(HASHES[PREFIX + "with-args"]["definition"])
    assert fields["args"] == [42, "x", None, 1.5]
    assert fields["options"] == {"queue": "reports", "priority": 5, "expires": 3600}
    meta = codec.decode_meta(HASHES[PREFIX + "rescheduled"]["meta"])
    assert meta == {"last_run_at": datetime(2026, 11, 25, 11, 30, tzinfo=UTC), "total_run_count": 0}
    assert codec.decode_meta(HASHES[PREFIX + "never-run"]["meta"]) == {"last_run_at": None, "total_run_count": 0}
    assert codec.decode_meta(None) == {"last_run_at": None, "total_run_count": 0}


def test_ext_is_sorted_compact_json_and_absent_when_empty():
    assert codec.encode_ext({}) is None
    assert codec.encode_ext({"timezone": "Europe/Berlin", "a": 1}) == '{"a":1,"timezone":"Europe/Berlin"}'
    assert codec.decode_ext('{"a":1}') == {"a": 1}
    assert codec.decode_ext(None) == {}


# -- the first releases' flat format ----------------------------------------------------------


def flat(**fields):
    return json.dumps({"name": "flat", "task": "tasks.add", "enabled": True, **fields})


def test_flat_interval():
    fields = codec.decode_definition(flat(args=[1, 2], kwargs={}, __type__="interval", every=5, relative=False))
    assert fields["schedule"] == schedule(5)
    assert fields["schedule"].relative is False
    assert fields["args"] == [1, 2]
    assert (fields["name"], fields["task"], fields["enabled"]) == ("flat", "tasks.add", True)
    # rewritten in the modern form when saved
    assert json.loads(codec.encode_definition(**fields))["schedule"] == {
        "__type__": "interval", "every": 5.0, "relative": False}


def test_flat_relative_interval():
    assert codec.decode_definition(flat(__type__="interval", every=60, relative=True))["schedule"].relative is True


def test_flat_crontab_as_the_first_readme_wrote_it():
    # That README's own example: "__type__": "interval", crontab fields, no every, month as "[1-12]".
    raw = flat(__type__="interval", minute="0", hour="*/2", day_of_week="*", day_of_month="*",
               month_of_year="[1-12]")
    sched = codec.decode_definition(raw)["schedule"]
    assert isinstance(sched, crontab)
    assert sched == crontab(minute="0", hour="*/2", month_of_year="1-12")
    assert sched.month_of_year == set(range(1, 13))


def test_flat_crontab_missing_fields_default_to_star():
    sched = codec.decode_definition(flat(__type__="crontab", minute="30", hour="2"))["schedule"]
    assert sched == crontab(minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*")
    assert codec.encode_tagged(sched)["day_of_month"] == "*"


def test_flat_crontab_with_only_one_field():
    sched = codec.decode_definition(flat(hour=3))["schedule"]
    assert sched == crontab(minute="*", hour="3")


def test_flat_without_args_kwargs_or_options():
    fields = codec.decode_definition(json.dumps({"name": "x", "task": "t", "every": 1}))
    assert fields["args"] is None and fields["kwargs"] == {} and fields["options"] == {}
    assert fields["enabled"] is True


@pytest.mark.parametrize(
    "raw, message",
    [
        (flat(), "no schedule"),
        (flat(__type__="interval"), "no schedule"),
        (flat(__type__="interval", every=0), "positive"),
        (flat(__type__="interval", every=-5), "positive"),
        (flat(__type__="interval", every="5"), "positive"),
        (flat(__type__="interval", every=True), "positive"),
        (flat(__type__="interval", minute="99"), "bad crontab"),
        (flat(__type__="interval", hour="x-y"), "bad crontab"),
        (json.dumps({"name": "x", "every": 5}), "task"),
        (json.dumps({"name": "x", "task": "", "every": 5}), "task"),
        (json.dumps([1, 2]), "JSON object"),
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        (flat(every=5, args="1,2"), "args"),
        (flat(every=5, kwargs=[1]), "kwargs"),
        (flat(every=5, options="q"), "options"),
    ],
)
def test_broken_flat_or_corrupt_definition_is_a_corrupt_entry_error(raw, message):
    with pytest.raises(codec.CorruptEntryError, match=message):
        codec.decode_definition(raw)


@pytest.mark.parametrize(
    "schedule_json, message",
    [
        ({"__type__": "solar", "event": "sunrise"}, "unknown schedule type 'solar'"),
        ({"__type__": "interval"}, "bad 'interval'"),
        ({"__type__": "crontab", "minute": "61"}, "bad 'crontab'"),
        ({"__type__": "crontab", "minute": "1", "tz": "UTC"}, "bad 'crontab'"),
        ({"__type__": "rrule", "freq": "FORTNIGHTLY"}, "bad 'rrule'"),
        ("every day", "schedule must be a schedule"),
        (None, "schedule must be a schedule"),
    ],
)
def test_corrupt_modern_schedule_is_a_corrupt_entry_error(schedule_json, message):
    raw = json.dumps({"name": "x", "task": "t", "schedule": schedule_json})
    with pytest.raises(codec.CorruptEntryError, match=message):
        codec.decode_definition(raw)


@pytest.mark.parametrize(
    "meta, message",
    [
        ("{nope", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"last_run_at": "yesterday"}', "must be a datetime"),
        ('{"last_run_at": {"__type__": "datetime", "year": 2026}}', "bad 'datetime'"),
        ('{"last_run_at": {"__type__": "datetime", "year": 2026, "month": 1, "day": 1, '
         '"timezone": "Mars/Olympus"}}', "bad 'datetime'"),
        ('{"last_run_at": {"__type__": "datetime", "year": 2026, "month": 1, "day": 1, '
         '"timezone": true}}', "timezone must be"),
        ('{"last_run_at": {"__type__": "datetime", "year": 2026, "month": 1, "day": 1, '
         '"timezone": [1]}}', "bad 'datetime'"),
        ('{"last_run_at": null, "total_run_count": "3"}', "total_run_count"),
    ],
)
def test_corrupt_meta_is_a_corrupt_entry_error(meta, message):
    with pytest.raises(codec.CorruptEntryError, match=message):
        codec.decode_meta(meta)


# -- the tick's short ways agree with the generic encoder and decoder ----------------------------------

ZONES = [None, UTC, ZoneInfo("UTC"), ZoneInfo("Europe/Berlin"), ZoneInfo("America/St_Johns"), PLUS2,
         timezone(timedelta(hours=-5, minutes=-30)), timezone(timedelta(seconds=1))]


def generic_meta(last_run_at, count):
    """What celery-redbeat writes: json.dumps(meta, cls=RedBeatJSONEncoder)."""
    meta = {"last_run_at": last_run_at}
    if count is not None:
        meta["total_run_count"] = count
    return json.dumps(meta, cls=RedBeatJSONEncoder)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    zone=st.sampled_from(ZONES),
    count=st.one_of(st.none(), st.integers(min_value=-(2**70), max_value=2**70)),
)
def test_encode_meta_is_byte_identical_to_the_generic_encoder(moment, zone, count):
    moment = moment.replace(tzinfo=zone)
    assert codec.encode_meta(moment, count) == generic_meta(moment, count)
    stored = moment if zone is not None else moment.replace(tzinfo=ZoneInfo("UTC"))  # naive is UTC
    assert codec.decode_meta(codec.encode_meta(moment, count)) == {"last_run_at": stored,
                                                                  "total_run_count": count or 0}


class _KeyedZone(tzinfo):
    """A tzinfo with a ``key`` attribute that is not a zone name (the encoder writes whatever it holds)."""

    def __init__(self, key):
        self.key = key

    def utcoffset(self, dt):
        return timedelta(hours=1)

    def dst(self, dt):
        return timedelta(0)


class _NoOffset(tzinfo):
    def utcoffset(self, dt):
        return None


class _Moment(datetime):
    """A datetime subclass (as freezegun and pendulum make them)."""


@pytest.mark.parametrize(
    "moment, count",
    [
        (datetime(2026, 1, 1, 10, tzinfo=_KeyedZone(None)), 1),
        (datetime(2026, 1, 1, 10, tzinfo=_KeyedZone(7)), 1),
        (datetime(2026, 1, 1, 10, tzinfo=_KeyedZone('Zone "quoted" \\ ünïcode')), 1),
        (_Moment(2026, 1, 1, 10, tzinfo=UTC), 2),
        (datetime(2026, 1, 1, 10, tzinfo=UTC), True),
        (None, 3),
        (None, None),
    ],
)
def test_encode_meta_of_unusual_values_is_what_the_generic_encoder_writes(moment, count):
    assert codec.encode_meta(moment, count) == generic_meta(moment, count)


def test_encode_meta_of_a_zone_without_offset_fails_as_the_generic_encoder_does():
    moment = datetime(2026, 1, 1, 10, tzinfo=_NoOffset())
    with pytest.raises(AttributeError):
        generic_meta(moment, 1)
    with pytest.raises(AttributeError):
        codec.encode_meta(moment, 1)


@pytest.mark.parametrize(
    "fields",
    [
        {"year": 2026.0},  # datetime() refuses a float
        {"month": 13},
        {"timezone": "Mars/Olympus"},
        {"timezone": True},
        {"timezone": [1]},
        {"timezone": "../../etc/passwd"},
        {"fold": 1},  # not one of the encoder's fields: the generic decoder takes it
        {"microsecond": 10**7},
        {"year": 10**30},
    ],
)
def test_decode_meta_short_way_answers_as_decode_tagged(fields):
    tagged = {"__type__": "datetime", "year": 2026, "month": 1, "day": 2, "hour": 3, "minute": 4, "second": 5,
              "microsecond": 6, "timezone": "UTC", **fields}
    raw = json.dumps({"last_run_at": tagged, "total_run_count": 1})
    try:
        expected = codec.decode_tagged(dict(tagged))
    except codec.CorruptEntryError as exc:
        with pytest.raises(codec.CorruptEntryError) as got:
            codec.decode_meta(raw)
        assert str(got.value) == str(exc)
    else:
        assert codec.decode_meta(raw)["last_run_at"] == expected


def _definition(schedule_json, name="e"):
    return json.dumps({"name": name, "task": "t", "args": [], "kwargs": {}, "options": {},
                       "schedule": schedule_json, "enabled": True})


def test_schedule_memo_shares_equal_schedules_and_decodes_as_without_it():
    memo = {}
    every = {"__type__": "interval", "every": 60.0, "relative": False}
    cron = {"__type__": "crontab", "minute": "*/5", "hour": "*", "day_of_week": "*", "day_of_month": "*",
            "month_of_year": "*"}
    for schedule_json in (every, cron):
        first = codec.decode_definition(_definition(schedule_json, "a"), schedules=memo)
        second = codec.decode_definition(_definition(schedule_json, "b"), schedules=memo)
        plain = codec.decode_definition(_definition(schedule_json, "a"))
        assert first["schedule"] is second["schedule"]
        assert first == plain and first["schedule"] == plain["schedule"]
    assert len(memo) == 2


def test_schedule_memo_keeps_values_of_different_json_types_apart():
    memo = {}
    schedules = [
        codec.decode_definition(_definition({"__type__": "interval", "every": every, "relative": relative}),
                                schedules=memo)["schedule"]
        for every, relative in ((1, False), (1.0, False), (1, 0), (1, True))
    ]
    assert len({id(s) for s in schedules}) == 4
    assert [s.relative for s in schedules] == [False, False, 0, True]


@pytest.mark.parametrize(
    "schedule_json",
    [
        {"__type__": "rrule", "freq": "DAILY", "dtstart": 1764000000, "byweekday": [{"__type__": "weekday",
                                                                                      "wkday": 0}]},
        {"__type__": "interval", "every": [60]},
        {"__type__": "interval", "every": {"nested": 1}},
    ],
)
def test_schedule_memo_skips_schedules_it_cannot_key(schedule_json):
    memo = {}
    try:
        expected = codec.decode_definition(_definition(schedule_json))
    except codec.CorruptEntryError as exc:
        with pytest.raises(codec.CorruptEntryError, match=re.escape(str(exc))):
            codec.decode_definition(_definition(schedule_json), schedules=memo)
    else:
        assert codec.decode_definition(_definition(schedule_json), schedules=memo) == expected
    assert memo == {}


def test_a_corrupt_schedule_is_refused_every_time_and_never_memoised():
    memo = {}
    bad = {"__type__": "crontab", "minute": "61"}
    for _ in range(2):
        with pytest.raises(codec.CorruptEntryError, match="bad 'crontab'"):
            codec.decode_definition(_definition(bad), schedules=memo)
    unknown = {"__type__": "interval-ish", "every": 1}
    with pytest.raises(codec.CorruptEntryError, match="unknown schedule type"):
        codec.decode_definition(_definition(unknown), schedules=memo)
    assert memo == {}


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('{"catch_up": "skip"}', {"catch_up": "skip"}),
        ('  {"catch_up": "skip"}\n', {"catch_up": "skip"}),  # json.loads takes surrounding whitespace
        (b'{"catch_up": "skip"}', {"catch_up": "skip"}),
        ('{"a": 1} trailing', "Extra data"),
        ('{"a": 1}{"b": 2}', "Extra data"),
        ("\ufeff{}", "BOM"),
        (" ", "Expecting value"),
        ('{"a": NaN}', {"a": float("nan")}),
    ],
)
def test_json_is_read_exactly_as_json_loads_reads_it(raw, expected):
    if isinstance(expected, str):
        with pytest.raises(codec.CorruptEntryError, match=expected):
            codec.decode_ext(raw)
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw)
    else:
        got = codec.decode_ext(raw)
        assert repr(got) == repr(json.loads(raw)) == repr(expected)
