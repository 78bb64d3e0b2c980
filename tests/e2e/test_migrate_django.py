"""django-celery-beat -> manifests, against a real Django database.

Each test builds a SQLite database with django-celery-beat's own migrations
and fills it through the ORM (tests/e2e/django_beat_db.py, in its own
process), runs ``redbeat-apply migrate-django`` as a user would,
validates and applies the output with the installed redbeat-apply, and
compares what beat will run with what django-celery-beat's own ``ModelEntry``
would have run from the same rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from redbeat.codec import decode_definition, decode_ext

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = Path(sys.executable).parent
DB = TypeVar("DB", Path, str)  # a SQLite file or a database URL

CONVERTIBLE = [
    {"name": "heartbeat", "task": "ops.tasks.ping", "interval": {"every": 30, "period": "seconds"}},
    {
        "name": "ledger-sync", "task": "ledger.tasks.sync", "interval": {"every": 90, "period": "minutes"},
        "args": '[1, "two", null]', "kwargs": '{"full": true, "depth": {"max": 3}}',
        "queue": "ledger", "exchange": "ledger-ex", "routing_key": "ledger.sync", "priority": 7,
        "expire_seconds": 600, "headers": '{"x-team": "finance"}',
        "description": "Sync the ledger.\nRuns all day.",
    },
    {"name": "every-two-days", "task": "ops.tasks.rotate", "interval": {"every": 2, "period": "days"}},
    {"name": "tick", "task": "ops.tasks.tick", "interval": {"every": 250000, "period": "microseconds"}},
    {
        "name": "nightly-report", "task": "reports.tasks.nightly",
        "crontab": {"minute": "30", "hour": "2", "day_of_week": "mon-fri", "timezone": "Europe/Berlin"},
        "enabled": False,
    },
    {
        "name": "first-monday", "task": "reports.tasks.monthly",
        "crontab": {"minute": "0", "hour": "6", "day_of_week": "1", "day_of_month": "1-7", "timezone": "UTC"},
    },
    {
        "name": "quarter-hours", "task": "ops.tasks.poll",
        "crontab": {"minute": "*/15", "hour": "8-18", "month_of_year": "1,4,7,10", "timezone": "America/New_York"},
    },
    {
        "name": "expires-later", "task": "ops.tasks.campaign", "interval": {"every": 1, "period": "hours"},
        "expires": "2099-01-01T00:00:00+00:00",
    },
    {
        "name": "already-started", "task": "ops.tasks.started", "interval": {"every": 5, "period": "minutes"},
        "start_time": "2020-01-01T00:00:00+00:00",
    },
]

#: Converted to manifest features beyond every/cron: one-offs (`at`), `start_at`, `end_at`.
RUN_ONCE_AND_WINDOWS = [
    {"name": "launch", "task": "ops.tasks.launch", "clocked": "2030-01-01T09:00:00+00:00", "one_off": True},
    {"name": "just-once", "task": "ops.tasks.once", "interval": {"every": 1, "period": "hours"}, "one_off": True},
    {"name": "once-at-nine", "task": "ops.tasks.nine", "one_off": True,
     "crontab": {"minute": "0", "hour": "9", "timezone": "Europe/Berlin"}, "start_time": "2098-01-01T00:00:00+00:00"},
    {"name": "ran-once", "task": "ops.tasks.ran", "clocked": "2021-01-01T09:00:00+00:00", "one_off": True,
     "enabled": False, "last_run_at": "2021-01-01T09:00:01+00:00"},
    {
        "name": "not-yet", "task": "ops.tasks.later", "interval": {"every": 1, "period": "hours"},
        "start_time": "2099-06-01T00:00:00+00:00",
    },
]

NOT_CONVERTIBLE = [
    {
        "name": "sunrise",
        "task": "garden.tasks.water",
        "solar": {"event": "sunrise", "latitude": "52.52", "longitude": "13.40"},
    },
    {
        "name": "broken-kwargs",
        "task": "ops.tasks.broken",
        "interval": {"every": 1, "period": "hours"},
        "kwargs": "{nope",
    },
    {
        "name": "args-not-a-list",
        "task": "ops.tasks.broken",
        "interval": {"every": 1, "period": "hours"},
        "args": '{"a": 1}',
    },
]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("REDBEAT_", "DJANGO_")) and k != "NO_COLOR"}


def django_beat_db(*args: str) -> str:
    """The stdout of tests/e2e/django_beat_db.py (Django and django-celery-beat in a process of their own)."""
    result = subprocess.run(
        [sys.executable, str(HERE / "django_beat_db.py"), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def make_db(target: DB, tasks: list[dict[str, Any]]) -> DB:
    """``target`` (a SQLite file or a database URL) filled with ``tasks`` through the ORM."""
    assert django_beat_db(str(target), json.dumps(tasks)).strip() == str(len(tasks))
    return target


def oracle(db: Path) -> dict[str, Any]:
    """What django-celery-beat's ModelEntry makes of each row."""
    return json.loads(django_beat_db(str(db), "--dump"))


