"""Redis going away under beat: a kill -9 and restart (retry_period), idle connections dropped (#252)."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
import redis
from celery.schedules import schedule
from support.redis_proc import RedisProcess, free_port
from support.topologies import wait_port_closed
from topology.helpers import Recording, beat_app, pinned_now

from redbeat import RedBeatSchedulerEntry as Entry
from redbeat.client import RetryingConnection, build_client

pytestmark = [pytest.mark.topology, pytest.mark.exclusive]


@pytest.fixture
def durable_redis(tmp_path):
    """A redis-server that keeps its data across kill -9 (AOF, fsync always), restartable on its port."""
    server = RedisProcess("--appendonly", "yes", "--appendfsync", "always", workdir=tmp_path / "redis")
    server.dir.mkdir(parents=True)
    server.start()
    yield server
    server.cleanup()


def run_beat(scheduler, seconds: float, sent_at: list[float]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        before = len(scheduler.sent)
        interval = scheduler.tick()
        sent_at += [time.monotonic()] * (len(scheduler.sent) - before)
        time.sleep(max(0.0, min(interval, 0.1, deadline - time.monotonic())))


@pytest.mark.parametrize("retry_period", [10, None])
def test_beat_rides_out_a_redis_kill_and_restart(durable_redis, caplog, retry_period):
    options = {"retry_period": retry_period} if retry_period is not None else {}
    with caplog.at_level(logging.WARNING, logger="celery.beat"), \
            beat_app(durable_redis.url, redbeat_redis_options=options, redbeat_lock_timeout=10) as app:
        Entry("half", "tasks.half", schedule(0.5), app=app).save()
        scheduler = Recording(app=app)
        sent_at: list[float] = []
        down: dict[str, float] = {}

        def restart() -> None:
            time.sleep(1.5)
            durable_redis.kill()
            down["at"] = time.monotonic()
            wait_port_closed(durable_redis.port)
            time.sleep(1.5)
            durable_redis.start()
            down["back"] = time.monotonic()

        thread = threading.Thread(target=restart, daemon=True)
        thread.start()
        run_beat(scheduler, 7.0, sent_at)
        thread.join(timeout=10)
        scheduler.close()

    assert set(down) == {"at", "back"}
    before = [t for t in sent_at if t < down["at"]]
    after = [t for t in sent_at if t > down["back"]]
    assert len(before) >= 2 and len(after) >= 4, (before, after, caplog.text[-2000:])
    slots = [s.last_run_at for s in scheduler.sent]
    assert len(slots) == len(set(slots))
    meta = json.loads(durable_redis.client().hget("redbeat:half", "meta"))
    assert meta["total_run_count"] == len(scheduler.sent)
    expected = "Redis unavailable" if retry_period is not None else "Redis error during tick"
    assert expected in caplog.text


def test_retrying_connection_gives_up_after_retry_period(caplog):
    port = free_port()  # nothing listens here
    client = build_client(f"redis://127.0.0.1:{port}/0", {"retry_period": 1.2}, forward_options=False)
    assert isinstance(client, RetryingConnection)
    script = client.register_script("return 1")
    for call in (client.ping, lambda: script(keys=[], args=[])):
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="celery.beat"), pytest.raises(redis.ConnectionError):
            call()
        assert 0.4 < time.monotonic() - started < 3.0
    assert "retrying in 0.5s" in caplog.text
    assert "still unavailable after retry_period=1.2s" in caplog.text


def test_retrying_connection_waits_for_a_restart_within_retry_period(durable_redis):
    client = build_client(durable_redis.url, {"retry_period": -1}, forward_options=False)  # -1: forever
    script = client.register_script("return redis.call('INCR', KEYS[1])")
    assert script(keys=["n"]) == 1
    durable_redis.kill()
    wait_port_closed(durable_redis.port)
    threading.Timer(1.0, durable_redis.start).start()
    started = time.monotonic()
    assert script(keys=["n"]) == 2  # survived kill -9 (AOF); the call waited for the restart
    assert time.monotonic() - started > 0.8
    client.wrapped_connection.close()


@pytest.mark.parametrize("drop", ["server timeout", "client kill"])
def test_beat_recovers_connections_the_server_dropped(fresh_redis, caplog, drop):
    """celery-redbeat #252: managed Redis closes idle connections; the next tick must just work."""
    with caplog.at_level(logging.WARNING, logger="celery.beat"), beat_app(fresh_redis.url, now=pinned_now()) as app:
        Entry("idle", "tasks.idle", schedule(10), app=app).save()
        scheduler = Recording(app=app)
        app.now.advance(10)
        scheduler.tick()
        admin = fresh_redis.client()
        if drop == "server timeout":
            admin.config_set("timeout", 1)
            time.sleep(2.2)
        else:
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
        assert len([c for c in admin.client_list() if c["cmd"] != "client|list"]) == 0
        app.now.advance(10)
        scheduler.tick()
        assert scheduler.sent_names == ["idle", "idle"]
        scheduler.close()
    assert "error" not in caplog.text.lower()


def test_the_wake_subscription_survives_a_dropped_connection(fresh_redis):
    """A beat sleeping on change notifications is still woken by a save after its pub/sub connection was killed.

    Redis never times out pub/sub clients, but proxies and managed services
    drop them (#252); CLIENT KILL TYPE pubsub stands in for that.
    """
    with beat_app(fresh_redis.url, now=pinned_now(), redbeat_lock_timeout=300) as app:
        scheduler = Recording(app=app)
        scheduler.wait_for_changes = True
        scheduler.max_interval = 5.0
        Entry("later", "tasks.later", schedule(60), app=app).save()
        scheduler._changes._subscription()  # as after beat's first tick
        admin = fresh_redis.client()
        assert admin.client_kill_filter(_type="pubsub") == 1
        writer = redis.Redis.from_url(fresh_redis.url)

        def save_soon() -> None:
            time.sleep(0.5)
            writer.publish("redbeat::wake", "redbeat:urgent")

        thread = threading.Thread(target=save_soon)
        started = time.monotonic()
        thread.start()
        assert scheduler.tick() == 0.0
        elapsed = time.monotonic() - started
        thread.join()
        assert 0.4 < elapsed < 2.0, f"woken after {elapsed:.2f}s"
        scheduler.close()
        writer.close()
