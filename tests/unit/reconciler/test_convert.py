"""Manifest schedule <-> stored definition: shapes, field errors, the shortest export, round trips."""

from __future__ import annotations

import json

import pytest
from celery import Celery
from celery.schedules import crontab
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reconciler.core.errors import FieldError
from reconciler.schedules.convert import entry_to_manifest, manifest_to_entry, respellings, same_times
from reconciler.schedules.cron import BOUNDS, CELERY_FIELDS
from redbeat import RedBeatSchedulerEntry

BASE = {"name": "job", "task": "demo.tasks.job"}
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def definition(**schedule: object) -> dict:
    return manifest_to_entry({**BASE, **schedule})[0]


def test_definition_shape_and_defaults() -> None:
    got, ext = manifest_to_entry({**BASE, "every": "1m"})
    assert got == {
        "name": "job",
        "task": "demo.tasks.job",
        "args": [],
        "kwargs": {},
        "options": {},
        "schedule": {"__type__": "interval", "every": 60.0, "relative": False},
        "enabled": True,
    }
    assert ext is None
    assert list(got) == ["name", "task", "args", "kwargs", "options", "schedule", "enabled"]


def test_rrule_encoding_key_order_and_extension() -> None:
    got, ext = manifest_to_entry({
        **BASE,
        "timezone": "Europe/Berlin",
        "rrule": {"freq": "monthly", "byweekday": ["-1su", "1fr"], "bymonth": 3,
                  "dtstart": "2026-01-01T09:00:00+01:00", "until": "2027-01-01T00:00:00Z"},
    })  # fmt: skip
    schedule = got["schedule"]
    assert list(schedule) == [
        "__type__", "freq", "interval", "wkst", "count", "bysetpos", "bymonth", "bymonthday", "byyearday",
        "byeaster", "byweekno", "byweekday", "byhour", "byminute", "bysecond", "dtstart", "dtstart_tz",
        "until", "until_tz",
    ]  # fmt: skip
    assert schedule["byweekday"] == [4, 6]
    assert schedule["bymonth"] == [3]
    assert schedule["dtstart"] == 1767254400 and schedule["dtstart_tz"] == 60.0
    assert schedule["until"] == 1798761600 and schedule["until_tz"] == 0.0
    assert ext == {"rrule_byweekday": ["+1FR", "-1SU"], "timezone": "Europe/Berlin"}
    assert list(ext) == sorted(ext)
    json.dumps(got)  # storable as is


@pytest.mark.parametrize(
    ("schedule", "path", "message"),
    [
        ({"every": "1h", "timezone": "UTC"}, ("timezone",), "timezone has no effect on an 'every' schedule; remove it"),
        ({"cron": "0 0 * * *", "timezone": "Mars/Olympus"}, ("timezone",), "unknown time zone 'Mars/Olympus'"),
        (
            {"every": 5, "kwargs": {"a": {1: 2}}},
            ("kwargs", "a"),
            "key 1 is not a string; JSON object keys must be strings (quote it)",
        ),
        ({"every": 5, "args": [float("inf")]}, ("args", 0), "inf cannot be encoded as JSON"),
        ({"crontab": {"minute": "99"}}, ("crontab", "minute"), "'99': minute 99 is out of range 0-59"),
        (
            {"rrule": {"freq": "daily", "dtstart": "2026-02-30T00:00:00Z"}},
            ("rrule", "dtstart"),
            "'2026-02-30T00:00:00Z' is not a valid datetime: day is out of range for month",
        ),
    ],
)
def test_field_errors(schedule: dict, path: tuple, message: str) -> None:
    with pytest.raises(FieldError) as info:
        manifest_to_entry({**BASE, **schedule})
    assert (info.value.path, info.value.message) == (path, message)


