"""The benchmark commands the documentation shows, run at small sizes: they work and record no machine path.

``python -m bench``, ``bench/validate_bench.py`` and ``bench/watch_latency.py``
each start their own redis-server (and, for the bench, celery-redbeat 2.4.2's
virtualenv and real ``celery beat`` processes) and stop them. Each runs here in
its own process group, killed by its pid if it overruns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.redis_proc import env_without_redbeat

ROOT = Path(__file__).resolve().parents[2]


def run_script(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` from the clone's root, with this interpreter; its whole process group dies on a timeout."""
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env_without_redbeat(), start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _machine_paths() -> tuple[str, ...]:
    """Paths of this machine a committed result or a pasted output must not contain."""
    return (str(ROOT), str(Path(sys.executable).parent))


@pytest.mark.slow
@pytest.mark.compat
def test_bench_runs_both_implementations_and_records_the_command(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    result = run_script("-m", "bench", "--quick", "--only", "idle,startup,overhead", "--rounds", "1", "--strict",
                        "--output", str(output))
    document = json.loads(output.read_text())
    missed = [row for row in document["rows"] if row["met"] is False]
    # --strict: exit 1 exactly when a target is missed (a quick run on a busy machine may miss one).
    assert result.returncode == (1 if missed else 0), result.stdout + result.stderr[-3000:]
    assert document["failures"] == []
    assert document["command"] == "python -m bench --quick --only idle --only startup --only overhead"
    scenarios = {row["scenario"] for row in document["rows"]}
    assert {"idle tick", "start-up, first start", "start-up, restart, unchanged",
            "tick overhead beyond bare send_task, redis broker"} <= scenarios
    overhead = document["raw"]["overhead N=1000 K=100"]
    # every timed tick sent its 100 messages, beside its own bare send_task loop of the same messages
    assert [len(overhead[impl]) for impl in ("celery-redbeat", "ours")] == [2, 2]
    assert all(run["tick"]["sent"] == 100 and run["floor_seconds"] > 0 for impl in overhead.values() for run in impl)
    assert all(row["ours"] and row["celery_redbeat_or_baseline"] for row in document["rows"])
    paths = {name: impl["redbeat_path"] for name, impl in document["machine"]["implementations"].items()}
    assert paths == {"ours": "redbeat", "celery-redbeat": paths["celery-redbeat"]}
    assert paths["celery-redbeat"].startswith(".cache/") and paths["celery-redbeat"].endswith("/redbeat")
    text = output.read_text()
    assert not [path for path in _machine_paths() if path in text]


@pytest.mark.slow
def test_validate_bench() -> None:
    result = run_script("bench/validate_bench.py", "--files", "10", "--per-file", "10", "--repeat", "1")
    assert result.returncode == 0, result.stdout + result.stderr  # without --strict a missed target is reported
    lines = result.stdout.splitlines()
    assert lines[0] == "schedules: 100 in 10 files"
    assert any(line.startswith("load_desired (load + validate): ") for line in lines)
    assert any(line.startswith("cold apply (load + validate + plan + apply): ") for line in lines)
    assert any(line.startswith("peak RSS after the validate runs: ") and line.endswith(" MiB") for line in lines)
    verdicts = [line for line in lines if " ratio " in line]
    assert [v.split(":")[0] for v in verdicts] == ["validate", "cold apply"], result.stdout
    assert all(v.endswith(("✓", "✗ missed")) for v in verdicts)
    strict = run_script("bench/validate_bench.py", "--files", "2", "--per-file", "5", "--repeat", "1", "--no-apply",
                        "--strict")
    missed = "✗ missed" in strict.stdout
    assert strict.returncode == (1 if missed else 0), strict.stdout + strict.stderr
    assert "cold apply" not in strict.stdout


@pytest.mark.slow
def test_watch_latency() -> None:
    result = run_script("bench/watch_latency.py", "--writes", "3", "--beat-writes", "1", "--entries", "5")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    # The command as a reader would type it, not this interpreter's path.
    assert lines[0] == "$ python bench/watch_latency.py --writes 3 --beat-writes 1 --entries 5"
    assert any(line.startswith("file write -> Redis") and "n=3 " in line for line in lines), result.stdout
    assert any(line.startswith("file write -> beat dispatch") and "n=1 " in line for line in lines), result.stdout
    assert not [path for path in _machine_paths() if path in result.stdout]


@pytest.mark.slow
def test_watch_latency_at_scale() -> None:
    result = run_script("bench/watch_latency.py", "--scale", "200,400", "--writes", "2")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "$ python bench/watch_latency.py --scale 200,400 --writes 2"
    rows = [line.split() for line in lines if line.split() and line.split()[0] in ("200", "400")]
    assert [row[0] for row in rows] == ["200", "400"] and all(len(row) == 14 for row in rows), result.stdout
    assert sum(1 for line in lines if line.lstrip().startswith(("\u2713", "\u2717"))) == 4, result.stdout


def test_console_bench() -> None:
    result = run_script("-m", "bench.console_bench", "--entries", "300", "--repeat", "1")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "entries: 300"
    assert any(line.startswith("baseline: raw Redis read") for line in lines), result.stdout
    assert any(line.startswith("timeline, 24 h") and "x the raw read" in line for line in lines), result.stdout
    assert lines[-1].startswith("targets: page < 300 ms: met; 24 h timeline < 1 s: met"), result.stdout
    assert not [path for path in _machine_paths() if path in result.stdout]


@pytest.mark.slow
def test_watch_latency_resync_only() -> None:
    result = run_script("bench/watch_latency.py", "--scale", "300,600", "--only", "resync")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "$ python bench/watch_latency.py --scale 300,600 --only resync"
    rows = [line.split() for line in lines if line.split() and line.split()[0] in ("300", "600")]
    assert [row[0] for row in rows] == ["300", "600"] and all(len(row) == 8 for row in rows), result.stdout
    assert all(float(row[7]) > 0 for row in rows), result.stdout  # the longest script call, from SLOWLOG
    assert any("without the change feed (fingerprints)" in line for line in lines), result.stdout
    targets = [line for line in lines if line.lstrip().startswith(("\u2713", "\u2717"))]
    assert len(targets) == 1 and "no-op resync" in targets[0], result.stdout


def test_tick_profile_splits_our_tick_beside_a_bare_send_loop() -> None:
    result = run_script("-m", "bench.tick_profile", "--n", "300", "--k", "30", "--repeat", "2", "--profile")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "our tick, K=30 due of N=300, Redis broker; medians of 2 ticks"
    rows = [line.split()[0] for line in lines[1:11]]
    assert rows == ["tick", "bare", "overhead", "fetch", "decide", "settle", "scripts", "send_task", "apply", "rest"]
    assert "_settle_one" in result.stdout  # the profile of our part of the ticks
    assert not [path for path in _machine_paths() if path in result.stdout]


def test_tick_profile_refuses_sizes_it_cannot_run() -> None:
    result = run_script("-m", "bench.tick_profile", "--n", "10", "--k", "10", timeout=60)
    assert result.returncode == 2 and "need 0 < K < N" in result.stderr
