"""statics_changes: what a beat_schedule sync writes, decided without Redis."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from celery import Celery
from celery.schedules import schedule

from redbeat import RedBeatSchedulerEntry
from redbeat.codec import encode_meta
from redbeat.statics import statics_changes

T = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def entries(app, **everies):
    return {n: RedBeatSchedulerEntry(n, "t." + n, schedule(timedelta(seconds=s)), app=app, last_run_at=T)
            for n, s in everies.items()}


def test_unchanged_statics_write_nothing():
    app = Celery(set_as_current=False)
    current = entries(app, a=10, b=20)
    stored = {n: (e._definition_json(), encode_meta(T), None, 5.0) for n, e in current.items()}
    assert statics_changes(current, stored, {"a", "b"}, ["a", "b"]).empty


def test_changed_static_keeps_stored_run_state_and_is_rescored_from_it():
    app = Celery(set_as_current=False)
    old = entries(app, a=10)["a"]
    new = entries(app, a=60)
    ran = T - timedelta(seconds=30)
    changes = statics_changes(new, {"a": (old._definition_json(), encode_meta(ran), None, 1.0)}, {"a"}, ["a"])
    definition, ext, meta, score = changes.writes["a"]
    assert (ext, meta) == (None, None)  # meta kept as stored
    assert score == (ran + timedelta(seconds=60)).timestamp()
    assert changes.removed == frozenset() and changes.record_names is False


def test_removed_and_new_names():
    app = Celery(set_as_current=False)
    new = entries(app, fresh=5)
    changes = statics_changes(new, {"fresh": (None, None, None, None)}, {"gone"}, ["fresh"])
    assert changes.removed == frozenset({"gone"})
    assert changes.record_names is True
    assert changes.writes["fresh"][2] == encode_meta(T)
