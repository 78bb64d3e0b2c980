"""RedBeatSchedulerEntry against a real redis-server: celery-redbeat's API, without its bugs."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
from celery.schedules import crontab, schedule
from support.beat import PINNED_NOW, current, make_app, recording_scheduler_class

from redbeat import RedBeatSchedulerEntry as Entry
from redbeat.schedules import rrule

UTC = timezone.utc
NOW = PINNED_NOW  # the `app` fixture's clock (tests/integration/conftest.py)
SCHEDULE = "redbeat::schedule"


def zscore(client, name):
    return client.zscore(SCHEDULE, "redbeat:" + name)


def stored(client, name):
    raw = client.hgetall("redbeat:" + name)
    return {k: json.loads(v) for k, v in raw.items()}


def tick_at(app, now):
    app.now.set(now)
    scheduler = recording_scheduler_class()(app=app, lazy=True)
    scheduler.tick()
    return scheduler.sent_names


def test_construct_and_save(app, redis_client):
    entry = Entry("ping", "tasks.ping", schedule(30), args=(1, "a"), kwargs={"k": 2},
                  options={"queue": "q"}, app=app)
    assert entry.key == "redbeat:ping"
    assert (entry.name, entry.task, entry.args, entry.kwargs, entry.options, entry.enabled) == \
        ("ping", "tasks.ping", (1, "a"), {"k": 2}, {"queue": "q"}, True)
    assert entry.last_run_at == NOW  # celery's default: constructed now
    assert entry.save() is entry
    assert redis_client.hget("redbeat:ping", "definition") == (
        '{"name": "ping", "task": "tasks.ping", "args": [1, "a"], "kwargs": {"k": 2}, "options": {"queue": "q"}, '
        '"schedule": {"__type__": "interval", "every": 30.0, "relative": false}, "enabled": true}'
    )
    assert stored(redis_client, "ping")["meta"] == {"last_run_at": {
        "__type__": "datetime", "year": 2026, "month": 11, "day": 25, "hour": 12, "minute": 0, "second": 0,
        "microsecond": 0, "timezone": "UTC"}}
    assert zscore(redis_client, "ping") == NOW.timestamp() + 30
    assert set(redis_client.hkeys("redbeat:ping")) == {"definition", "meta"}  # no ext without extensions


def test_save_is_an_upsert_that_keeps_run_state_and_due_time(app, redis_client):
    """celery-redbeat #313: saving a fresh Entry for an existing name reset its score."""
    Entry("job", "tasks.job", schedule(600), app=app).save()
    app.now.set(NOW + timedelta(minutes=25))
    loaded = Entry.from_key("redbeat:job", app=app)
    loaded.next(last_run_at=NOW + timedelta(minutes=20))  # a run recorded at 12:20
    assert zscore(redis_client, "job") == (NOW + timedelta(minutes=30)).timestamp()
    meta_before = redis_client.hget("redbeat:job", "meta")

    app.now.set(NOW + timedelta(minutes=27))
    again = Entry("job", "tasks.job", schedule(600), args=[1], app=app).save()  # a fresh object: last_run_at=now
    assert redis_client.hget("redbeat:job", "meta") == meta_before
    assert zscore(redis_client, "job") == (NOW + timedelta(minutes=30)).timestamp()
    assert again.last_run_at == NOW + timedelta(minutes=20) and again.total_run_count == 1
    assert json.loads(redis_client.hget("redbeat:job", "definition"))["args"] == [1]


def test_changed_schedule_takes_effect_with_one_save(app, redis_client):
    """celery-redbeat #221/#232/#290: a new schedule waited for the old due time (or a second save)."""
    Entry("report", "tasks.report", schedule(3600), app=app).save()
    assert zscore(redis_client, "report") == (NOW + timedelta(hours=1)).timestamp()
    Entry("report", "tasks.report", schedule(60), app=app).save()
    assert zscore(redis_client, "report") == (NOW + timedelta(minutes=1)).timestamp()
    assert tick_at(app, NOW + timedelta(minutes=1)) == ["report"]
    Entry("report", "tasks.report", crontab(minute="30"), app=app).save()
    assert zscore(redis_client, "report") == (NOW + timedelta(minutes=30)).timestamp()


