"""Operating schedules end to end: a real beat and worker, the installed redbeat-apply reading what they did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_beat_worker import save_every_second

from redbeat import RedBeatSchedulerEntry

BIN = Path(sys.executable).parent / "redbeat-apply"


def redbeat_apply(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDBEAT_")}
    return subprocess.run([str(BIN), *args, "--redis-url", redis_url], capture_output=True, text=True, timeout=60,
                          env=env)


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_history_and_status_show_every_run_the_worker_executed(celery_rig, writer_app, fresh_redis):
    celery_rig.worker()
    beat = celery_rig.beat()
    celery_rig.wait_for(beat, "this instance leads", timeout=20)
    save_every_second(writer_app)
    time.sleep(4)
    entry = RedBeatSchedulerEntry.from_key("redbeat:tick", app=writer_app)
    entry.enabled = False
    entry.save()  # no further runs; beat's next tick records the last run's outcome
    time.sleep(2)
    executed = len(celery_rig.runs())

    shown = redbeat_apply(fresh_redis.url, "history", "tick", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    runs = json.loads(shown.stdout)["runs"]
    assert executed >= 3 and [run["state"] for run in runs] == ["sent"] * executed
    assert len({run["slot"] for run in runs}) == executed  # one run per slot
    assert all(0 <= run["lag_seconds"] < 1.5 for run in runs), runs

    text = redbeat_apply(fresh_redis.url, "history", "--since", "5m")
    lines = text.stdout.splitlines()
    assert text.returncode == 0 and lines[0].split()[:3] == ["entry", "slot", "(UTC)"], text.stdout
    assert [line.split()[5] for line in lines[1:]] == ["sent"] * executed, text.stdout
    status = redbeat_apply(fresh_redis.url, "status", "--output", "json")
    [row] = json.loads(status.stdout)["entries"]
    assert [run["state"] for run in row["recent_runs"]] == ["sent"] * min(3, executed)
    assert 0 <= row["dispatch_lag_seconds"] < 1.5

    unknown = redbeat_apply(fresh_redis.url, "history", "no-such-entry")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.strip() == "redbeat-apply: error: no entry named no-such-entry under redbeat:*"
