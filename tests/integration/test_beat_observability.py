"""Beat's opt-in Prometheus metrics and the leader heartbeat key."""

from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from celery.schedules import schedule
from support.beat import current, make_app, recording_scheduler_class
from support.redis_proc import free_port

from redbeat import RedBeatSchedulerEntry
from redbeat.metrics import parse_listen

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
Recording = recording_scheduler_class()


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_and_heartbeat_of_a_leader(redis_url, redis_client):
    port = free_port()
    app = make_app(redis_url, now=NOW, redbeat_metrics_listen=f"127.0.0.1:{port}", result_expires=None)
    with current(app):
        for i in range(3):
            RedBeatSchedulerEntry(f"e{i}", "app.tasks.t", schedule(timedelta(seconds=10)), app=app,
                                  last_run_at=NOW - timedelta(seconds=12)).save()
        scheduler = Recording(app=app)
        scheduler.start_metrics()
        try:
            scheduler.tick()
            values = scrape(port)
        finally:
            scheduler.close()
    assert values["redbeat_beat_leader"] == 1
    assert values["redbeat_beat_dispatches_total"] == 3
    assert values["redbeat_beat_entries_due"] == 3
    assert values["redbeat_beat_dispatch_lag_seconds_count"] == 3
    assert values['redbeat_beat_errors_total{kind="redis"}'] == 0
    assert values["redbeat_beat_lock_renew_seconds_count"] == 1
    assert values["redbeat_beat_last_tick_timestamp_seconds"] > 0
    heartbeat = json.loads(redis_client.get("redbeat::heartbeat"))
    assert heartbeat == {"holder": scheduler.lock.token, "tick_at": NOW.timestamp()}


def test_standby_reports_not_leader_and_writes_no_heartbeat(redis_url, redis_client):
    app = make_app(redis_url, now=NOW, result_expires=None, redbeat_metrics_listen=free_port())
    redis_client.set("redbeat::lock", "someone-else:1:abc", px=60_000)
    with current(app):
        standby = Recording(app=app)
        standby.tick()
    assert standby.metrics.leader._value.get() == 0
    assert redis_client.get("redbeat::heartbeat") is None
    standby.close()


def test_corrupt_entry_counts_as_an_entry_error(redis_url, redis_client):
    app = make_app(redis_url, now=NOW, redbeat_lock_key=None, result_expires=None, redbeat_metrics_listen=free_port())
    redis_client.hset("redbeat:bad", "definition", "{not json")
    redis_client.zadd("redbeat::schedule", {"redbeat:bad": 1})
    with current(app):
        scheduler = Recording(app=app)
        scheduler.tick()
    assert scheduler.metrics.errors.labels(kind="entry")._value.get() == 1
    scheduler.close()


@pytest.mark.parametrize(
    "value, expected", [(None, None), ("9186", "127.0.0.1:9186"), ("0.0.0.0:9186", "0.0.0.0:9186")]
)
def test_metrics_listen_setting(value, expected):
    assert parse_listen(value) == expected


def test_metrics_listen_rejects_nonsense():
    with pytest.raises(ValueError, match="redbeat_metrics_listen"):
        parse_listen("localhost")


def test_without_the_setting_no_metrics_are_kept(redis_url):
    from redbeat.metrics import NullMetrics

    app = make_app(redis_url, now=NOW, redbeat_lock_key=None, result_expires=None)
    scheduler = Recording(app=app)
    assert isinstance(scheduler.metrics, NullMetrics)
    scheduler.tick()  # every metric call is accepted
    scheduler.close()