def export(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "redbeat-apply"), "migrate-django", *args],
        capture_output=True,
        text=True,
        env={**clean_env(), **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def redbeat_apply(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "redbeat-apply"), *args], capture_output=True, text=True, env=clean_env(), timeout=120
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def full_db(tmp_path_factory) -> Path:
    return make_db(
        tmp_path_factory.mktemp("django") / "db.sqlite3", CONVERTIBLE + RUN_ONCE_AND_WINDOWS + NOT_CONVERTIBLE
    )


def expected_exported_one_offs(just_once_at: str) -> dict[str, dict[str, Any]]:
    """The schedules exported as one-offs (`at`), clocked or one-off in django-celery-beat."""
    return {
        "launch": {"name": "launch", "task": "ops.tasks.launch", "at": "2030-01-01T09:00:00+00:00"},
        "just-once": {"name": "just-once", "task": "ops.tasks.once", "at": just_once_at},
        # the first 09:00 in Berlin after its start_time (2098-01-01T00:00Z)
        "once-at-nine": {"name": "once-at-nine", "task": "ops.tasks.nine", "at": "2098-01-01T09:00:00+01:00"},
        "ran-once": {"name": "ran-once", "task": "ops.tasks.ran", "at": "2021-01-01T09:00:00+00:00", "enabled": False},
    }


def expected_exported_schedules(just_once_at: str) -> dict[str, dict[str, Any]]:
    """The manifest's schedules by name, as the export of full_db writes them (`just-once` is at a run-time instant)."""
    return {
        "heartbeat": {"name": "heartbeat", "task": "ops.tasks.ping", "every": "30s"},
        "ledger-sync": {
            "name": "ledger-sync",
            "task": "ledger.tasks.sync",
            "every": "1h30m",
            "args": [1, "two", None],
            "kwargs": {"full": True, "depth": {"max": 3}},
            "options": {
                "queue": "ledger",
                "exchange": "ledger-ex",
                "routing_key": "ledger.sync",
                "priority": 7,
                "headers": {"x-team": "finance"},
                "expires": 600,
            },
        },
        "every-two-days": {"name": "every-two-days", "task": "ops.tasks.rotate", "every": "2d"},
        "tick": {"name": "tick", "task": "ops.tasks.tick", "every": "250ms"},
        "nightly-report": {
            "name": "nightly-report",
            "task": "reports.tasks.nightly",
            "cron": "30 2 * * mon-fri",  # as django-celery-beat stores it
            "timezone": "Europe/Berlin",
            "enabled": False,
        },
        # Both days restricted: Celery means "both", cron would mean "either", so a crontab mapping.
        "first-monday": {
            "name": "first-monday",
            "task": "reports.tasks.monthly",
            "timezone": "UTC",
            "crontab": {"minute": "0", "hour": "6", "day_of_week": "1", "day_of_month": "1-7", "month_of_year": "*"},
        },
        "quarter-hours": {
            "name": "quarter-hours",
            "task": "ops.tasks.poll",
            "cron": "*/15 8-18 * 1,4,7,10 *",  # as django-celery-beat stores it, not respelled "*/3"
            "timezone": "America/New_York",
        },
        "expires-later": {
            "name": "expires-later",
            "task": "ops.tasks.campaign",
            "every": "1h",
            "options": {"expires": "2099-01-01T00:00:00+00:00"},
            "end_at": "2099-01-01T00:00:00+00:00",
        },
        "already-started": {"name": "already-started", "task": "ops.tasks.started", "every": "5m"},
        **expected_exported_one_offs(just_once_at),
        "not-yet": {
            "name": "not-yet",
            "task": "ops.tasks.later",
            "every": "1h",
            "start_at": "2099-06-01T00:00:00+00:00",
        },
    }


