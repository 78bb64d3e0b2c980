"""The README's quick-start demo, run as ``scripts/demo.sh`` runs it (minus the install).

It applies the example manifests, edits a copy (``demo-heartbeat`` every 2 s
-> 4 s, a new ``demo-sweep``), shows the dry-run diff, applies it to the same
running beat, and stops everything.  The timings are checked on the runs the
worker itself recorded (``--record``), not on the demo's own summary.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 0.5  # seconds, on every observed gap


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def _between(out: str, start: str, end: str) -> str:
    return out[out.index(start):out.index(end)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One run of the demo with its default timings: (exit code, output, record)."""
    record_path = tmp_path_factory.mktemp("demo") / "record.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDBEAT_", "DEMO_"))}
    env.update(COLUMNS="200", TERM="dumb")
    result = subprocess.run(
        [sys.executable, "examples/demo/run.py", "--record", str(record_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=55,
    )
    out = result.stdout + result.stderr
    record = json.loads(record_path.read_text()) if record_path.exists() else None
    return result.returncode, out, record


@pytest.mark.exclusive
@pytest.mark.slow
@pytest.mark.timeout(60)
def test_demo_shows_the_edit_diff_apply_loop_and_the_new_timing_without_restarting_beat(demo):
    code, out, record = demo
    assert code == 0, out
    assert record is not None, out

    # Numbered stages, in order.
    positions = [out.index(f"{n}/8 ") for n in range(1, 9)]
    assert positions == sorted(positions), out

    # The first apply creates the example entries; the dry run shows exactly the edit and writes nothing.
    assert "+ create   demo-heartbeat" in _between(out, "2/8 ", "3/8 "), out
    # The web console over the same Redis and manifests, its URL printed while the tasks run.
    assert record["console_url"] and record["console_url"].startswith("http://127.0.0.1:"), record
    assert f"web console (redbeat-apply console) at {record['console_url']}" in _between(out, "2/8 ", "3/8 "), out
    dry_run = _between(out, "5/8 ", "6/8 ")
    assert "$ redbeat-apply --dry-run schedules/" in dry_run, out
    assert "~ update   demo-heartbeat" in dry_run and 'every: "2s" -> "4s"' in dry_run, out
    assert "+ create   demo-sweep" in dry_run, out
    assert "Plan: 1 to create, 1 to update, 0 to delete, 8 unchanged." in dry_run, out
    assert "Dry run: nothing was written." in dry_run, out
    assert "Applied 2 changes" in _between(out, "6/8 ", "7/8 "), out

    # The timing, from the runs the worker recorded.
    edit = record["edit_applied_at"]
    runs = record["runs"]
    heartbeats = [r["at"] for r in runs if r["task"] == "demo.tasks.heartbeat"]
    before = [t for t in heartbeats if t < edit]
    after = [t for t in heartbeats if t >= edit]
    gaps_before, gaps_after = _gaps(before), _gaps(after)
    assert len(gaps_before) >= 4 and all(abs(g - 2.0) <= TOLERANCE for g in gaps_before), gaps_before
    assert len(gaps_after) >= 2 and all(abs(g - 4.0) <= TOLERANCE for g in gaps_after), gaps_after
    across = after[0] - before[-1]  # the last run before the edit + the new interval: no run lost, none early
    assert 2.0 - TOLERANCE <= across <= 4.0 + TOLERANCE, across
    sweeps = [r["at"] for r in runs if r["task"] == "demo.tasks.cleanup" and r["args"] == ["cache"]]
    assert len(sweeps) >= 2 and min(sweeps) > edit, (sweeps, edit)  # the new entry runs, only after the apply
    assert all(abs(g - 3.0) <= TOLERANCE for g in _gaps(sweeps)), _gaps(sweeps)
    # No task ran in a loop: no entry of the demo runs more often than every 2 s.
    by_entry: dict[str, list[float]] = {}
    for r in runs:
        by_entry.setdefault(f"{r['task']} {r['args']} {r['kwargs']}", []).append(r["at"])
    assert {"demo.tasks.heartbeat [] {}", "demo.tasks.report [] {'format': 'text'}"} <= set(by_entry), by_entry
    assert all(g >= 2.0 - TOLERANCE for times in by_entry.values() for g in _gaps(times)), by_entry

    # The summary says what the worker recorded.
    summary = re.search(r"mean gap (\d+\.\d\d)s before the edit \(\d+ gaps?\), (\d+\.\d\d)s after", out)
    assert summary, out
    assert float(summary[1]) == pytest.approx(sum(gaps_before) / len(gaps_before), abs=0.006)
    assert float(summary[2]) == pytest.approx(sum(gaps_after) / len(gaps_after), abs=0.006)

    # Beat was never restarted: the pid it started with is the pid it ended with, and the one printed.
    beat_pid = record["children"]["beat"]
    assert record["beat_pid_at_start"] == record["beat_pid_at_end"] == beat_pid, record
    # ... and the leader lock was held by the same holder throughout (a restart takes it with a new token).
    assert record["lock_token_at_start"] == record["lock_token_at_end"], record
    assert record["lock_token_at_end"].split(":")[-2] == str(beat_pid), record
    assert f"celery beat -S redbeat.Scheduler (pid {beat_pid})" in out, out
    assert f"pid {beat_pid} at the start, pid {beat_pid} at the end" in out, out


@pytest.mark.exclusive
@pytest.mark.slow
@pytest.mark.timeout(60)
def test_demo_stops_every_process_and_removes_its_temp_dir(demo):
    code, out, record = demo
    assert code == 0 and record is not None, out
    assert set(record["children"]) == {"redis-server", "worker", "beat", "console"}, record
    for _name, pid in record["children"].items():
        with pytest.raises(ProcessLookupError):  # each child led its own process group: none of it is left
            os.killpg(pid, 0)
    workdir = Path(record["workdir"])
    assert workdir.name.startswith("redbeat-demo-") and not workdir.exists(), record
    assert f"removed {workdir}" in out, out
    port = int(re.fullmatch(r"redis://127\.0\.0\.1:(\d+)/0", record["redis_url"])[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the demo's redis-server is still running"
    console_port = int(record["console_url"].rsplit(":", 1)[1].strip("/"))
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", console_port)) != 0, "the demo's console is still listening"
