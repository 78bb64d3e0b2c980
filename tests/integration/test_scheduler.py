"""RedBeatScheduler's tick against a real redis-server: statics, cost, bad entries, leadership, wake-ups."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from celery.schedules import crontab, schedule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.beat import counting_client, current, definition, make_app, meta, recording_scheduler_class
from support.redis_proc import commandstats, write_calls

from redbeat import RedBeatScheduler
from redbeat import RedBeatSchedulerEntry as Entry
from redbeat.metrics import BeatMetrics

UTC = timezone.utc
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
P = "redbeat:"
SCHEDULE = "redbeat::schedule"
STATICS = "redbeat::statics"
LOCK = "redbeat::lock"
Recording = recording_scheduler_class()


def dirty(client) -> int:
    """Writes that changed the dataset since the server started (Redis' own counter)."""
    return int(client.info("persistence")["rdb_changes_since_last_save"])


def add(client, name, every=None, *, score, last_run_at=None, count=None, enabled=True, **cron):
    client.hset(P + name, mapping={"definition": definition(name, "tasks." + name, every, enabled=enabled, **cron),
                                   "meta": meta(last_run_at, count)})
    client.zadd(SCHEDULE, {P + name: score})


@pytest.fixture
def app(redis_url):
    app = make_app(redis_url, now=NOW)
    with current(app):
        yield app


@pytest.fixture
def unlocked_app(redis_url):
    app = make_app(redis_url, now=NOW, redbeat_lock_key=None)
    with current(app):
        yield app


STATICS_CONF = {
    "every-minute": {"task": "tasks.minute", "schedule": 60.0, "args": (1,)},
    "nightly": {"task": "tasks.nightly", "schedule": crontab(minute="30", hour="2")},
    "gone-later": {"task": "tasks.gone", "schedule": schedule(300)},
}


# -- beat_schedule (statics) ----------------------------------------------------------------------


def test_statics_are_synced_at_start_up_and_no_crontab_runs_early(app, redis_client):
    app.conf.beat_schedule = STATICS_CONF
    scheduler = Recording(app=app)
    assert scheduler.is_leader
    assert redis_client.smembers(STATICS) == set(STATICS_CONF)
    assert redis_client.zscore(SCHEDULE, P + "every-minute") == NOW.timestamp() + 60
    assert redis_client.zscore(SCHEDULE, P + "nightly") == datetime(2026, 11, 26, 2, 30, tzinfo=UTC).timestamp()
    loaded = Entry.from_key(P + "every-minute", app=app)
    assert (loaded.task, loaded.args, loaded.last_run_at) == ("tasks.minute", [1], NOW)
    scheduler.tick()
    assert scheduler.sent_names == []  # #154: nothing runs at start-up just because beat started
    app.now.set(NOW + timedelta(minutes=1))
    scheduler.tick()
    assert scheduler.sent_names == ["every-minute"]


def test_removed_statics_are_pruned_and_others_left_alone(unlocked_app, redis_client):
    app = unlocked_app
    app.conf.beat_schedule = STATICS_CONF
    Recording(app=app).close()
    Entry("dynamic", "tasks.dyn", schedule(60), app=app).save()
    app.conf.beat_schedule = {k: v for k, v in STATICS_CONF.items() if k != "gone-later"}
    Recording(app=app).close()
    assert redis_client.exists(P + "gone-later") == 0
    assert redis_client.zscore(SCHEDULE, P + "gone-later") is None
    assert redis_client.smembers(STATICS) == {"every-minute", "nightly"}
    assert redis_client.exists(P + "dynamic") == 1 and redis_client.zscore(SCHEDULE, P + "dynamic") is not None


def test_last_run_at_is_kept_across_restarts(unlocked_app, redis_client):
    app = unlocked_app
    app.conf.beat_schedule = STATICS_CONF
    first = Recording(app=app)
    app.now.set(NOW + timedelta(minutes=1, seconds=2))
    first.tick()
    assert first.sent_names == ["every-minute"]
    first.close()
    meta_after_run = redis_client.hget(P + "every-minute", "meta")
    score_after_run = redis_client.zscore(SCHEDULE, P + "every-minute")
    assert score_after_run == NOW.timestamp() + 120

    app.now.set(NOW + timedelta(minutes=1, seconds=30))
    Recording(app=app).close()  # restart, same beat_schedule
    assert redis_client.hget(P + "every-minute", "meta") == meta_after_run
    assert redis_client.zscore(SCHEDULE, P + "every-minute") == score_after_run

    # restart with a changed definition: run state kept, score from the kept last_run_at
    app.conf.beat_schedule = {**STATICS_CONF, "every-minute": {**STATICS_CONF["every-minute"], "args": (2,)}}
    Recording(app=app).close()
    assert redis_client.hget(P + "every-minute", "meta") == meta_after_run
    assert redis_client.zscore(SCHEDULE, P + "every-minute") == score_after_run
    assert json.loads(redis_client.hget(P + "every-minute", "definition"))["args"] == [2]


def test_restart_with_unchanged_beat_schedule_writes_nothing(unlocked_app, redis_client):
    app = unlocked_app
    app.conf.beat_schedule = STATICS_CONF
    Recording(app=app).close()
    redis_client.config_resetstat()
    before = dirty(redis_client)
    Recording(app=app).close()
    assert write_calls(commandstats(redis_client)) == {}
    assert dirty(redis_client) == before


def test_restart_with_the_lock_writes_only_the_lock(app, redis_client):
    app.conf.beat_schedule = STATICS_CONF
    Recording(app=app).close()
    entries_before = {k: redis_client.hgetall(k) for k in redis_client.keys(P + "*") if redis_client.type(k) == "hash"}
    before = dirty(redis_client)
    scheduler = Recording(app=app)
    assert scheduler.is_leader
    assert dirty(redis_client) == before + 1  # SET of the lock, nothing else
    assert {k: redis_client.hgetall(k) for k in entries_before} == entries_before


# -- the tick's cost ---------------------------------------------------------------------------


def make_due(client, count, *, prefix_name="due"):
    with client.pipeline(transaction=False) as pipe:
        for i in range(count):
            name = f"{prefix_name}-{i:04d}"
            pipe.hset(P + name, mapping={"definition": definition(name, "tasks.due", 60),
                                         "meta": meta(NOW - timedelta(seconds=60))})
            pipe.zadd(SCHEDULE, {P + name: NOW.timestamp()})
        pipe.execute()


@pytest.mark.parametrize("due", [1, 10, 500])
def test_a_tick_costs_two_round_trips_whatever_the_number_of_due_entries(redis_url, redis_client, due):
    client, trips = counting_client(redis_url)
    app = make_app(redis_url, now=NOW)
    app.redbeat_redis = client
    with current(app):
        scheduler = Recording(app=app)
        scheduler.tick()  # warm: scripts loaded, lock taken
        from redbeat.store import SETTLE_SCRIPT

        # The settle script runs only when something is due: load it too, as any earlier tick on this
        # redis-server would have (alone on a fresh server, or first on an xdist worker, it was not).
        redis_client.script_load(SETTLE_SCRIPT)
        make_due(redis_client, due)
        add(redis_client, "later", 60, score=NOW.timestamp() + 3000, last_run_at=NOW)
        trips.reset()
        redis_client.config_resetstat()
        interval = scheduler.tick()
        assert len(scheduler.sent) == due
        assert trips.count == 2, trips.commands
        assert trips.commands == ["EVALSHA", "EVALSHA"]
        stats = commandstats(redis_client)
        assert stats.get("evalsha") == 2
        # inside the two scripts: one HMGET (read) and one HSET (meta) per due entry
        assert stats.get("hmget") == stats.get("hset") == due
        assert interval == pytest.approx(min(60, scheduler.renew_interval))
        # idle tick: one round trip (renew the lease and look)
        trips.reset()
        assert scheduler.tick() > 0
        assert trips.count == 1 and len(scheduler.sent) == due


# -- one bad entry never stops the others -----------------------------------------------------


BAD_ENTRIES = {
    "corrupt-json": {"definition": "{not json"},
    "unknown-type": {"definition": json.dumps({"name": "x", "task": "t", "schedule": {"__type__": "solar"}})},
    "args-not-a-list": {
        "definition": json.dumps(
            {"name": "x", "task": "t", "args": "1,2", "schedule": {"__type__": "interval", "every": 5.0}}
        )
    },
    "definition-is-a-list": {"definition": "[1, 2]"},
    "meta-wrong-type": {"definition": definition("x", "t", 5), "meta": '{"last_run_at": "yesterday"}'},
    "count-wrong-type": {
        "definition": definition("x", "t", 5),
        "meta": '{"last_run_at": null, "total_run_count": "2"}',
    },
    "no-definition-field": {"meta": meta(NOW)},
}


@pytest.mark.parametrize("bad", sorted(BAD_ENTRIES))
def test_a_bad_entry_is_logged_with_its_key_and_the_others_run(app, redis_client, caplog, bad):
    add(redis_client, "a-good", 60, score=NOW.timestamp() - 5, last_run_at=NOW - timedelta(seconds=65))
    add(redis_client, "z-good", 60, score=NOW.timestamp() - 1, last_run_at=NOW - timedelta(seconds=61))
    redis_client.hset(P + bad, mapping=BAD_ENTRIES[bad])
    redis_client.zadd(SCHEDULE, {P + bad: NOW.timestamp() - 3})
    scheduler = Recording(app=app)
    with caplog.at_level(logging.ERROR, logger="celery.beat"):
        scheduler.tick()
    assert scheduler.sent_names == ["a-good", "z-good"]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(P + bad in message for message in errors), errors
    if bad == "no-definition-field":
        assert redis_client.zscore(SCHEDULE, P + bad) is None  # a hash without a definition is gone
    else:
        # looked at again in a minute, not logged on every tick
        assert redis_client.zscore(SCHEDULE, P + bad) == NOW.timestamp() + 60
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="celery.beat"):
            scheduler.tick()
        assert not [r for r in caplog.records if P + bad in r.getMessage()]


