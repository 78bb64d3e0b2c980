"""statics_changes: what a beat_schedule sync writes, decided without Redis."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from celery import Celery
from celery.schedules import schedule

from redbeat import RedBeatSchedulerEntry
from redbeat.codec import encode_meta
from redbeat.statics import statics_changes

T = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def new_app() -> Celery:
    """An app with redbeat_redis_url set, so building an entry does not warn about the broker fallback."""
    app = Celery(set_as_current=False)
    app.conf.redbeat_redis_url = "redis://127.0.0.1:1/0"
    return app


def entries(app, **everies):
    return {n: RedBeatSchedulerEntry(n, "t." + n, schedule(timedelta(seconds=s)), app=app, last_run_at=T)
            for n, s in everies.items()}


def test_unchanged_statics_write_nothing():
    app = new_app()
    current = entries(app, a=10, b=20)
    stored = {n: (e._definition_json(), encode_meta(T), None, 5.0) for n, e in current.items()}
    assert statics_changes(current, stored, {"a", "b"}, ["a", "b"]).empty


def test_changed_static_keeps_stored_run_state_and_is_rescored_from_it():
    app = new_app()
    old = entries(app, a=10)["a"]
    new = entries(app, a=60)
    ran = T - timedelta(seconds=30)
    changes = statics_changes(new, {"a": (old._definition_json(), encode_meta(ran), None, 1.0)}, {"a"}, ["a"])
    definition, ext, meta, score = changes.writes["a"]
    assert (ext, meta) == (None, None)  # meta kept as stored
    assert score == (ran + timedelta(seconds=60)).timestamp()
    assert changes.removed == frozenset() and changes.record_names is False


def test_removed_and_new_names():
    app = new_app()
    new = entries(app, fresh=5)
    changes = statics_changes(new, {"fresh": (None, None, None, None)}, {"gone"}, ["fresh"])
    assert changes.removed == frozenset({"gone"})
    assert changes.record_names is True
    assert changes.writes["fresh"][2] == encode_meta(T)


def test_fast_definition_equals_the_entrys_own_json():
    from celery.schedules import crontab

    from redbeat.schedules import rrule
    from redbeat.statics import fast_definition

    app = new_app()
    items = {
        "number": {"task": "t.a", "schedule": 30},
        "float": {"task": "t.a", "schedule": 0.5, "args": (1, 2), "kwargs": {"k": "v"}, "options": {"queue": "q"}},
        "delta": {"task": "t.a", "schedule": timedelta(minutes=5), "relative": True},
        "interval": {"task": "t.a", "schedule": schedule(timedelta(seconds=7))},
        "cron": {"task": "t.b", "schedule": crontab(minute="*/5", hour=[1, 2])},
        "rrule": {"task": "t.c", "schedule": rrule("DAILY", dtstart=T, byhour=[3])},
        "disabled": {"task": "t.d", "schedule": 10, "enabled": False},
        "empty-args": {"task": "t.e", "schedule": 10, "args": []},
    }
    for name, item in items.items():
        entry = RedBeatSchedulerEntry(**dict(item, name=name, app=app))
        assert fast_definition(name, item) == (entry._definition_json(), None), name
    assert fast_definition("odd", {"task": "t", "schedule": 5, "ext": {"jitter": 1}}) is None

