"""The run history beat writes inside its tick, against a real redis-server."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from support.beat import counting_client, current, definition, make_app, meta, recording_scheduler_class
from support.redis_proc import commandstats

from redbeat import RedBeatScheduler
from redbeat.history import RunState, read_runs
from redbeat.keys import KeySpace

UTC = timezone.utc
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEYS = KeySpace()
Recording = recording_scheduler_class()


def add_due(client, names, *, every: float = 60.0) -> None:
    """Entries that last ran one interval ago, so each is due at NOW (slot NOW)."""
    pipe = client.pipeline()
    for name in names:
        pipe.hset(KEYS.entry(name), mapping={"definition": definition(name, "tasks." + name, every),
                                             "meta": meta(NOW - timedelta(seconds=every))})
        pipe.zadd(KEYS.schedule, {KEYS.entry(name): NOW.timestamp()})
    pipe.execute()


def test_history_is_written_inside_the_two_round_trips_of_a_tick(redis_url, redis_client):
    client, trips = counting_client(redis_url)
    app = make_app(redis_url, now=NOW)
    app.redbeat_redis = client
    with current(app):
        scheduler = Recording(app=app)
        add_due(redis_client, ["warm"])
        scheduler.tick()  # warm: both scripts loaded, lock taken
        redis_client.delete(KEYS.history)
        names = [f"job-{i}" for i in range(50)]
        add_due(redis_client, names)
        trips.reset()
        redis_client.config_resetstat()
        scheduler.tick()
        assert trips.commands == ["EVALSHA", "EVALSHA"]
        # the warm run's outcome rode on the fetch, then one claim each in the settle script
        assert commandstats(redis_client).get("xadd") == 51
        redis_client.xtrim(KEYS.history, maxlen=50, approximate=False)
        runs = read_runs(redis_client, KEYS)
        assert sorted(run.entry for run in runs) == sorted(names)
        assert {run.state for run in runs} == {RunState.PENDING}
        assert {run.slot for run in runs} == {NOW.timestamp()}
        # the outcomes ride on the next tick's fetch: still one round trip when idle
        trips.reset()
        scheduler.tick()
        assert trips.commands == ["EVALSHA"]
    runs = read_runs(redis_client, KEYS)
    assert len(runs) == 50 and {run.state for run in runs} == {RunState.SENT}
    assert all(run.claimed_at is not None and run.sent_at >= run.claimed_at for run in runs)
    assert all(run.lag is not None and run.lag >= 0 for run in runs)


def test_a_failed_send_is_recorded_as_lost_with_the_reason(redis_url, redis_client, caplog):
    class BrokenBroker(RedBeatScheduler):
        def apply_async(self, entry, producer=None, advance=True, **kwargs):  # type: ignore[no-untyped-def]
            raise ConnectionError("broker <down>")

    app = make_app(redis_url, now=NOW)
    with current(app):
        scheduler = BrokenBroker(app=app)
        add_due(redis_client, ["nightly report"])
        with caplog.at_level(logging.ERROR):
            scheduler.tick()
        scheduler.close()  # beat's shutdown records the last tick's outcomes
    [run] = read_runs(redis_client, KEYS, entry="nightly report")
    assert run.state is RunState.LOST
    assert run.lost_reason == "send failed: broker <down>"
    assert run.as_json()["state"] == "lost"


def test_a_deposed_leader_records_no_claim_but_its_earlier_outcomes(redis_url, redis_client):
    app = make_app(redis_url, now=NOW)
    with current(app):
        scheduler = Recording(app=app)
        add_due(redis_client, ["a"])
        scheduler.tick()
        redis_client.set(KEYS.lock, "someone-else")
        add_due(redis_client, ["b"])
        app.now.set(NOW + timedelta(seconds=1))
        scheduler.tick()
        assert not scheduler.is_leader
    runs = read_runs(redis_client, KEYS)
    assert [(run.entry, run.state) for run in runs] == [("a", RunState.SENT)]


def test_history_size_caps_the_stream_and_zero_turns_it_off(redis_url, redis_client):
    app = make_app(redis_url, now=NOW, redbeat_lock_key=None, redbeat_history_size=100)
    with current(app):
        scheduler = Recording(app=app)
        for minute in range(8):
            app.now.set(NOW + timedelta(minutes=minute))
            add_due(redis_client, [f"job-{i}" for i in range(100)], every=60.0)
            redis_client.zadd(KEYS.schedule, {KEYS.entry(f"job-{i}"): 0 for i in range(100)})
            scheduler.tick()
        assert len(scheduler.sent) == 800
    # MAXLEN ~ trims whole stream nodes (100 records each): 200 kept, at most one node more
    assert 200 <= redis_client.xlen(KEYS.history) <= 300
    redis_client.flushdb()
    off = make_app(redis_url, now=NOW, redbeat_lock_key=None, redbeat_history_size=0)
    with current(off):
        scheduler = Recording(app=off)
        add_due(redis_client, ["x"])
        scheduler.tick()
        scheduler.tick()
        assert scheduler.sent_names == ["x"]
    assert not redis_client.exists(KEYS.history)


@pytest.mark.parametrize("bad", [-1, "many", 2.5, True])
def test_a_bad_history_size_keeps_the_default_with_a_warning(redis_url, bad, caplog):
    from redbeat.config import RedBeatConfig

    with caplog.at_level(logging.WARNING):
        conf = RedBeatConfig(make_app(redis_url, redbeat_history_size=bad))
    assert conf.history_size == 10_000
    assert "redbeat_history_size" in caplog.text
