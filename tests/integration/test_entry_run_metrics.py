"""The opt-in per-entry run metrics: bounded by redbeat_metrics_entries, absent unless asked for."""

from __future__ import annotations

import re
import time
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from celery.schedules import schedule
from support.beat import current, make_app, recording_scheduler_class
from support.redis_proc import free_port

from redbeat import RedBeatSchedulerEntry
from redbeat.metrics import parse_entry_limit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
Recording = recording_scheduler_class()
NAMES = ('a "quoted" \\ name', "b/ü[x]", "c")


def tick_and_scrape(redis_url: str, **conf: object) -> str:
    port = free_port()
    app = make_app(redis_url, now=NOW, redbeat_metrics_listen=f"127.0.0.1:{port}", result_expires=None, **conf)
    with current(app):
        for name in NAMES:
            RedBeatSchedulerEntry(name, "app.tasks.t", schedule(timedelta(seconds=10)), app=app,
                                  last_run_at=NOW - timedelta(seconds=12)).save()
        scheduler = Recording(app=app)
        scheduler.start_metrics()
        try:
            scheduler.tick()
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        finally:
            scheduler.close()


def samples(text: str, metric: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith(metric + "{") or line.startswith(metric + " "):
            series, _, value = line.rpartition(" ")
            found[series] = float(value)
    return found


def test_entry_series_are_bounded_by_the_limit(redis_url):
    before = time.time()
    text = tick_and_scrape(redis_url, redbeat_metrics_entries=2)
    last = samples(text, "redbeat_beat_entry_last_run_timestamp_seconds")
    nxt = samples(text, "redbeat_beat_entry_next_run_timestamp_seconds")
    assert len(last) == len(nxt) == 2, "two of three entries get series; the third is only counted"
    assert all(value >= before for value in last.values())
    # Slot-aligned: last run NOW-12s, every 10s -> due NOW+8s.
    assert set(nxt.values()) == {(NOW + timedelta(seconds=8)).timestamp()}
    assert samples(text, "redbeat_beat_entry_runs_unlabelled_total") == {"redbeat_beat_entry_runs_unlabelled_total": 1}
    # Label values are escaped, never a broken exposition line: each reads back as an entry's name.
    labels = [re.fullmatch(r'[a-z_]+\{entry="((?:[^"\\]|\\.)*)"\}', series) for series in last]
    assert all(labels), last
    assert {re.sub(r"\\(.)", r"\1", m.group(1)) for m in labels if m} <= set(NAMES)


def test_entry_series_are_off_by_default(redis_url):
    text = tick_and_scrape(redis_url)
    assert "redbeat_beat_entry_" not in text
    assert "redbeat_beat_dispatches_total 3.0" in text


@pytest.mark.parametrize(("value", "expected"), [(None, 0), (0, 0), ("25", 25), (500, 500)])
def test_entry_limit_setting(value, expected):
    assert parse_entry_limit(value) == expected


@pytest.mark.parametrize("value", ["lots", -1, 2.5, "1e3"])
def test_entry_limit_rejects_nonsense(value):
    with pytest.raises(ValueError, match="redbeat_metrics_entries"):
        parse_entry_limit(value)