def assert_the_not_converted_are_reported(report: str, text: str, manifest: Path) -> None:
    """Every task not converted is named with its reason, on stdout and at the end of the file."""
    reasons = {
        "sunrise": "solar schedule (sunrise at 52.52",
        "broken-kwargs": "kwargs is not valid JSON",
        "args-not-a-list": "args must be a JSON list",
    }
    assert report.startswith(f"wrote 14 schedules to {manifest}\n")
    assert "NOT CONVERTED (3):" in report
    tail = text[text.index("# NOT CONVERTED (still only in django-celery-beat):") :]
    for name, reason in reasons.items():
        line = next(line for line in report.splitlines() if line.startswith(f"  {name} ("))
        assert reason in line, line
        assert f"# - {name} (" in tail and reason in tail
    assert "note: already-started: start_time 2020-01-01T00:00:00+00:00 is in the past: left out" in report
    assert (
        text.startswith("# Exported from django-celery-beat (sqlite:///")
        and "14 of 17 periodic tasks converted" in text
    )


def test_export_writes_valid_manifests_and_reports_the_rest(full_db, tmp_path):
    before = sha256(full_db)
    out = tmp_path / "schedules"
    started = dt.datetime.now(dt.timezone.utc)
    result = export("--database-url", f"sqlite:///{full_db}", str(out))
    finished = dt.datetime.now(dt.timezone.utc)
    assert result.returncode == 4, result.stdout + result.stderr  # done in part: some not converted
    assert sha256(full_db) == before, "the export must not write to the database"

    manifest = out / "django-celery-beat.yaml"
    assert sorted(p.name for p in out.iterdir()) == ["django-celery-beat.yaml"]
    schedules = {s["name"]: s for s in yaml.safe_load(manifest.read_text())["schedules"]}
    assert schedules == expected_exported_schedules(schedules["just-once"]["at"])
    # A one-off interval task runs one interval after django-celery-beat first sees it (`at` is written in
    # whole seconds, so it may round either way by under a second).
    once = dt.datetime.fromisoformat(schedules["just-once"]["at"])
    second = dt.timedelta(seconds=1)
    assert started + dt.timedelta(hours=1) - second <= once <= finished + dt.timedelta(hours=1) + second
    text = manifest.read_text()
    assert "  # Sync the ledger.\n  # Runs all day.\n  - name: ledger-sync\n" in text
    assert "# NOTE: clocked schedule: written as a one-off at 2030-01-01T09:00:00+00:00" in text
    assert "it already ran (or was disabled) in django-celery-beat: written with enabled: false" in text
    assert "manifests cannot delay" not in text + result.stdout

    assert_the_not_converted_are_reported(result.stdout, text, manifest)

    validate = redbeat_apply("validate", str(out))
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert validate.stdout == "ok: 14 schedules in 1 file\n"


