"""Pause and resume against a real redis-server: beat skips a paused entry, resumes by itself, catch_up decides."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
from support.beat import PINNED_NOW, definition, meta, recording_scheduler_class
from support.celery_redbeat_venv import run_compat_script

from reconciler.core.errors import RedbeatError
from reconciler.operating.operate import pause_entry, resume_entry, status_pauses
from redbeat.keys import KeySpace
from redbeat.operator import Pause

UTC = timezone.utc
NOW = PINNED_NOW  # the `app` fixture's clock (tests/integration/conftest.py)
KEYS = KeySpace()
Recording = recording_scheduler_class()


def add(client, name, *, every=60.0, ext=None):
    fields = {"definition": definition(name, "tasks." + name, every), "meta": meta(NOW - timedelta(seconds=every))}
    if ext is not None:
        fields["ext"] = json.dumps(ext)
    client.hset(KEYS.entry(name), mapping=fields)
    client.zadd(KEYS.schedule, {KEYS.entry(name): NOW.timestamp()})


def test_a_paused_entry_is_skipped_until_its_pause_ends_then_runs_once(app, redis_client):
    add(redis_client, "report")
    add(redis_client, "other")
    until = NOW + timedelta(minutes=5)
    pause_entry(redis_client, KEYS, "report", Pause("alice@host", NOW.timestamp(), until.timestamp(), "incident 4711"))
    scheduler = Recording(app=app)
    scheduler.tick()
    assert scheduler.sent_names == ["other"]
    assert redis_client.zscore(KEYS.schedule, KEYS.entry("report")) == until.timestamp()  # looked at again then
    app.now.set(until + timedelta(seconds=1))
    scheduler.tick()
    # five slots were missed; the default catch_up runs the entry once, on its latest slot
    [run] = [sent for sent in scheduler.sent if sent.name == "report"]
    assert run.last_run_at == until


def test_an_indefinite_pause_holds_until_resume_makes_the_entry_due_at_once(app, redis_client):
    add(redis_client, "report")
    pause_entry(redis_client, KEYS, "report", Pause("bob@host", NOW.timestamp(), None, ""))
    scheduler = Recording(app=app)
    for minutes in (0, 3, 10):
        app.now.set(NOW + timedelta(minutes=minutes))
        redis_client.zadd(KEYS.schedule, {KEYS.entry("report"): 0})
        scheduler.tick()
    assert scheduler.sent_names == []
    resume_entry(redis_client, KEYS, "report", (NOW + timedelta(minutes=10)).timestamp())
    assert not redis_client.hexists(KEYS.entry("report"), "pause")
    scheduler.tick()
    assert scheduler.sent_names == ["report"]


def test_an_unreadable_pause_field_holds_the_entry_and_the_others_run(app, redis_client):
    add(redis_client, "held")
    add(redis_client, "free")
    redis_client.hset(KEYS.entry("held"), "pause", b"\x00not json")
    scheduler = Recording(app=app)
    scheduler.tick()
    assert scheduler.sent_names == ["free"]


def test_bad_requests_write_nothing(redis_client):
    add(redis_client, "report")
    before = {key: redis_client.dump(key) for key in redis_client.keys("*")}
    with pytest.raises(RedbeatError, match="no entry named nope"):
        pause_entry(redis_client, KEYS, "nope", Pause("a", 1.0))
    with pytest.raises(RedbeatError, match="report is not paused"):
        resume_entry(redis_client, KEYS, "report", NOW.timestamp())
    with pytest.raises(RedbeatError, match="no entry named"):
        resume_entry(redis_client, KEYS, "gone\x1b[2J", NOW.timestamp())
    assert {key: redis_client.dump(key) for key in redis_client.keys("*")} == before


def test_status_shows_the_pause_in_force_only(redis_client):
    add(redis_client, "held")
    add(redis_client, "expired")
    pause_entry(redis_client, KEYS, "held", Pause("alice", 0.0, NOW.timestamp() + 3600, "incident [4711]"))
    pause_entry(redis_client, KEYS, "expired", Pause("alice", 0.0, NOW.timestamp() - 1, ""))
    rows = [{"name": "held", "state": "active"}, {"name": "expired", "state": "active"}]
    status_pauses(rows, redis_client, KEYS, NOW.timestamp())
    assert rows[0] == {"name": "held", "state": "paused",
                       "paused": "paused by alice until 2026-11-25 13:00:00 UTC: incident [4711]"}
    assert rows[1] == {"name": "expired", "state": "active", "paused": None}


@pytest.mark.compat
def test_celery_redbeat_reads_paused_triggered_and_resumed_entries(celery_redbeat_python, redis_client, redis_url):
    from reconciler.operating.operate import trigger_entry
    from redbeat.operator import Trigger

    for name in ("report", "rebuild", "resumed"):
        add(redis_client, name)
    pause_entry(redis_client, KEYS, "report", Pause("alice", NOW.timestamp(), None, "incident ü"))
    trigger_entry(redis_client, KEYS, "rebuild", Trigger("bob", NOW.timestamp(), 0.0, "hotfix"))
    pause_entry(redis_client, KEYS, "resumed", Pause("alice", NOW.timestamp(), None, ""))
    resume_entry(redis_client, KEYS, "resumed", NOW.timestamp())
    read = json.loads(run_compat_script("cr_read.py", "--redis-url", redis_url, "--prefix", "redbeat:",
                                        "--now", NOW.isoformat(), python=celery_redbeat_python))
    assert read["errors"] == []
    assert sorted((e["name"], e["task"]) for e in read["entries"]) == [
        ("rebuild", "tasks.rebuild"), ("report", "tasks.report"), ("resumed", "tasks.resumed")]
