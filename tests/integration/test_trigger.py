"""Run now: the request in Redis, taken once by the leading beat through its fenced path, phase kept."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from support.beat import current, definition, make_app, meta, recording_scheduler_class

from reconciler.core.errors import RedbeatError
from reconciler.operating.operate import trigger_entry
from redbeat.history import read_runs
from redbeat.keys import KeySpace
from redbeat.operator import TRIGGER_TTL_SECONDS, Trigger

UTC = timezone.utc
NOW = datetime(2026, 11, 25, 12, 0, 30, tzinfo=UTC)
KEYS = KeySpace()
Recording = recording_scheduler_class()
NEXT = datetime(2026, 11, 25, 12, 1, tzinfo=UTC).timestamp()


def add(client, name, *, enabled=True):
    client.hset(KEYS.entry(name), mapping={"definition": definition(name, "tasks." + name, 60.0, enabled=enabled),
                                           "meta": meta(datetime(2026, 11, 25, 12, 0, tzinfo=UTC), 4)})
    client.zadd(KEYS.schedule, {KEYS.entry(name): NEXT})


def request(client, name, at=None, note="by hand"):
    trigger_entry(client, KEYS, name, Trigger("alice@host", at if at is not None else NOW.timestamp(), 0.0, note))


def test_a_trigger_runs_once_now_and_keeps_run_state_and_phase(redis_url, redis_client):
    add(redis_client, "report")
    before_meta = redis_client.hget(KEYS.entry("report"), "meta")
    request(redis_client, "report")
    assert redis_client.zscore(KEYS.schedule, KEYS.entry("report")) == 0
    app = make_app(redis_url, now=NOW)
    with current(app):
        scheduler = Recording(app=app)
        scheduler.tick()
        scheduler.tick()
        assert scheduler.sent_names == ["report"]
        assert (scheduler.sent[0].task, scheduler.sent[0].total_run_count) == ("tasks.report", 4)
    assert redis_client.zscore(KEYS.schedule, KEYS.entry("report")) == NEXT  # phase kept
    assert redis_client.hget(KEYS.entry("report"), "meta") == before_meta  # run state untouched
    assert not redis_client.hexists(KEYS.entry("report"), "trigger")
    [run] = read_runs(redis_client, KEYS, entry="report")
    assert run.state.value == "sent" and run.note == "triggered by alice@host: by hand"


def test_two_beats_send_a_trigger_exactly_once(redis_url, redis_client):
    add(redis_client, "report")
    request(redis_client, "report")
    apps = [make_app(redis_url, now=NOW, redbeat_lock_key=None) for _ in range(2)]
    beats = [Recording(app=app) for app in apps]
    # both read the request before either settles: the settle script lets only one take it
    batches = [beat.store.fetch_due(NOW.timestamp(), limit=10) for beat in beats]
    taken = []
    for beat, app, batch in zip(beats, apps, batches, strict=True):
        with current(app):
            step, entry = beat._settle_one(batch.entries[0], NOW)
            assert entry is not None and entry.name == "report"
            taken += beat.store.settle([step])
    assert taken == [True, False]
    for beat, app in zip(beats, apps, strict=True):
        with current(app):
            beat.tick()
        assert beat.sent_names == []  # nothing left to take


def test_an_expired_request_is_dropped_unrun_and_the_score_put_back(redis_url, redis_client):
    add(redis_client, "report")
    request(redis_client, "report", at=NOW.timestamp() - TRIGGER_TTL_SECONDS - 1)
    app = make_app(redis_url, now=NOW)
    with current(app):
        scheduler = Recording(app=app)
        scheduler.tick()
        assert scheduler.sent_names == []
    assert redis_client.zscore(KEYS.schedule, KEYS.entry("report")) == NEXT
    assert not redis_client.hexists(KEYS.entry("report"), "trigger")
    assert read_runs(redis_client, KEYS) == []


@pytest.mark.parametrize(("setup", "name", "message"), [
    (lambda c: add(c, "off", enabled=False), "off", "off is disabled"),
    (lambda c: None, "nope", "no entry named nope"),
    (lambda c: (add(c, "twice"), request(c, "twice")), "twice", "already pending"),
])
def test_refused_requests_write_nothing(redis_client, setup, name, message):
    setup(redis_client)
    before = {key: redis_client.dump(key) for key in redis_client.keys("*")}
    with pytest.raises(RedbeatError, match=message):
        request(redis_client, name)
    assert {key: redis_client.dump(key) for key in redis_client.keys("*")} == before


def test_the_score_is_kept_exactly(redis_client):
    add(redis_client, "report")
    redis_client.zadd(KEYS.schedule, {KEYS.entry("report"): 1796297581.890767})
    request(redis_client, "report")
    stored = json.loads(redis_client.hget(KEYS.entry("report"), "trigger"))["score"]
    assert float(stored) == 1796297581.890767  # Redis' own digits, not cjson's 14


def test_a_paused_entry_is_run_by_an_explicit_request_and_stays_paused(redis_url, redis_client):
    from reconciler.operating.operate import pause_entry
    from redbeat.operator import Pause

    add(redis_client, "report")
    pause_entry(redis_client, KEYS, "report", Pause("alice", NOW.timestamp(), None, "incident"))
    request(redis_client, "report")
    app = make_app(redis_url, now=NOW)
    with current(app):
        scheduler = Recording(app=app)
        scheduler.tick()
        app.now.set(datetime(2026, 11, 25, 12, 1, 5, tzinfo=UTC))  # its next slot passes: still paused
        scheduler.tick()
        assert scheduler.sent_names == ["report"]
    assert redis_client.hexists(KEYS.entry("report"), "pause")