def test_applied_entries_run_what_django_celery_beat_ran(full_db, tmp_path, redis_url, redis_client):
    out = tmp_path / "schedules"
    assert export("--database-url", f"sqlite:///{full_db}", str(out)).returncode == 4
    applied = redbeat_apply("--redis-url", redis_url, str(out))
    assert applied.returncode == 0, applied.stderr
    expected = oracle(full_db)
    converted = {s["name"] for s in CONVERTIBLE}
    assert converted <= set(expected)
    for name in converted:
        want = expected[name]
        definition = decode_definition(redis_client.hget(f"redbeat:{name}", "definition"))
        ext = decode_ext(redis_client.hget(f"redbeat:{name}", "ext"))
        schedule = definition["schedule"]
        if "every" in want["schedule"]:
            assert schedule.run_every.total_seconds() == want["schedule"]["every"], name
        else:
            fields = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
            assert {f: sorted(getattr(schedule, f)) for f in fields} == {f: want["schedule"][f] for f in fields}, name
            assert ext.get("timezone") == want["schedule"]["timezone"], name
        assert definition["task"] == want["task"]
        assert list(definition["args"] or []) == want["args"], name
        assert definition["kwargs"] == want["kwargs"], name
        assert definition["enabled"] == want["enabled"], name
        options = dict(want["options"])
        headers = {k: v for k, v in options.pop("headers").items() if k != "periodic_task_name"}
        if headers:
            options["headers"] = headers
        assert definition["options"] == options, name


def test_everything_converted_exits_0_and_omit_timezone_keeps_celery_redbeat_compat(tmp_path):
    db = make_db(
        tmp_path / "db.sqlite3",
        [
            {
                "name": "report",
                "task": "reports.tasks.daily",
                "crontab": {"minute": "0", "hour": "7", "timezone": "UTC"},
            },
            {"name": "ping", "task": "ops.tasks.ping", "interval": {"every": 10, "period": "seconds"}},
        ],
    )
    out = tmp_path / "out"
    result = export("--database-url", f"sqlite:///{db}", "--omit-timezone", "UTC", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"wrote 2 schedules to {out / 'django-celery-beat.yaml'}\n"
    schedules = yaml.safe_load((out / "django-celery-beat.yaml").read_text())["schedules"]
    assert schedules == [
        {"name": "ping", "task": "ops.tasks.ping", "every": "10s"},
        {"name": "report", "task": "reports.tasks.daily", "cron": "0 7 * * *"},
    ]
    compat = redbeat_apply("validate", "--compat", "celery-redbeat", str(out))
    assert compat.returncode == 0, compat.stdout + compat.stderr

    # An existing file is not overwritten without --force; nothing else changes.
    again = export("--database-url", f"sqlite:///{db}", str(out))
    assert again.returncode == 1 and "exists; use --force" in again.stderr
    assert yaml.safe_load((out / "django-celery-beat.yaml").read_text())["schedules"] == schedules
    forced = export("--database-url", f"sqlite:///{db}", "--force", "--output", "json", str(out))
    assert forced.returncode == 0, forced.stderr
    report = json.loads(forced.stdout)
    assert [c["name"] for c in report["converted"]] == ["ping", "report"] and report["not_converted"] == []
    assert "timezone" in (out / "django-celery-beat.yaml").read_text()


def test_a_django_settings_module_works_too(tmp_path):
    db = make_db(
        tmp_path / "db.sqlite3",
        [{"name": "ping", "task": "ops.tasks.ping", "interval": {"every": 1, "period": "minutes"}}],
    )
    (tmp_path / "mysite_settings.py").write_text(
        f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {str(db)!r}}}}}\n"
        "INSTALLED_APPS = ['django_celery_beat']\nUSE_TZ = True\nSECRET_KEY = 'x'\n"
    )
    out = tmp_path / "out"
    result = export(
        str(out), env={"DJANGO_SETTINGS_MODULE": "mysite_settings", "PYTHONPATH": str(tmp_path)}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load((out / "django-celery-beat.yaml").read_text())["schedules"] == [
        {"name": "ping", "task": "ops.tasks.ping", "every": "1m"}
    ]
    assert "(settings mysite_settings)" in (out / "django-celery-beat.yaml").read_text()


def test_errors_write_nothing(tmp_path):
    out = tmp_path / "out"
    missing = export("--database-url", f"sqlite:///{tmp_path / 'nope.sqlite3'}", str(out))
    assert missing.returncode == 1 and "no such SQLite database" in missing.stderr

    import sqlite3

    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    no_tables = export("--database-url", f"sqlite:///{empty}", str(out))
    assert no_tables.returncode == 1
    assert "cannot read django_celery_beat's tables" in no_tables.stderr and "migrations" in no_tables.stderr

    nothing = export(str(out))
    assert nothing.returncode == 1 and "--database-url" in nothing.stderr
    scheme = export("--database-url", "oracle://u:secret@h/db", str(out))
    assert scheme.returncode == 1 and "unsupported database URL scheme" in scheme.stderr
    assert "secret" not in scheme.stderr
    assert not out.exists()


def test_database_urls():
    from reconciler.migrate.from_django import database_settings, redact_url

    pg = database_settings("postgresql://app:p%40ss@db.example.com:6543/beat?sslmode=require")
    assert pg == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "beat",
        "USER": "app",
        "PASSWORD": "p@ss",
        "HOST": "db.example.com",
        "PORT": "6543",
        "OPTIONS": {"sslmode": "require", "options": "-c default_transaction_read_only=on"},
    }
    assert database_settings("mysql://u@localhost/beat")["ENGINE"] == "django.db.backends.mysql"
    assert redact_url("postgresql://app:hunter2@db/beat") == "postgresql://app:***@db/beat"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"