def test_a_member_whose_hash_vanished_is_logged_and_dropped(app, redis_client, caplog):
    add(redis_client, "good", 60, score=NOW.timestamp(), last_run_at=NOW - timedelta(seconds=60))
    redis_client.zadd(SCHEDULE, {P + "evicted": NOW.timestamp() - 10})
    scheduler = Recording(app=app)
    with caplog.at_level(logging.ERROR, logger="celery.beat"):
        scheduler.tick()
    assert scheduler.sent_names == ["good"]
    assert f"{P}evicted is in the schedule but its hash or definition is gone" in caplog.text
    assert redis_client.zscore(SCHEDULE, P + "evicted") is None


def test_a_disabled_due_entry_leaves_the_due_index(app, redis_client):
    add(redis_client, "paused", 60, score=NOW.timestamp() - 30, last_run_at=NOW - timedelta(minutes=5), enabled=False)
    scheduler = Recording(app=app)
    scheduler.tick()
    assert scheduler.sent == []
    assert redis_client.zscore(SCHEDULE, P + "paused") == -1
    assert json.loads(redis_client.hget(P + "paused", "meta"))["last_run_at"]["minute"] == 55


# -- the first releases' flat format -------------------------------------------------------------


def test_flat_entry_added_with_zadd_0_and_no_meta_is_run(unlocked_app, redis_client):
    app = unlocked_app
    redis_client.hset(
        P + "legacy",
        "definition",
        json.dumps(
            {
                "name": "legacy",
                "task": "tasks.add",
                "enabled": True,
                "args": [2, 3],
                "kwargs": {},
                "__type__": "interval",
                "every": 5,
                "relative": False,
            }
        ),
    )
    redis_client.zadd(SCHEDULE, {"legacy": 0})  # "zadd PREFIX::schedule 0 new-task-name"
    scheduler = Recording(app=app)
    scheduler.tick()
    assert [(s.name, s.task, s.args) for s in scheduler.sent] == [("legacy", "tasks.add", [2, 3])]
    assert json.loads(redis_client.hget(P + "legacy", "meta"))["total_run_count"] == 1
    scheduler.tick()
    assert len(scheduler.sent) == 1
    app.now.set(NOW + timedelta(seconds=5))
    scheduler.tick()
    assert len(scheduler.sent) == 2
    # saved again: rewritten in the modern form, and still one member (one run per slot)
    Entry.from_key(P + "legacy", app=app).save()
    assert json.loads(redis_client.hget(P + "legacy", "definition"))["schedule"]["__type__"] == "interval"
    assert [m for m in redis_client.zrange(SCHEDULE, 0, -1) if "legacy" in m] == [P + "legacy"]
    app.now.set(NOW + timedelta(seconds=10))
    scheduler.tick()
    assert len(scheduler.sent) == 3
    Entry.from_key(P + "legacy", app=app).delete()
    assert [m for m in redis_client.zrange(SCHEDULE, 0, -1) if "legacy" in m] == []