def test_delete(app, redis_client):
    entry = Entry("gone", "tasks.gone", schedule(60), app=app).save()
    entry.delete()
    assert redis_client.exists("redbeat:gone") == 0
    assert redis_client.zscore(SCHEDULE, "redbeat:gone") is None


def test_from_key(app, redis_client):
    Entry("loaded", "tasks.load", crontab(minute="*/5"), args=[1], kwargs={"a": 1}, options={"priority": 3},
          app=app).save()
    entry = Entry.from_key("redbeat:loaded", app=app)
    assert isinstance(entry, Entry)
    assert (entry.name, entry.task, entry.args, entry.kwargs, entry.options) == \
        ("loaded", "tasks.load", [1], {"a": 1}, {"priority": 3})
    assert entry.schedule == crontab(minute="*/5")
    assert entry.last_run_at == NOW
    assert entry.enabled is True


def test_from_key_of_a_missing_entry_is_a_key_error(app):
    with pytest.raises(KeyError, match="redbeat:missing"):
        Entry.from_key("redbeat:missing", app=app)


def test_from_key_of_a_never_run_entry_has_no_last_run_at(app, redis_client):
    redis_client.hset("redbeat:fresh", mapping={
        "definition": json.dumps({"name": "fresh", "task": "t", "args": None, "kwargs": {}, "options": {},
                                  "schedule": {"__type__": "interval", "every": 60.0, "relative": False},
                                  "enabled": True}),
        "meta": '{"last_run_at": null}'})
    entry = Entry.from_key("redbeat:fresh", app=app)
    assert entry.last_run_at is None and entry.total_run_count == 0
    assert entry.due_at == NOW and entry.is_due() == (True, 60.0)


def test_reschedule(app, redis_client):
    entry = Entry("moved", "tasks.move", schedule(300), app=app).save()
    entry.next()
    entry = Entry.from_key("redbeat:moved", app=app)
    entry.reschedule(last_run_at=NOW + timedelta(hours=1))
    assert zscore(redis_client, "moved") == (NOW + timedelta(hours=1, minutes=5)).timestamp()
    meta = stored(redis_client, "moved")["meta"]
    assert meta["last_run_at"]["hour"] == 13 and meta["total_run_count"] == 1
    entry.reschedule()  # default: now
    assert zscore(redis_client, "moved") == (NOW + timedelta(minutes=5)).timestamp()


def test_is_due(app):
    overdue = Entry("o", "t", schedule(60), last_run_at=NOW - timedelta(minutes=5, seconds=10), app=app)
    assert overdue.is_due() == (True, 50.0)  # coalesced to the 11:59:50 slot, next at 12:00:50
    waiting = Entry("w", "t", schedule(60), last_run_at=NOW - timedelta(seconds=15), app=app)
    assert waiting.is_due() == (False, 45.0)
    assert Entry("d", "t", schedule(60), enabled=False, last_run_at=NOW - timedelta(hours=1), app=app).is_due() == \
        (False, 5.0)
    cron = Entry("c", "t", crontab(minute="0"), last_run_at=NOW - timedelta(hours=1), app=app)
    assert cron.is_due() == (True, 3600.0)
    finished = Entry("f", "t", rrule("HOURLY", dtstart=NOW - timedelta(hours=3), count=2),
                     last_run_at=NOW - timedelta(hours=2), app=app)
    assert finished.is_due() == (False, None)


def test_due_at_is_right_for_crontab(app):
    """celery-redbeat #307: last_run_at + remaining_estimate measured from *now* gave 13:15 here."""
    app.now.set(NOW + timedelta(minutes=45))
    entry = Entry("cron", "t", crontab(minute="0", hour="*/2"), last_run_at=NOW, app=app)
    assert entry.due_at == NOW + timedelta(hours=2)
    assert entry.score == (NOW + timedelta(hours=2)).timestamp()
    # overdue: due_at is the slot it is due for, still in the past
    app.now.set(NOW + timedelta(hours=5))
    assert entry.due_at == NOW + timedelta(hours=2)