def test_interval_and_crontab_conversion_units():
    from reconciler.migrate.from_django import crontab_schedule, interval_every

    assert interval_every(1, "days") == "1d"
    assert interval_every(36, "hours") == "1d12h"
    assert interval_every(1500, "microseconds") == 0.0015  # below a millisecond's precision: seconds
    with pytest.raises(ValueError, match="greater than 0"):
        interval_every(0, "seconds")
    with pytest.raises(ValueError, match="unknown interval period"):
        interval_every(1, "weeks")
    # Full day names are kept as written, as Celery reads them (docs/manifests.md).
    assert crontab_schedule(
        {"minute": "0", "hour": "9", "day_of_week": "monday-friday", "day_of_month": "*", "month_of_year": "*"}
    ) == {"cron": "0 9 * * monday-friday"}
    with pytest.raises(ValueError, match="is not valid"):
        crontab_schedule({"minute": "61", "hour": "*", "day_of_week": "*", "day_of_month": "*", "month_of_year": "*"})


def test_switching_from_celery_redbeat_export_then_adopt(tmp_path, redis_url, redis_client):
    """The README's commands: entries saved by code (as with celery-redbeat) -> export --all -> --adopt."""
    from datetime import timedelta

    from celery import Celery
    from celery.schedules import crontab, schedule

    from redbeat import RedBeatSchedulerEntry

    app = Celery("switch", set_as_current=False)
    app.conf.update(redbeat_redis_url=redis_url, timezone="UTC")
    last = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    RedBeatSchedulerEntry("ping", "ops.tasks.ping", schedule(timedelta(seconds=30)), app=app, last_run_at=last).save()
    RedBeatSchedulerEntry(
        "report", "reports.tasks.daily", crontab(minute=0, hour=7), kwargs={"fmt": "pdf"}, app=app, last_run_at=last
    ).save()
    meta = {name: redis_client.hget(f"redbeat:{name}", "meta") for name in ("ping", "report")}
    with contextlib.suppress(AttributeError):
        app.redbeat_redis.close()  # type: ignore[attr-defined]

    out = tmp_path / "exported"
    exported = redbeat_apply("export", "--all", "--redis-url", redis_url, str(out))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == f"wrote 2 schedules to {out / 'unmanaged.yaml'}\n"

    plain = redbeat_apply("--dry-run", "--redis-url", redis_url, str(out))
    assert plain.returncode == 1 and "pass --adopt to take it over" in plain.stdout + plain.stderr
    dry = redbeat_apply("--dry-run", "--adopt", "--redis-url", redis_url, "--output", "json", str(out))
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert [(c["op"], c["name"], c["fields"]) for c in plan["changes"]] == [
        ("adopt", "ping", []),
        ("adopt", "report", []),
    ]
    adopted = redbeat_apply("--adopt", "--redis-url", redis_url, str(out))
    assert adopted.returncode == 0, adopted.stderr
    assert {name: redis_client.hget(f"redbeat:{name}", "meta") for name in meta} == meta, "run state is kept"
    again = redbeat_apply("--redis-url", redis_url, str(out))
    assert again.returncode == 0 and again.stdout == "No changes. 2 unchanged.\n"


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_db() -> Any:
    """A database of the test's own on the machine's PostgreSQL (127.0.0.1:5432, trust auth), dropped afterwards.

    Fails, never skips, when PostgreSQL is not there: CI runs on this kind of machine.
    """
    import uuid

    import psycopg  # in the test extra: a missing driver is a failure too

    name = f"redbeat_migrate_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not running at {PG_ADMIN} (user postgres, trust auth): {exc}")
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.slow
def test_export_from_postgresql(postgres_db, tmp_path, redis_url, redis_client):
    tasks = [
        CONVERTIBLE[1],
        CONVERTIBLE[4],
        CONVERTIBLE[7],
        RUN_ONCE_AND_WINDOWS[0],
        RUN_ONCE_AND_WINDOWS[4],
        NOT_CONVERTIBLE[0],
    ]
    make_db(postgres_db, tasks)
    out = tmp_path / "schedules"
    exported = export("--database-url", postgres_db, str(out))
    assert exported.returncode == 4, exported.stdout + exported.stderr  # the solar task is not converted
    schedules = {s["name"]: s for s in yaml.safe_load((out / "django-celery-beat.yaml").read_text())["schedules"]}
    assert schedules["nightly-report"] == {
        "name": "nightly-report",
        "task": "reports.tasks.nightly",
        "cron": "30 2 * * mon-fri",
        "timezone": "Europe/Berlin",
        "enabled": False,
    }
    assert schedules["launch"]["at"] == "2030-01-01T09:00:00+00:00"
    assert schedules["not-yet"]["start_at"] == "2099-06-01T00:00:00+00:00"
    assert schedules["expires-later"]["end_at"] == "2099-01-01T00:00:00+00:00"
    assert schedules["ledger-sync"]["kwargs"] == {"full": True, "depth": {"max": 3}}
    assert "sunrise (garden.tasks.water): solar schedule" in exported.stdout
    applied = redbeat_apply("--redis-url", redis_url, str(out))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert redis_client.zcard("redbeat::schedule") == 5


