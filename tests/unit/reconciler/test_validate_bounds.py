"""Validate accepts only what beat can run: bounds, options Celery can send, defaults that agree with kinds."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.core.errors import DurationError, FieldError
from reconciler.manifests.checks import check_manifests
from reconciler.manifests.schema import check_value
from reconciler.schedules.convert import MIN_INTERVAL, manifest_to_entry
from reconciler.schedules.duration import MAX_SECONDS, parse_duration

BASE = {"name": "job", "task": "app.tasks.job"}


def check(tmp_path: Path, text: str) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    entries, errors = check_manifests([path])
    return entries, [str(e).split(": ", 1)[1] for e in errors]


def test_duration_bound_is_inclusive_and_named() -> None:
    assert parse_duration(MAX_SECONDS) == MAX_SECONDS
    assert parse_duration("36500d") == MAX_SECONDS
    with pytest.raises(DurationError, match=r"longer than 36500d \(100 years\)"):
        parse_duration("36500d1ms")


def test_interval_minimum_is_100ms() -> None:
    assert manifest_to_entry({**BASE, "every": "100ms"})[0]["schedule"]["every"] == MIN_INTERVAL
    with pytest.raises(FieldError, match="shorter than 100ms"):
        manifest_to_entry({**BASE, "every": "99ms"})


def test_a_future_expires_with_an_offset_and_seconds_are_accepted() -> None:
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    for expires in (3600, 0.5, later, later.replace("+00:00", "Z")):
        definition, _ = manifest_to_entry({**BASE, "every": 60, "options": {"expires": expires}})
        assert definition["options"] == {"expires": expires}


def test_an_expires_that_has_passed_would_discard_every_run() -> None:
    with pytest.raises(FieldError, match="has passed"):
        manifest_to_entry({**BASE, "every": 60, "options": {"expires": "2001-01-01T00:00:00Z"}})


def test_a_leap_day_crontab_fires_and_is_accepted() -> None:
    manifest_to_entry({**BASE, "crontab": {"day_of_month": "29", "month_of_year": "2"}})


def test_schema_enforces_the_name_rules_validate_enforces() -> None:
    good = {**BASE, "every": 60, "name": "n" * 200}
    assert check_value(good) == []
    assert check_value({**good, "name": "n" * 201})
    assert check_value({**good, "name": "a\x1b[31mb"})
    assert check_value({**good, "name": "line\nbreak"})


def test_a_schedule_turns_off_a_default_jitter(tmp_path: Path) -> None:
    entries, errors = check(tmp_path, """
        defaults:
          task: app.tasks.job
          jitter: 10s
        schedules:
          - {name: with, every: 1m}
          - {name: zero, every: 1m, jitter: 0s}
          - {name: none, every: 1m, jitter: null}
          - {name: bare-zero, every: 1m, jitter: 0}
        """)
    assert errors == []
    assert entries["with"].ext == {"jitter": 10.0}
    assert [entries[n].ext for n in ("zero", "none", "bare-zero")] == [None, None, None]


def test_a_default_timezone_applies_to_calendar_kinds_only(tmp_path: Path) -> None:
    entries, errors = check(tmp_path, """
        defaults:
          task: app.tasks.job
          timezone: Europe/Berlin
        schedules:
          - {name: nightly, cron: "0 3 * * *"}
          - {name: poll, every: 30s}
          - {name: once, at: "2030-01-01T09:00:00+01:00"}
        """)
    assert errors == []
    assert entries["nightly"].ext == {"timezone": "Europe/Berlin"}
    assert entries["poll"].ext is None and entries["once"].ext is None


def test_a_timezone_written_on_an_at_itself_is_still_an_error(tmp_path: Path) -> None:
    _, errors = check(tmp_path, """
        name: once
        task: app.tasks.job
        at: "2030-01-01T09:00:00+01:00"
        timezone: Europe/Berlin
        """)
    assert errors == ["timezone: timezone has no effect on a one-off 'at' (it carries its own offset); remove it"]


@pytest.mark.parametrize("interval", [20, 1000])
def test_a_yearly_rrule_with_a_large_interval_is_checked_without_overflow(interval: int) -> None:
    rule = {"freq": "yearly", "dtstart": "2026-01-01T09:00:00+00:00", "interval": interval, "bymonthday": [1]}
    assert manifest_to_entry({**BASE, "rrule": rule})[0]["schedule"]["interval"] == interval