def test_flat_crontab_entry_is_scheduled(unlocked_app, redis_client):
    redis_client.hset(
        P + "legacy-cron",
        "definition",
        json.dumps(
            {
                "name": "legacy-cron",
                "task": "tasks.cron",
                "enabled": True,
                "__type__": "interval",
                "minute": "*/10",
                "hour": "*",
                "month_of_year": "[1-12]",
            }
        ),
    )
    redis_client.zadd(SCHEDULE, {"legacy-cron": 0})
    scheduler = Recording(app=unlocked_app)
    unlocked_app.now.set(NOW + timedelta(minutes=3))
    scheduler.tick()
    # score 0 means "due now" (docs/design.md §4): it runs once, for the newest slot (12:00), then on its slots
    assert [(s.name, s.last_run_at) for s in scheduler.sent] == [("legacy-cron", NOW)]
    assert redis_client.zscore(SCHEDULE, "legacy-cron") == (NOW + timedelta(minutes=10)).timestamp()
    unlocked_app.now.set(NOW + timedelta(minutes=9, seconds=59))
    scheduler.tick()
    assert len(scheduler.sent) == 1
    unlocked_app.now.set(NOW + timedelta(minutes=10))
    scheduler.tick()
    assert scheduler.sent_names == ["legacy-cron", "legacy-cron"]


# -- leadership and fencing --------------------------------------------------------------------


def second_app(redis_url, **conf):
    return make_app(redis_url, now=NOW, **conf)


