"""beat_schedule sync at start-up against a real redis-server: one digest when unchanged, self-healing when not."""

from __future__ import annotations

import json

from celery.schedules import crontab
from support.beat import make_app
from support.redis_proc import commandstats, write_calls

from redbeat import RedBeatScheduler
from redbeat.statics import fast_definition, statics_digest

SCHEDULE = {
    "every-ten": {"task": "t.ten", "schedule": 10.0, "args": [1]},
    "nightly": {"task": "t.night", "schedule": crontab(minute="30", hour="2")},
}


def app_with(redis_url, schedule):
    app = make_app(redis_url, redbeat_lock_key=None)
    app.conf.beat_schedule = schedule
    return app


def test_the_digest_redis_computes_equals_ours(redis_url, redis_client):
    app = app_with(redis_url, SCHEDULE)
    scheduler = RedBeatScheduler(app=app)
    names = sorted(SCHEDULE) + ["celery.backend_cleanup"]
    expected = {n: fast_definition(n, SCHEDULE[n]) for n in SCHEDULE}
    digest, size, present = scheduler.store.statics_digest(sorted(expected))
    assert digest == statics_digest(expected)
    assert (size, present) == (2, 2)
    assert redis_client.exists(*(f"redbeat:{n}" for n in names)) == 3


def test_unchanged_restart_reads_one_digest_and_writes_nothing(redis_url, redis_client):
    RedBeatScheduler(app=app_with(redis_url, SCHEDULE))
    redis_client.config_resetstat()
    RedBeatScheduler(app=app_with(redis_url, SCHEDULE))
    stats = commandstats(redis_client)
    assert write_calls(stats) == {}
    # one read-only script; the slow path would also read every entry (SMEMBERS of the statics)
    assert stats.get("evalsha_ro", 0) == 1 and "smembers" not in stats


def test_a_deleted_static_is_recreated_on_restart_and_others_untouched(redis_url, redis_client):
    RedBeatScheduler(app=app_with(redis_url, SCHEDULE))
    redis_client.hset("redbeat:every-ten", "meta", json.dumps({"last_run_at": None, "total_run_count": 5}))
    before = redis_client.hgetall("redbeat:every-ten")
    redis_client.delete("redbeat:nightly")
    RedBeatScheduler(app=app_with(redis_url, SCHEDULE))
    assert redis_client.hget("redbeat:nightly", "definition") is not None
    assert redis_client.hgetall("redbeat:every-ten") == before


def test_a_changed_static_is_rewritten_and_a_removed_one_deleted(redis_url, redis_client):
    RedBeatScheduler(app=app_with(redis_url, SCHEDULE))
    changed = {"every-ten": dict(SCHEDULE["every-ten"], args=[2])}
    RedBeatScheduler(app=app_with(redis_url, changed))
    assert json.loads(redis_client.hget("redbeat:every-ten", "definition"))["args"] == [2]
    assert not redis_client.exists("redbeat:nightly")
    assert redis_client.smembers("redbeat::statics") == {"every-ten"}