@pytest.mark.parametrize(
    ("schedule", "manifest_part"),
    [
        ({"every": 60}, {"every": "1m"}),
        ({"every": 1.2345}, {"every": 1.2345}),
        ({"every": "90m", "relative": True}, {"every": "1h30m", "relative": True}),
        # crontab fields keep their spelling: what the user wrote is what export gives back
        ({"cron": "0,15,30,45 * * * *"}, {"cron": "0,15,30,45 * * * *"}),
        ({"cron": "0 0 1 1,7 *"}, {"cron": "0 0 1 1,7 *"}),
        ({"crontab": {"minute": 0, "day_of_week": " sat , sun "}}, {"cron": "0 * * * sat,sun"}),
        (
            {"crontab": {"day_of_month": "1", "day_of_week": "mon"}},
            {"crontab": {"day_of_week": "mon", "day_of_month": "1"}},
        ),
    ],
)
def test_export_is_shortest_natural_form(schedule: dict, manifest_part: dict) -> None:
    got, ext = manifest_to_entry({**BASE, **schedule})
    assert entry_to_manifest(got, ext) == {**BASE, **manifest_part}


def test_export_keeps_only_non_defaults() -> None:
    got, ext = manifest_to_entry({**BASE, "cron": "@daily", "enabled": False, "args": [1], "timezone": "UTC"})
    assert entry_to_manifest(got, ext) == {
        **BASE,
        "cron": "0 0 * * *",
        "args": [1],
        "enabled": False,
        "timezone": "UTC",
    }


def test_export_refuses_unknown_extension() -> None:
    got, _ = manifest_to_entry({**BASE, "every": 5})
    with pytest.raises(ValueError, match="misfire_grace"):
        entry_to_manifest(got, {"misfire_grace": 3})


# --- property tests: equal schedules written differently give identical definitions


@given(st.integers(1, 36500), st.sampled_from(["s", "m", "h", "d"]))
def test_every_spellings(count: int, unit: str) -> None:
    seconds = count * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert definition(every=f"{count}{unit}") == definition(every=seconds) == definition(every=f"{seconds}s")


@given(
    st.frozensets(st.integers(0, 59), min_size=1),
    st.frozensets(st.integers(0, 23), min_size=1),
    st.frozensets(st.integers(0, 6), min_size=1),
    st.randoms(use_true_random=False),
)
def test_cron_and_crontab_spellings(minutes, hours, days, rnd) -> None:  # type: ignore[no-untyped-def]
    def spell(values, names=None):  # type: ignore[no-untyped-def]
        items = sorted(values)
        rnd.shuffle(items)
        return ",".join(names[v] if names and rnd.random() < 0.5 else str(v) for v in items)

    minute, hour, day = spell(minutes), spell(hours), spell(days, DAYS)
    a = definition(cron=f"{minute} {hour} * * {day}")
    b = definition(cron=f"{spell(minutes)} {spell(hours)} * * {spell(days, DAYS)}")
    c = definition(crontab={"minute": minute, "hour": hour, "day_of_week": day})
    # one spelling, however it is written (cron string or crontab mapping), is stored as written ...
    assert a == c
    assert {k: a["schedule"][k] for k in ("minute", "hour", "day_of_week")} == {
        "minute": minute, "hour": hour, "day_of_week": day
    }  # fmt: skip
    # ... and two spellings of the same times are the same times, each field differing at most in its text
    assert same_times(a["schedule"], b["schedule"])
    assert {name for name, _, _ in respellings(a["schedule"], b["schedule"])} <= {"minute", "hour", "day_of_week"}
    # export gives back the text stored, and re-reading that export stores it again
    manifest = entry_to_manifest(a, None)
    assert manifest["cron"] == f"{minute} {hour} * * {day}"
    assert manifest_to_entry(manifest)[0] == a


@given(
    st.lists(st.integers(1, 12), min_size=1, max_size=5),
    st.lists(st.sampled_from(["mo", "tu", "we", "th", "fr", "sa", "su"]), min_size=1, max_size=7),
    st.randoms(use_true_random=False),
)
def test_rrule_list_spellings(months, weekdays, rnd) -> None:  # type: ignore[no-untyped-def]
    shuffled_months, shuffled_days = list(months), list(weekdays)
    rnd.shuffle(shuffled_months)
    rnd.shuffle(shuffled_days)
    rule = {"freq": "daily", "dtstart": "2026-01-01T00:00:00+00:00"}
    a = definition(rrule={**rule, "bymonth": months, "byweekday": weekdays})
    b = definition(rrule={**rule, "bymonth": shuffled_months + months[:1], "byweekday": shuffled_days,
                          "dtstart": "2026-01-01T01:00:00+01:00"})  # fmt: skip
    assert a["schedule"]["bymonth"] == b["schedule"]["bymonth"] == sorted(set(months))
    assert a["schedule"]["byweekday"] == b["schedule"]["byweekday"]
    assert a["schedule"]["dtstart"] == b["schedule"]["dtstart"]
    if len(set(months)) == 1:
        assert definition(rrule={**rule, "bymonth": months[0], "byweekday": weekdays}) == a


