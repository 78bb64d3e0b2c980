"""Load every entry of P:schedule with celery-redbeat 2.4.2 and print what it sees, as JSON.

Run ONLY with the celery-redbeat venv python (see CONTRIBUTING.md):

    .cache/celery-redbeat-venv/bin/python tests/compat/cr_read.py \
        --redis-url redis://127.0.0.1:PORT/0 --prefix redbeat: [--now 2026-11-25T12:00:00+00:00]

Output: {"entries": [...], "errors": [...]} (sorted by key). Each entry is read with
`RedBeatSchedulerEntry.from_key` and reported as
{key, name, task, args, kwargs, options, enabled, schedule_type, schedule, last_run_at,
last_run_at_tz, total_run_count, due_at, score, zset_score, is_due}; `score` is the score
celery-redbeat would write now (Entry.score), `zset_score` the one stored. An entry that fails to
load or evaluate lands in `errors` as {key, error: repr(exc)} and the rest are still read.
"""

from __future__ import annotations

from _cr_common import app_from_command_line, emit, guard

guard()

from celery.schedules import crontab, schedule  # noqa: E402

from redbeat import RedBeatSchedulerEntry  # noqa: E402
from redbeat.schedulers import get_redis  # noqa: E402
from redbeat.schedules import rrule  # noqa: E402

RRULE_FIELDS = ("interval", "wkst", "count", "bysetpos", "bymonth", "bymonthday", "byyearday",
                "byeaster", "byweekno", "byweekday", "byhour", "byminute", "bysecond")
CRON_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


def describe_schedule(sched) -> tuple[str, dict]:
    # Order matters as in celery-redbeat's encoder: rrule and crontab before the interval class.
    if isinstance(sched, rrule):
        fields = {name: getattr(sched, name) for name in RRULE_FIELDS}
        fields["freq"] = sched.freq
        fields["dtstart"] = sched.dtstart.isoformat() if sched.dtstart else None
        fields["until"] = sched.until.isoformat() if sched.until else None
        return "rrule", fields
    if isinstance(sched, crontab):
        return "crontab", {name: getattr(sched, "_orig_" + name) for name in CRON_FIELDS}
    if isinstance(sched, schedule):
        return "interval", {"run_every": sched.run_every.total_seconds(), "relative": bool(sched.relative)}
    return type(sched).__name__, {"repr": repr(sched)}


def describe(entry, key: str, zset_score) -> dict:
    schedule_type, fields = describe_schedule(entry.schedule)
    due_at = entry.due_at
    is_due = entry.is_due()
    last = entry.last_run_at
    return {
        "key": key,
        "name": entry.name,
        "task": entry.task,
        "args": entry.args,
        "kwargs": entry.kwargs,
        "options": entry.options,
        "enabled": entry.enabled,
        "schedule_type": schedule_type,
        "schedule": fields,
        "last_run_at": last.isoformat() if last is not None else None,
        "last_run_at_tz": repr(last.tzinfo) if last is not None else None,
        "total_run_count": entry.total_run_count,
        "due_at": due_at.isoformat() if due_at is not None else None,
        "score": entry.score,
        "zset_score": zset_score,
        "is_due": [bool(is_due[0]), None if is_due[1] is None else float(is_due[1])],
    }


def read_all(app) -> dict:
    client = get_redis(app)
    members = client.zrange(app.redbeat_conf.schedule_key, 0, -1, withscores=True)
    entries, errors = [], []
    for key, zscore in sorted(members):
        zscore = int(zscore) if float(zscore).is_integer() else zscore
        try:
            entry = RedBeatSchedulerEntry.from_key(key, app=app)
            entries.append(describe(entry, key, zscore))
        except Exception as exc:  # noqa: BLE001 - report every failure, keep reading
            errors.append({"key": key, "error": repr(exc)})
    return {"entries": entries, "errors": errors}


def main() -> None:
    app, _now = app_from_command_line(__doc__.splitlines()[0])
    emit(read_all(app))


if __name__ == "__main__":
    main()
