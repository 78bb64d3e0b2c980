"""The README's demo, run as ``scripts/demo.sh`` runs it (minus the install): it works and cleans up."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 7


@pytest.mark.slow
@pytest.mark.timeout(40)
def test_demo_runs_the_example_schedules_and_stops_everything():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDBEAT_", "DEMO_"))}
    env.update(COLUMNS="200", TERM="dumb")
    result = subprocess.run(
        [sys.executable, "examples/demo/run.py", "--seconds", str(SECONDS)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=35,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out

    assert "Plan: " in out and "create" in out, out  # redbeat-apply's output is shown
    runs = {
        m["task"]: (int(m["runs"]), m["gap"])
        for m in re.finditer(r"│ (?P<task>\w+)\s*│[^│]*│\s*(?P<runs>\d+) │\s*(?P<gap>[\d.]+s|-) │", out)
    }
    assert {"heartbeat", "report"} <= set(runs), out
    heartbeats, gap = runs["heartbeat"]
    assert SECONDS // 2 - 1 <= heartbeats <= SECONDS // 2 + 1, out  # every 2 s
    assert gap != "-" and abs(float(gap[:-1]) - 2.0) < 0.1, out
    # No task ran in a loop: the busiest (every 2 s) sets the ceiling.
    assert all(n <= SECONDS // 2 + 2 for n, _ in runs.values()), runs

    workdir = re.search(r"removed (/\S+redbeat-demo-\S+)", out)
    assert workdir and not Path(workdir[1]).exists(), out
    port = int(re.search(r"redis://127\.0\.0\.1:(\d+)/0", out)[1])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the demo's redis-server is still running"