def test_a_standby_sends_nothing_and_writes_nothing(app, redis_url, redis_client):
    app.conf.beat_schedule = STATICS_CONF
    leader = Recording(app=app)
    assert leader.is_leader
    add(redis_client, "due-now", 60, score=NOW.timestamp(), last_run_at=NOW - timedelta(seconds=60))
    other = second_app(redis_url, beat_schedule={"standby-only": {"task": "t", "schedule": 5.0}})
    before = dirty(redis_client)
    standby = Recording(app=other)
    assert not standby.is_leader
    for _ in range(3):
        assert standby.tick() > 0
    assert standby.sent == []
    assert dirty(redis_client) == before  # celery-redbeat #198: a standby wrote its statics
    assert redis_client.exists(P + "standby-only") == 0
    leader.tick()
    assert leader.sent_names == ["due-now"]
    assert "standby" in standby.info and "leader" in leader.info


def test_a_standby_takes_over_when_the_leader_closes(app, redis_url, redis_client):
    leader = Recording(app=app)
    standby = Recording(app=second_app(redis_url))
    assert leader.is_leader and not standby.is_leader
    leader.close()
    add(redis_client, "due-now", 60, score=NOW.timestamp(), last_run_at=NOW - timedelta(seconds=60))
    standby.tick()  # becomes leader; sends on its next tick
    standby.tick()
    assert standby.is_leader and standby.sent_names == ["due-now"]
    assert redis_client.get(LOCK) == standby.lock.token


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_deposed_leader_sends_nothing(app, redis_client, how):
    leader = Recording(app=app)
    assert leader.is_leader
    add(redis_client, "due-now", 60, score=NOW.timestamp(), last_run_at=NOW - timedelta(seconds=60))
    if how == "deleted":
        redis_client.delete(LOCK)
    else:
        redis_client.set(LOCK, "someone-else", px=60_000)
    before = dirty(redis_client)
    leader.tick()
    assert leader.sent == [] and not leader.is_leader
    assert dirty(redis_client) == before
    assert json.loads(redis_client.hget(P + "due-now", "meta"))["last_run_at"]["minute"] == 59


def test_a_leader_deposed_during_its_tick_sends_and_records_nothing(app, redis_client):
    class Usurped(Recording):
        def _settle_one(self, stored, now):
            redis_client.set(LOCK, "usurper", px=60_000)  # between reading and settling
            return super()._settle_one(stored, now)

    leader = Usurped(app=app)
    add(redis_client, "due-now", 60, score=NOW.timestamp(), last_run_at=NOW - timedelta(seconds=60))
    meta_before = redis_client.hget(P + "due-now", "meta")
    leader.tick()
    assert leader.sent == [] and not leader.is_leader
    assert redis_client.hget(P + "due-now", "meta") == meta_before
    assert redis_client.zscore(SCHEDULE, P + "due-now") == NOW.timestamp()
    assert redis_client.get(LOCK) == "usurper"


def test_the_leader_renews_its_lease_every_tick(app, redis_client):
    leader = Recording(app=app)
    redis_client.pexpire(LOCK, 500)
    leader.tick()
    assert redis_client.pttl(LOCK) > 9000  # back to the full 10 s lease
    leader.close()
    assert redis_client.exists(LOCK) == 0


def test_two_unlocked_beats_never_send_a_slot_twice(unlocked_app, redis_url, redis_client):
    add(redis_client, "once", 60, score=NOW.timestamp(), last_run_at=NOW - timedelta(seconds=60))
    first, second = Recording(app=unlocked_app), Recording(app=second_app(redis_url, redbeat_lock_key=None))
    batch_first = first.store.fetch_due(NOW.timestamp(), limit=10)
    batch_second = second.store.fetch_due(NOW.timestamp(), limit=10)
    assert len(batch_first.entries) == len(batch_second.entries) == 1
    first.tick()
    second.tick()
    assert len(first.sent) + len(second.sent) == 1


# -- changes, wake-ups, precision and listing --------------------------------------------------------


def test_a_change_is_picked_up_on_the_next_tick(unlocked_app, redis_url, redis_client):
    scheduler = Recording(app=unlocked_app)
    Entry("changing", "tasks.v1", schedule(60), app=unlocked_app).save()
    unlocked_app.now.set(NOW + timedelta(seconds=60))
    scheduler.tick()
    writer = second_app(redis_url, redbeat_lock_key=None)
    with current(writer):
        Entry("changing", "tasks.v2", schedule(10), args=[7], app=writer).save()
    unlocked_app.now.set(NOW + timedelta(seconds=70))
    scheduler.tick()
    assert [(s.task, s.args) for s in scheduler.sent] == [("tasks.v1", None), ("tasks.v2", [7])]


