"""The history-cost bench runs and shows what it must: 2 round trips with and without history, the XADDs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_history_cost_bench_reports_two_round_trips_and_the_xadds(tmp_path):
    results = tmp_path / "history_cost.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.history_cost", "--k", "20", "--n", "100", "--rounds", "2", "--broker", "memory",
         "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(results.read_text())
    assert summary["round_trips"] == {"without": 2, "with": 2}
    assert summary["xadd_per_tick"] == {"without": 0, "with": 40}  # 20 claims + the previous tick's 20 outcomes
    assert "history costs" in done.stdout and "round trips 2 / 2" in done.stdout