def test_sub_millisecond_intervals_are_noted():
    from types import SimpleNamespace

    from reconciler.migrate.from_django import _schedule_part

    task = SimpleNamespace(interval_id=1, interval=SimpleNamespace(every=1500, period="microseconds"))
    part, notes = _schedule_part(task, None)
    assert part == {"every": 0.0015}
    assert notes == ["interval of 1500 microseconds is not a whole number of milliseconds: written as 0.0015"]
    task.interval.every = 250_000
    assert _schedule_part(task, None) == ({"every": "250ms"}, [])


@pytest.mark.slow
def test_the_documented_commands_run(postgres_db, tmp_path, redis_url):
    """Every command of docs/migrate-django.md, as written, in order."""
    doc = (ROOT / "docs" / "migrate-django.md").read_text()
    blocks = [block.split("```", 1)[0] for block in doc.split("```sh\n")[1:]]
    commands = [line for block in blocks for line in block.splitlines() if line.strip()]
    assert len(commands) == 4, commands
    tasks = [CONVERTIBLE[0], RUN_ONCE_AND_WINDOWS[0], NOT_CONVERTIBLE[0]]
    make_db(tmp_path / "db.sqlite3", tasks)
    make_db(postgres_db, tasks)
    env = {
        **clean_env(),
        "DATABASE_URL": postgres_db,
        "REDBEAT_REDIS_URL": redis_url,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    expected = [4, 4, 0, 0]  # the solar task is not converted: exit 4 (done in part), the rest written
    for command, code in zip(commands, expected, strict=False):
        result = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == code, f"{command}\n{result.stdout}{result.stderr}"
        assert "Traceback" not in result.stderr
    names = {
        s["name"] for s in yaml.safe_load((tmp_path / "schedules" / "django-celery-beat.yaml").read_text())["schedules"]
    }
    assert names == {"heartbeat", "launch"}