def test_a_save_from_another_client_wakes_a_sleeping_beat(redis_url, redis_client):
    app = make_app(redis_url, now=NOW, redbeat_lock_timeout=300)
    with current(app):
        scheduler = Recording(app=app)
        scheduler.wait_for_changes = True
        add(redis_client, "later", 30, score=NOW.timestamp() + 30, last_run_at=NOW)
        scheduler._changes._subscription()  # as after beat's first tick
        writer = second_app(redis_url)

        def save_soon():
            time.sleep(0.2)
            Entry("urgent", "tasks.urgent", schedule(5), app=writer).save()

        thread = threading.Thread(target=save_soon)
        started = time.monotonic()
        thread.start()
        result = scheduler.tick()
        elapsed = time.monotonic() - started
        thread.join()
        assert result == 0.0
        assert 0.15 < elapsed < 1.0
        # without a change the same tick sleeps its full interval (here: cut short by a tiny max_interval)
        scheduler.max_interval = 0.3
        started = time.monotonic()
        assert scheduler.tick() == 0.0
        assert 0.25 < time.monotonic() - started < 1.0
        scheduler.close()


def test_sub_second_interval_runs_twice_a_second(unlocked_app, redis_client):
    app = unlocked_app
    Entry("half", "tasks.half", schedule(0.5), app=app).save()
    scheduler = Recording(app=app)
    start = app.now.value
    while app.now.value <= start + timedelta(seconds=3):
        interval = scheduler.tick()
        assert interval == pytest.approx(0.5) or scheduler.sent == []
        app.now.advance(interval)
    assert len(scheduler.sent) == 6
    assert [s.last_run_at for s in scheduler.sent] == [start + timedelta(seconds=0.5 * i) for i in range(1, 7)]
    assert redis_client.zscore(SCHEDULE, P + "half") == start.timestamp() + 3.5


def test_sub_second_interval_in_real_time(redis_url, redis_client):
    app = make_app(redis_url, redbeat_lock_key=None)
    with current(app):
        Entry("half", "tasks.half", schedule(0.5), app=app).save()
        scheduler = Recording(app=app)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            time.sleep(min(scheduler.tick(), max(0.0, deadline - time.monotonic())))
        assert 3 <= len(scheduler.sent) <= 5
        gaps = [
            (b.last_run_at - a.last_run_at).total_seconds()
            for a, b in zip(scheduler.sent, scheduler.sent[1:], strict=False)
        ]
        assert all(gap == pytest.approx(0.5) for gap in gaps)


def test_schedule_lists_every_entry_outside_a_tick(unlocked_app, redis_client, caplog):
    """celery-redbeat #155: RedBeatScheduler.schedule was only the due window (often {})."""
    app = unlocked_app
    Entry("soon", "t", schedule(60), app=app).save()
    Entry("next-year", "t", crontab(minute=0, hour=0, day_of_month=1, month_of_year=1), app=app).save()
    Entry("off", "t", schedule(60), enabled=False, app=app).save()
    redis_client.hset(P + "broken", "definition", "{oops")
    redis_client.zadd(SCHEDULE, {P + "broken": 1})
    scheduler = RedBeatScheduler(app=app, lazy=True)
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        listed = scheduler.schedule
    assert sorted(listed) == ["next-year", "off", "soon"]
    assert listed["off"].enabled is False and listed["next-year"].task == "t"
    assert P + "broken" in caplog.text


def test_crontab_in_the_app_time_zone_across_spring_forward(redis_url, redis_client):
    app = make_app(
        redis_url, now=datetime(2026, 3, 28, 12, tzinfo=UTC), redbeat_lock_key=None, timezone="Europe/Berlin"
    )
    with current(app):
        Entry(
            "nightly",
            "tasks.nightly",
            crontab(minute="30", hour="2"),
            last_run_at=datetime(2026, 3, 28, 1, 30, tzinfo=UTC),
            app=app,
        ).save()
        assert redis_client.zscore(SCHEDULE, P + "nightly") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()
        scheduler = Recording(app=app, lazy=True)
        for minute in range(0, 121):  # 00:00Z .. 02:00Z on the day clocks go 02:00 -> 03:00
            app.now.set(datetime(2026, 3, 29, 0, 0, tzinfo=UTC) + timedelta(minutes=minute))
            scheduler.tick()
        assert [s.last_run_at.astimezone(UTC) for s in scheduler.sent] == [datetime(2026, 3, 29, 1, 0, tzinfo=UTC)]
        assert redis_client.zscore(SCHEDULE, P + "nightly") == datetime(2026, 3, 30, 0, 30, tzinfo=UTC).timestamp()
        assert json.loads(redis_client.hget(P + "nightly", "meta"))["last_run_at"]["timezone"] == "Europe/Berlin"


# -- issue 19: poison entries, jitter on new entries, re-enabling, spacing, failed sends -------------------------

POISON = {
    "definition-not-utf8": {"definition": b'{"name": "x\xff\xfe", "task": "t"}'},
    "meta-not-utf8": {"definition": definition("meta-not-utf8", "tasks.m", 60).encode(), "meta": b"\xc3\x28"},
    "ext-not-utf8": {"definition": definition("ext-not-utf8", "tasks.e", 60).encode(), "ext": b"\xed\xa0\x80"},
    "schedule-cannot-be-built": {"definition": definition("schedule-cannot-be-built", "tasks.c", minute="99").encode()},
}