def test_score_keeps_the_fraction_and_rank(app, redis_client):
    fast = Entry("fast", "t", schedule(0.5), app=app).save()
    slow = Entry("slow", "t", schedule(60), app=app).save()
    assert isinstance(fast.score, float) and fast.score == NOW.timestamp() + 0.5
    assert zscore(redis_client, "fast") == NOW.timestamp() + 0.5
    assert (fast.rank, slow.rank) == (0, 1)


def test_next_records_a_run(app, redis_client):
    entry = Entry("n", "tasks.n", schedule(60), app=app).save()
    app.now.set(NOW + timedelta(seconds=60))
    following = next(entry)
    assert isinstance(following, Entry) and following is not entry
    assert following.last_run_at == NOW + timedelta(seconds=60) and following.total_run_count == 1
    meta = stored(redis_client, "n")["meta"]
    assert meta["total_run_count"] == 1 and meta["last_run_at"]["minute"] == 1
    assert zscore(redis_client, "n") == NOW.timestamp() + 120
    entry.next(last_run_at=NOW + timedelta(seconds=90), only_update_last_run_at=True)
    assert stored(redis_client, "n")["meta"]["total_run_count"] == 0


def test_disabled_entry_is_out_of_the_due_index(app, redis_client):
    Entry("off", "t", schedule(60), enabled=False, app=app).save()
    assert zscore(redis_client, "off") == -1
    assert Entry.from_key("redbeat:off", app=app).enabled is False
    assert tick_at(app, NOW + timedelta(hours=1)) == []
    Entry("off", "t", schedule(60), enabled=True, app=app).save()
    assert zscore(redis_client, "off") == (NOW + timedelta(seconds=60)).timestamp()
    assert tick_at(app, NOW + timedelta(hours=1)) == ["off"]


def test_rrule_entry_runs_its_dtstart_and_never_before(app, redis_client):
    start = NOW + timedelta(hours=2)
    entry = Entry("rr", "t", rrule("HOURLY", dtstart=start, count=2), app=app)
    entry.last_run_at = None
    entry.save()
    assert zscore(redis_client, "rr") == start.timestamp()
    assert tick_at(app, start - timedelta(seconds=1)) == []
    assert tick_at(app, start) == ["rr"]
    assert zscore(redis_client, "rr") == (start + timedelta(hours=1)).timestamp()
    assert tick_at(app, start + timedelta(hours=1)) == ["rr"]
    assert zscore(redis_client, "rr") == -1
    loaded = Entry.from_key("redbeat:rr", app=app)
    assert loaded.schedule == entry.schedule and loaded.total_run_count == 2


def test_new_crontab_entry_does_not_run_at_creation(app, redis_client):
    """celery-redbeat #79/#81/#154: a crontab saved at 12:07 ran at once, then again at 12:15."""
    app.now.set(NOW + timedelta(minutes=7))
    entry = Entry("cron-new", "t", crontab(minute="*/15"), app=app)
    entry.last_run_at = None
    entry.save()
    assert zscore(redis_client, "cron-new") == (NOW + timedelta(minutes=15)).timestamp()
    assert tick_at(app, NOW + timedelta(minutes=7)) == []
    assert tick_at(app, NOW + timedelta(minutes=15)) == ["cron-new"]


def test_entry_methods_work_with_the_default_app(redis_url, redis_client):
    """celery-redbeat's helpers take app=None and use the current app."""
    app = make_app(redis_url, now=NOW, redbeat_lock_key=None)
    with current(app):
        Entry("default-app", "t", schedule(60), app=app).save()
        entry = Entry.from_key("redbeat:default-app")
        assert entry.task == "t"
        assert Entry.load_meta("redbeat:default-app")["last_run_at"] == NOW
        assert Entry.load_definition("redbeat:default-app")["task"] == "t"
