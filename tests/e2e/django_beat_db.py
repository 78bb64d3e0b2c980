"""Create a real django-celery-beat database and fill it, as a Django project would.

    python django_beat_db.py DB TASKS_JSON     # create and fill
    python django_beat_db.py DB --dump          # what django-celery-beat's beat would run

DB is a SQLite file or a database URL (postgresql://...). Runs
django-celery-beat's own migrations on it (a new SQLite file, or an empty database), then creates
each periodic task of TASKS_JSON (a list of objects) through the ORM, the way
the Django admin does. Its own process, so Django's settings never leak
into the test run.

A task object: ``name``, ``task``, one schedule: ``interval: {every, period}``,
``crontab: {minute, hour, day_of_week, day_of_month, month_of_year, timezone}``,
``solar: {event, latitude, longitude}`` or ``clocked: "ISO datetime"``; any
other key is a PeriodicTask field (``args``/``kwargs``/``headers`` as JSON
text, datetimes as ISO strings).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import zoneinfo


def setup(db: str) -> None:
    import django
    from django.conf import settings

    if "://" in db:
        from reconciler.migrate.from_django import database_settings

        database = database_settings(db, read_only=False)
    else:
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": db}
    settings.configure(
        DATABASES={"default": database},
        INSTALLED_APPS=["django_celery_beat"],
        USE_TZ=True,
        TIME_ZONE="UTC",
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


def dump() -> None:
    """Each enabled-or-not task as django-celery-beat's own ModelEntry sees it (the oracle)."""
    from celery import Celery
    from celery.schedules import crontab, schedule
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    app = Celery("dump", set_as_current=False)
    out = {}
    for task in PeriodicTask.objects.all():
        if task.solar_id or task.clocked_id:
            continue
        try:
            json.loads(task.args or "[]"), json.loads(task.kwargs or "{}")
        except ValueError:
            continue  # ModelEntry would disable (write) it
        entry = ModelEntry(task, app=app)
        sched = entry.schedule
        if isinstance(sched, crontab):
            kind = {
                f: sorted(getattr(sched, f)) for f in ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
            }
            kind["timezone"] = str(task.crontab.timezone)
        else:
            assert isinstance(sched, schedule)
            kind = {"every": sched.run_every.total_seconds()}
        options = dict(entry.options)
        if "expires" in options and not isinstance(options["expires"], int):
            options["expires"] = options["expires"].isoformat()
        out[task.name] = {
            "task": entry.task,
            "schedule": kind,
            "args": list(entry.args),
            "kwargs": entry.kwargs,
            "options": options,
            "enabled": task.enabled,
        }
    print(json.dumps(out))


def main(db_file: str, tasks_json: str) -> None:
    setup(db_file)
    from django.core.management import call_command

    call_command("migrate", "django_celery_beat", verbosity=0, interactive=False)

    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    for spec in json.loads(tasks_json):
        fields = dict(spec)
        if "interval" in fields:
            fields["interval"], _ = IntervalSchedule.objects.get_or_create(**fields.pop("interval"))
        if "crontab" in fields:
            cron = dict(fields.pop("crontab"))
            cron["timezone"] = zoneinfo.ZoneInfo(cron.pop("timezone", "UTC"))
            fields["crontab"], _ = CrontabSchedule.objects.get_or_create(**cron)
        if "solar" in fields:
            fields["solar"], _ = SolarSchedule.objects.get_or_create(**fields.pop("solar"))
        if "clocked" in fields:
            fields["clocked"], _ = ClockedSchedule.objects.get_or_create(
                clocked_time=dt.datetime.fromisoformat(fields.pop("clocked"))
            )
        for key in ("expires", "start_time", "last_run_at"):
            if isinstance(fields.get(key), str):
                fields[key] = dt.datetime.fromisoformat(fields[key])
        PeriodicTask.objects.create(**fields)
    print(PeriodicTask.objects.count())


if __name__ == "__main__":
    if sys.argv[2] == "--dump":
        setup(sys.argv[1])
        dump()
    else:
        main(sys.argv[1], sys.argv[2])