@pytest.mark.parametrize("kind", sorted(POISON))
def test_a_poison_entry_is_set_aside_logged_once_recorded_and_the_others_run(
    app, redis_url, redis_client, caplog, kind
):
    """One entry beat cannot read (bytes that are not UTF-8, a schedule that cannot be built) stops nothing else."""
    import redis

    raw = redis.Redis.from_url(redis_url)  # writes bytes as they are, as any client can
    raw.hset(P + kind, mapping=POISON[kind])
    raw.zadd(SCHEDULE, {P + kind: NOW.timestamp() - 2})
    add(redis_client, "healthy", 1, score=NOW.timestamp(), last_run_at=NOW - timedelta(seconds=1))
    scheduler = Recording(app=app)
    scheduler.metrics = BeatMetrics()  # metrics are off in this app: count through a registry of its own
    with caplog.at_level(logging.ERROR, logger="celery.beat"):
        for _ in range(5):
            scheduler.tick()
            app.now.advance(1)
    assert scheduler.sent_names == ["healthy"] * 5  # every slot of the healthy entry, none of the bad one
    logged = [r.getMessage() for r in caplog.records if P + kind in r.getMessage()]
    assert len(logged) == 1 and "Skipping" in logged[0], logged
    assert redis_client.zscore(SCHEDULE, P + kind) == NOW.timestamp() + 60  # out of the due window
    record = json.loads(redis_client.hget("redbeat::unreadable", P + kind))
    assert ("UTF-8" in record["reason"]) == kind.endswith("not-utf8"), record
    assert scheduler.metrics.unreadable._value.get() == 1
    assert scheduler.metrics.errors.labels(kind="entry")._value.get() == 1
    assert scheduler.store.unreadable() == {P + kind: record}

    # Repaired in place: it runs as usual and its record is gone.
    redis_client.delete(P + kind)
    add(redis_client, kind, 60, score=NOW.timestamp() + 60, last_run_at=NOW)
    app.now.set(NOW + timedelta(seconds=61))
    scheduler.tick()
    assert kind in scheduler.sent_names[5:]
    assert redis_client.hget("redbeat::unreadable", P + kind) is None
    assert scheduler.metrics.unreadable._value.get() == 0


def test_a_member_whose_name_is_not_utf8_is_set_aside(app, redis_url, redis_client):
    import redis

    raw = redis.Redis.from_url(redis_url)
    member = P.encode() + b"bad-\xff"
    raw.hset(member, mapping={"definition": definition("x", "tasks.x", 1).encode()})
    raw.zadd(SCHEDULE, {member: NOW.timestamp() - 1})
    add(redis_client, "healthy", 1, score=NOW.timestamp(), last_run_at=NOW - timedelta(seconds=1))
    scheduler = Recording(app=app)
    scheduler.tick()
    assert scheduler.sent_names == ["healthy"]
    assert raw.zscore(SCHEDULE, member) == NOW.timestamp() + 60
    assert member in raw.hgetall("redbeat::unreadable")


def reconciler_scores(every: float | None, now: datetime) -> float:
    """The score redbeat-apply gives a new entry (reconciler.sync.apply.scores_for): "never ran" is anchored there."""
    from reconciler.sync.apply import scores_for

    sched = {"__type__": "interval", "every": every} if every is not None else {"__type__": "crontab"}
    return scores_for({"enabled": True, "schedule": sched}, now.timestamp())[1]


def new_jittered_entry(redis_client, name: str, every: float | None, jitter: float, now: datetime) -> None:
    redis_client.hset(
        P + name,
        mapping={"definition": definition(name, "tasks." + name, every), "ext": json.dumps({"jitter": jitter})},
    )
    redis_client.zadd(SCHEDULE, {P + name: reconciler_scores(every, now)})


def first_run_time(scheduler, app, name: str, *, step: float, until: datetime) -> datetime | None:
    """Tick as beat does (every ``step`` s, sooner when the tick asks) until ``name`` is sent; when it was."""
    while app.now() < until:
        wait = scheduler.tick()
        if name in scheduler.sent_names:
            return app.now()
        app.now.advance(max(0.001, min(step, wait)))
    return None


