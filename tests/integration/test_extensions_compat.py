"""Entries with our extensions stay runnable by celery-redbeat 2.4.2 (without the extensions), proven against it.

redbeat-apply writes the entries from manifests that use every extension;
celery-redbeat's own from_key loads each, and its tick runs the due ones.
"""

from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from support.beat import current, make_app, recording_scheduler_class
from support.celery_redbeat_venv import run_compat_script

from reconciler.sync.reconcile import connect, load, reconcile

pytestmark = pytest.mark.compat

UTC = timezone.utc
NOW = datetime(2026, 12, 1, 8, 0, 30, tzinfo=UTC)

MANIFEST = """\
defaults:
  task: app.tasks.job
schedules:
  - name: berlin-morning
    cron: "0 9 * * *"
    timezone: Europe/Berlin
  - name: spread
    every: 1m
    jitter: 20s
    catch_up: skip
  - name: all-missed
    every: 5m
    catch_up: all
    catch_up_limit: 3
    starting_deadline: 1h
  - name: windowed
    every: 10m
    start_at: "2026-11-01T00:00:00Z"
    end_at: "2027-01-01T00:00:00Z"
  - name: once
    at: "2026-12-01T08:00:00Z"
  - name: nth-friday
    rrule:
      {freq: monthly, byweekday: ["1fr"], byhour: [7], byminute: [0], bysecond: [0], dtstart: "2026-01-01T00:00:00Z"}
"""


def test_celery_redbeat_loads_and_runs_entries_with_extensions(
    celery_redbeat_python, redis_url, redis_client, tmp_path
):
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent(MANIFEST))
    desired = load([tmp_path])
    assert {n for n, e in desired.items() if e.ext} == {
        "berlin-morning",
        "spread",
        "all-missed",
        "windowed",
        "nth-friday",
    }
    reconcile(desired, connect(redis_url), clock=lambda: NOW.timestamp() - 3600)
    # Every entry has ext beside the definition, and nothing of ours inside it.
    for name in desired:
        stored = json.loads(redis_client.hget(f"redbeat:{name}", "definition"))
        assert list(stored) == ["name", "task", "args", "kwargs", "options", "schedule", "enabled"]

    def compat(script: str) -> dict[str, Any]:
        """A celery-redbeat 2.4.2 script's JSON answer about this Redis at NOW."""
        args = ["--redis-url", redis_url, "--prefix", "redbeat:", "--now", NOW.isoformat()]
        answer: dict[str, Any] = json.loads(run_compat_script(script, *args, python=celery_redbeat_python))
        return answer

    read = compat("cr_read.py")
    assert read["errors"] == []
    assert sorted(e["name"] for e in read["entries"]) == sorted(desired)

    ticked = compat("cr_tick.py")
    # celery-redbeat runs what it can see: never-run entries at once (its #79), the one-off at its time,
    # without jitter, windows or catch-up rules (validate --compat celery-redbeat warns about exactly that).
    assert sorted(s["name"] for s in ticked["sent"]) == sorted(desired)


def test_one_off_at_the_moment_of_a_failover_runs_once(redis_url, redis_client, tmp_path):
    """The leader claims the one-off and dies; the standby that takes over must not run it again."""
    (tmp_path / "once.yaml").write_text('name: once\ntask: app.tasks.job\nat: "2026-12-01T08:00:00Z"\n')
    reconcile(load([tmp_path]), connect(redis_url), clock=lambda: NOW.timestamp() - 3600)
    Recording = recording_scheduler_class()
    leader_app = make_app(redis_url, now=NOW, redbeat_lock_timeout=30, result_expires=None)
    standby_app = make_app(redis_url, now=NOW, redbeat_lock_timeout=30, result_expires=None)
    with current(leader_app):
        leader = Recording(app=leader_app)
        assert leader.is_leader
        leader.tick()
    assert [s.name for s in leader.sent] == ["once"]
    # The leader dies without releasing: its lease runs out.
    redis_client.delete("redbeat::lock")
    with current(standby_app):
        standby = Recording(app=standby_app)
        for seconds in (1, 15, 3600, 86400 * 30):
            standby_app.now.set(NOW + timedelta(seconds=seconds))
            standby.tick()
    assert standby.is_leader and standby.sent == []
    assert redis_client.zscore("redbeat::schedule", "redbeat:once") == -1
    # And if the leader died *before* claiming, the standby runs it once, late.
    redis_client.flushdb()
    reconcile(load([tmp_path]), connect(redis_url), clock=lambda: NOW.timestamp() - 3600)
    with current(standby_app):
        fresh = Recording(app=standby_app)
        for seconds in (20, 40):
            standby_app.now.set(NOW + timedelta(seconds=seconds))
            fresh.tick()
    assert [s.name for s in fresh.sent] == ["once"]
    assert fresh.sent[0].last_run_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    leader.close()
    standby.close()
    fresh.close()