@pytest.mark.parametrize("freq", ["monthly", "yearly"])
@pytest.mark.parametrize("byweekday", [["-1fr", "mo"], ["mo", "-1fr"], ["1mo", "fr"], ["fr", "-1fr"]])
def test_plain_and_numbered_weekdays_together_are_accepted_and_export_back(freq: str, byweekday: list) -> None:
    """dateutil alone intersects "mo" with "-1fr" (never fires); beat and validate take their union."""
    rule = {"freq": freq, "byweekday": byweekday, "dtstart": "2026-01-01T09:00:00+00:00"}
    got, ext = manifest_to_entry({**BASE, "rrule": rule})
    assert ext is not None and sorted(ext["rrule_byweekday"]) == sorted(
        w.upper() if w[0].isalpha() else f"{int(w[:-2]):+d}{w[-2:].upper()}" for w in byweekday
    )
    back = entry_to_manifest(got, ext)
    assert sorted(back["rrule"]["byweekday"]) == sorted(byweekday)
    assert manifest_to_entry(back) == (got, ext)


@pytest.mark.parametrize("freq", ["weekly", "daily", "hourly"])
def test_a_numbered_weekday_outside_monthly_or_yearly_is_refused(freq: str) -> None:
    rule = {"freq": freq, "byweekday": ["mo", "-1fr"], "dtstart": "2026-01-01T09:00:00+00:00"}
    with pytest.raises(FieldError) as info:
        manifest_to_entry({**BASE, "rrule": rule})
    assert info.value.path == ("rrule", "byweekday")
    assert info.value.message == (
        f"'-1fr': a numbered weekday needs freq monthly or yearly (with freq {freq} it would run on every such weekday)"
    )


@pytest.mark.parametrize("code", ["6mo", "8mo", "53mo", "-6fr", "-53fr"])
def test_a_monthly_numbered_weekday_beyond_5_is_refused(code: str) -> None:
    """dateutil raised IndexError on 8MO to 53MO in a monthly rule (found by test_validate_means_runnable)."""
    rule = {"freq": "monthly", "byweekday": [code], "dtstart": "2026-01-01T09:00:00+00:00"}
    with pytest.raises(FieldError) as info:
        manifest_to_entry({**BASE, "rrule": rule})
    assert info.value.path == ("rrule", "byweekday")
    assert info.value.message == (
        f"{code!r}: with freq monthly a numbered weekday is 1 to 5 or -1 to -5 (a month has at most 5 of each weekday)"
    )
    yearly, _ = manifest_to_entry({**BASE, "rrule": {**rule, "freq": "yearly"}})  # a year has up to 53
    assert yearly["schedule"]["__type__"] == "rrule"


def test_export_of_a_stored_weekly_rule_with_numbered_weekdays_gives_what_beat_runs() -> None:
    """An older validate stored ``-1FR`` for a weekly rule: beat (dateutil) runs it every Friday, and export says so."""
    got, _ = manifest_to_entry(
        {**BASE, "rrule": {"freq": "weekly", "byweekday": ["fr"], "dtstart": "2026-01-01T09:00:00Z"}}
    )
    back = entry_to_manifest(got, {"rrule_byweekday": ["-1FR"]})
    assert back["rrule"]["byweekday"] == ["fr"]
    assert manifest_to_entry(back)[0] == got


# --- export of what beat stored -> validate: the same times -----------------------

_MONTH_WORDS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                "november", "december"]  # fmt: skip
_DAY_WORDS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]


def _name(words: list[str], index: int) -> st.SearchStrategy[str]:
    """A spelling Celery reads as ``words[index]``: three letters or more, any case, perhaps a typo after them."""
    word = words[index]
    return st.tuples(
        st.integers(3, len(word)), st.sampled_from(["", "", "xyz", "_2", "9"]), st.booleans()
    ).map(lambda p: (word[: p[0]] + p[1]).upper() if p[2] else word[: p[0]] + p[1])