@given(
    every=st.sampled_from([None, 1.0, 5.0, 6.0, 10.0, 300.0]),
    fraction=st.floats(0.01, 0.99),
    step=st.sampled_from([0.05, 0.5, 1.0]),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_new_entry_with_any_jitter_runs_within_its_first_period_plus_its_jitter(
    redis_url, redis_client, every, fraction, step
):
    """Issue 19 #3: a never-run entry with jitter was re-anchored at its jittered time each tick and never ran."""
    redis_client.flushall()
    period = every or 60.0
    jitter = round(period * fraction, 3) if every else 10.0 * fraction * 6  # crontab: up to a minute of jitter
    app = make_app(redis_url, now=NOW + timedelta(seconds=7.25))
    with current(app):
        created = app.now()
        new_jittered_entry(redis_client, "j", every, jitter, created)
        scheduler = Recording(app=app)
        ran = first_run_time(scheduler, app, "j", step=step, until=created + timedelta(seconds=3 * period + jitter))
        scheduler.close()
    assert ran is not None, f"never ran (every={every}, jitter={jitter})"
    assert ran <= created + timedelta(seconds=period + jitter + step), (ran - created, period, jitter)


def test_re_enabling_files_the_entry_under_its_next_slot_and_runs_nothing_at_once(app, redis_client):
    """Issue 19 #4: enabling an entry again caught up the slots it spent disabled, at once."""
    from reconciler.sync.apply import scores_for

    add(redis_client, "paused", 10, score=-1, last_run_at=NOW - timedelta(seconds=70), count=3, enabled=False)
    scheduler = Recording(app=app)
    scheduler.tick()
    app.now.advance(0.3)  # 12:00:00.3: redbeat-apply enables it again (definition + score "now", meta kept)
    redis_client.hset(P + "paused", "definition", definition("paused", "tasks.paused", 10))
    redis_client.zadd(SCHEDULE, {P + "paused": scores_for({"enabled": True}, app.now().timestamp())[0]})
    ran = first_run_time(scheduler, app, "paused", step=0.1, until=NOW + timedelta(seconds=30))
    assert ran is not None and ran >= NOW + timedelta(seconds=10)  # its next slot after enabling, not at once
    assert scheduler.sent[-1].name == "paused" and len(scheduler.sent) == 1
    stored = json.loads(redis_client.hget(P + "paused", "meta"))
    assert (stored["last_run_at"]["second"], stored["total_run_count"]) == (10, 4)


def test_a_catch_up_more_than_half_a_period_late_merges_into_the_next_slot(app, redis_client):
    """Issue 19 #1: a takeover 0.9 s into a 1 s period ran the catch-up, then the next slot 0.1 s later."""
    add(redis_client, "fast", 1, score=NOW.timestamp() - 2, last_run_at=NOW - timedelta(seconds=3))
    app.now.advance(0.9)
    scheduler = Recording(app=app)
    wait = scheduler.tick()
    assert scheduler.sent == [] and 0 < wait <= 0.1 + 1e-6
    assert redis_client.zscore(SCHEDULE, P + "fast") == NOW.timestamp() + 1
    app.now.set(NOW + timedelta(seconds=1))
    scheduler.tick()
    assert scheduler.sent_names == ["fast"] and scheduler.sent[0].options is not None
    app.now.set(NOW + timedelta(seconds=2, milliseconds=400))  # 0.4 s late: within half a period, runs
    scheduler.tick()
    assert scheduler.sent_names == ["fast", "fast"]


def test_a_run_that_fails_to_send_is_not_counted(app, redis_client, caplog):
    """Issue 19 #6: the claim counted a run the broker never got; status showed it as run."""
    add(redis_client, "unsendable", 60, score=NOW.timestamp(), last_run_at=NOW - timedelta(seconds=60), count=7)

    class BrokerDown(RedBeatScheduler):
        def apply_async(self, entry, producer=None, advance=True, **kwargs):
            raise ConnectionError("broker unreachable")

    scheduler = BrokerDown(app=app)
    with caplog.at_level(logging.ERROR, logger="celery.beat"):
        scheduler.tick()
    assert "this run is lost" in caplog.text
    stored = json.loads(redis_client.hget(P + "unsendable", "meta"))
    assert stored["total_run_count"] == 7  # not counted
    assert stored["last_run_at"]["minute"] == 0  # but the slot is used: never sent twice
    assert redis_client.zscore(SCHEDULE, P + "unsendable") == NOW.timestamp() + 60
    scheduler.tick()
    assert json.loads(redis_client.hget(P + "unsendable", "meta"))["total_run_count"] == 7


def test_a_send_that_fails_after_publishing_began_stays_counted(app, redis_client):
    """The broker may have the message (a reply lost mid-publish): the run counts, as it may have happened."""
    from celery.signals import before_task_publish

    add(redis_client, "maybe-sent", 60, score=NOW.timestamp(), last_run_at=NOW - timedelta(seconds=60), count=7)

    class ReplyLost(RedBeatScheduler):
        def apply_async(self, entry, producer=None, advance=True, **kwargs):
            before_task_publish.send(sender=entry.task, body=None, headers={})
            raise ConnectionError("connection lost while reading the broker's reply")

    scheduler = ReplyLost(app=app)
    scheduler.tick()
    assert json.loads(redis_client.hget(P + "maybe-sent", "meta"))["total_run_count"] == 8


@given(value=st.binary(max_size=24) | st.text(max_size=12).map(str.encode))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_fetch_script_flags_exactly_the_values_python_cannot_decode(redis_url, redis_client, value):
    """The fetch flags exactly the values strict UTF-8 decoding refuses (overlongs, surrogates, truncation)."""
    import redis

    from redbeat.keys import KeySpace
    from redbeat.store import EntryStore

    raw = redis.Redis.from_url(redis_url)
    raw.delete(SCHEDULE, P + "v")
    raw.hset(P + "v", mapping={"definition": b"{}", "ext": value})
    raw.zadd(SCHEDULE, {P + "v": 1})
    store = EntryStore(redis_client, KeySpace())
    batch = store.fetch_due(2.0, limit=10)
    try:
        text: str | None = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    (stored,) = batch.entries
    assert (stored.ext, stored.not_utf8) == ((text, ()) if text is not None else (None, ("ext",)))
    # status, apply and the statics sync read entries with another script: the same per-field rule
    assert store.read_entries(["v"]) == [("{}", None, text, 1.0)]


@contextlib.contextmanager
def leading_under_beat(redis_url, redis_client):
    """A leading scheduler as ``celery beat`` runs it (``wait_for_changes``, beat_init's), three entries due."""
    app = make_app(redis_url, now=NOW)
    with current(app):
        scheduler = RedBeatScheduler(app=app)
        scheduler.wait_for_changes = True
        assert scheduler._try_lead()
        make_due(redis_client, 3)
        yield scheduler


def test_a_sigterm_lost_inside_a_send_still_stops_beat(redis_url, redis_client, monkeypatch, caplog):
    """celery beat's SIGTERM handler closes the scheduler and raises SystemExit in the main thread. Raised
    while redis-py reads the broker's reply, it came back as "I/O operation on closed file", a failed send
    the tick logs and goes on from: beat ticked on until SIGKILL (seen in tests/reliability/test_load.py).
    A closed scheduler under beat's service now stops at its next tick."""
    from celery.beat import SchedulingError

    with leading_under_beat(redis_url, redis_client) as scheduler:
        sends: list[str] = []

        def send(entry, producer=None, advance=False, **kwargs):
            sends.append(entry.name)
            if len(sends) == 1:  # the signal lands here: close, then SystemExit, lost by the library
                scheduler.close()
                raise SchedulingError(f"Couldn't apply scheduled task {entry.name}: I/O operation on closed file.")
            return None

        monkeypatch.setattr(scheduler, "apply_async", send)
        with caplog.at_level(logging.ERROR, logger="redbeat"):
            scheduler.tick()  # the claimed runs of this tick are still sent (never twice, never late)
        assert len(sends) == 3
        with pytest.raises(SystemExit):
            scheduler.tick()
        assert not redis_client.exists("redbeat::lock")


def test_a_sigterm_during_the_sends_stops_beat_after_the_last_claimed_run(redis_url, redis_client, monkeypatch):
    """celery beat's SIGTERM handler closes the scheduler and raises SystemExit wherever the main thread is.
    Landing between the claim and the last send, it lost every run claimed and not yet sent: their slots
    recorded as run, never sent by anyone. It is held until the last send, then stops beat."""
    import os
    import signal

    with leading_under_beat(redis_url, redis_client) as scheduler:
        sends: list[str] = []

        def send(entry, producer=None, advance=False, **kwargs):
            sends.append(entry.name)
            if len(sends) == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return None

        def celery_beat_stop(signum, frame):  # celery.apps.beat's: service.sync(), then SystemExit
            scheduler.close()
            raise SystemExit()

        monkeypatch.setattr(scheduler, "apply_async", send)
        previous = signal.signal(signal.SIGTERM, celery_beat_stop)
        try:
            with pytest.raises(SystemExit):
                scheduler.tick()
        finally:
            signal.signal(signal.SIGTERM, previous)
        assert sends == ["due-0000", "due-0001", "due-0002"]  # every claimed run sent, then beat stopped
        assert [json.loads(redis_client.hget(P + name, "meta"))["total_run_count"] for name in sends] == [1, 1, 1]
        assert not redis_client.exists("redbeat::lock")


@pytest.mark.parametrize("sched", [schedule(60), crontab(minute="*/5")], ids=["every", "cron"])
def test_a_last_run_before_1970_is_sent_at_the_next_tick(redis_url, redis_client, sched):
    """issue 14: a negative score was never fetched (the entry never ran); a pre-1970 last run means due now."""
    app = make_app(redis_url, now=NOW)
    with current(app):
        Entry("ancient", "tasks.old", sched, app=app, last_run_at=datetime.min).save()
        Entry("naive-1960", "tasks.old", sched, app=app, last_run_at=datetime(1960, 1, 1)).save()
        scheduler = Recording(app=app)
        scheduler.tick()
        assert sorted(scheduler.sent_names) == ["ancient", "naive-1960"]
        assert redis_client.zscore(SCHEDULE, P + "ancient") > NOW.timestamp()  # then next due after now
        scheduler.close()