def _celery_value(field: str) -> st.SearchStrategy[str]:
    low, high = BOUNDS[field]
    number = st.integers(low, high).flatmap(lambda v: st.sampled_from([str(v), f"0{v}", f"{v:03d}"]))
    names = []
    if high >= 12 or field == "month_of_year":
        names.append(st.integers(max(low, 1), min(high, 12)).flatmap(lambda v: _name(_MONTH_WORDS, v - 1)))
    if low == 0 or field == "day_of_week":  # Celery takes weekday names (Sunday 0) in any 0-based field
        names.append(st.integers(max(low, 0), min(high, 6)).flatmap(lambda v: _name(_DAY_WORDS, v)))
    return st.one_of(number, *names)


def _celery_item(field: str) -> st.SearchStrategy[str]:
    value = _celery_value(field)
    step = st.integers(1, 12).map(str)
    return st.one_of(
        value,
        st.just("*"),
        step.map(lambda n: f"*/{n}"),
        st.tuples(value, value).map("-".join),
        st.tuples(value, value, step).map(lambda p: f"{p[0]}-{p[1]}/{p[2]}"),
        st.tuples(value, step).map(lambda p: f"{p[0]}/{p[1]}"),  # Celery ignores this step (a name only)
    )


def _celery_field(field: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just("*"), st.lists(_celery_item(field), min_size=1, max_size=3).map(",".join))


_APP = Celery(set_as_current=False)
_APP.conf.redbeat_redis_url = "redis://127.0.0.1:1/0"


@settings(deadline=None)  # Celery's crontab and entry are slow to build on a loaded machine
@given(st.fixed_dictionaries({name: _celery_field(name) for name in CELERY_FIELDS}))
def test_what_beat_stored_exports_to_a_manifest_validate_accepts_with_the_same_times(fields) -> None:
    try:
        built = crontab(**fields)  # what beat builds from Python code (and refuses, it never stores)
    except Exception:  # noqa: BLE001 - any refusal
        assume(False)
        raise
    stored = json.loads(RedBeatSchedulerEntry("job", "demo.tasks.job", built, app=_APP)._definition_json())
    manifest = entry_to_manifest(stored, None)
    definition, _ = manifest_to_entry(manifest)
    again = crontab(**{k: v for k, v in definition["schedule"].items() if k != "__type__"})
    for name in CELERY_FIELDS:
        assert getattr(again, name) == getattr(built, name), (name, fields[name], manifest)


@pytest.mark.parametrize(
    ("schedule", "path", "message"),
    [
        (
            {"at": "0001-01-01T00:00:00+14:00"},
            ("at",),
            "'0001-01-01T00:00:00+14:00' is before 0001-01-01T00:00:00Z, the earliest datetime there is",
        ),
        (
            {"rrule": {"freq": "daily", "dtstart": "0001-01-01T00:00:00+01:00"}},
            ("rrule", "dtstart"),
            "'0001-01-01T00:00:00+01:00' is before 0001-01-01T00:00:00Z, the earliest datetime there is",
        ),
        (
            {"rrule": {"freq": "yearly", "dtstart": "2026-01-01T00:00:00Z", "byeaster": [1_000_000]}},
            ("rrule", "byeaster"),
            "1000000 days from Easter can leave Easter's year; use -80..250 "
            "(dateutil, which beat runs rules with, fails or picks a wrong day otherwise)",
        ),
        (
            {"rrule": {"freq": "yearly", "dtstart": "2026-01-01T00:00:00Z", "byeaster": [-81]}},
            ("rrule", "byeaster"),
            "-81 days from Easter can leave Easter's year; use -80..250 "
            "(dateutil, which beat runs rules with, fails or picks a wrong day otherwise)",
        ),
    ],
)
def test_hostile_datetimes_and_easter_offsets_are_field_errors_not_tracebacks(schedule, path, message) -> None:
    with pytest.raises(FieldError) as info:
        manifest_to_entry({**BASE, **schedule})
    assert (info.value.path, info.value.message) == (path, message)


@pytest.mark.parametrize("offset", [-80, 0, 1, 60, 250])
def test_easter_offsets_in_easters_year_fire(offset: int) -> None:
    rule = {"freq": "yearly", "dtstart": "2026-01-01T00:00:00Z", "byeaster": offset}
    got, _ = manifest_to_entry({**BASE, "rrule": rule})
    assert got["schedule"]["byeaster"] == [offset]
