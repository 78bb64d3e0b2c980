"""Scenario 3: beat at full speed + repeated redbeat-apply + a user's process saving and deleting entries.

Afterwards, from the worker's record and Redis: no lost ``meta`` (every
entry's total_run_count equals its recorded runs, numbered 1..N without a
gap or a repeat), nothing dispatched twice, and no deleted entry back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from applyrun import run_apply, write_manifest
from rel_support import by_name, duplicate_slots, leader_pid, make_rig, report, scaled, wait_drained
from support.redis_proc import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.reliability, pytest.mark.exclusive]
HERE = Path(__file__).resolve().parent


def start_manual_writer(redis_url: str, seconds: float, deletions: Path, names: list[str]) -> subprocess.Popen[str]:
    """manual_writer.py saving and deleting `names` for `seconds`, logging its deletions to `deletions`."""
    return subprocess.Popen(
        [sys.executable, str(HERE / "manual_writer.py"), redis_url, str(seconds), str(deletions),
         ",".join(names)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def apply_repeatedly(
    redis_url: str, manifest: Path, managed: list[str], seconds: float, applies: list[tuple[int, str]],
    apply_seconds: list[float],
) -> float | None:
    """Apply a new generation of `managed` back to back for `seconds`, dropping the first two half-way.

    Each apply is a fresh process (seconds each on a loaded machine), so how many fit in the window varies:
    the prune is due by the clock (half-way, or from the 4th apply if they come quickly), and the applies go on
    past the window until one that prunes has gone through, so the deletions the test checks always happen.
    Bounded: a prune that never applies returns None, which fails the test.  Each apply's (exit code, output)
    is appended to `applies`, its duration to `apply_seconds`; returns when the first pruning apply succeeded.
    """
    started = time.time()
    deadline, halfway = started + seconds, started + seconds / 2
    gen = 0
    pruned_at = None
    while time.time() < deadline or (pruned_at is None and time.time() < deadline + 120):
        gen += 1
        prune = gen >= 4 or time.time() >= halfway
        keep = managed[2:] if prune else managed
        write_manifest(manifest, [{"name": nm, "every": "200ms", "kwargs": {"gen": gen}} for nm in keep])
        began = time.time()
        result = run_apply(redis_url, manifest)
        applies.append((result.returncode, result.stdout + result.stderr))
        apply_seconds.append(time.time() - began)
        if prune and pruned_at is None and result.returncode == 0:
            pruned_at = time.time()
    return pruned_at


def deletions_by_name(deletions: Path, pruned: list[str], pruned_at: float) -> tuple[dict, dict[str, float]]:
    """The manual writer's totals, and when each deleted name was deleted (by it, or pruned by an apply)."""
    lines = [json.loads(line) for line in deletions.read_text().splitlines()]
    deleted = {d["name"]: d["deleted_at"] for d in lines[:-1]}
    deleted.update({name: pruned_at for name in pruned})
    return lines[-1], deleted


def entry_keys_members_and_metas(client) -> tuple[set[str], set[str], dict[str, str | None]]:
    """The entry keys in Redis, the schedule's members, and each entry's meta by name."""
    keys = {k for k in client.keys("redbeat:*") if not k.startswith("redbeat::")}
    members = set(client.zrange("redbeat::schedule", 0, -1))
    metas = {k.removeprefix("redbeat:"): client.hget(k, "meta") for k in keys}
    return keys, members, metas


def lost_meta_and_count_gaps(
    metas: dict[str, str | None], grouped: dict[str, list[dict]]
) -> tuple[list[tuple[str, int, int]], list[tuple[str, list[int]]]]:
    """Entries whose total_run_count differs from their recorded runs, and those whose run counts are not 1..N."""
    lost_meta, gaps = [], []
    for name, meta in metas.items():
        total = int(json.loads(meta).get("total_run_count") or 0) if meta else 0
        counts = sorted(int(r["count"]) for r in grouped.get(name, []))
        if total != len(counts):
            lost_meta.append((name, total, len(counts)))
        if counts != list(range(1, len(counts) + 1)):
            gaps.append((name, counts))
    return lost_meta, gaps


@pytest.mark.timeout(400)
def test_no_lost_meta_no_resurrected_deletions(aof_redis, tmp_path):
    seconds = scaled(60, 15)
    n = int(scaled(30, 10))
    managed = [f"applied-{i:02d}" for i in range(n)]
    pruned = managed[:2]  # removed from the manifests half-way: never to come back
    manifest = tmp_path / "m" / "jobs.yaml"
    deletions = tmp_path / "deleted.jsonl"
    rig = make_rig(aof_redis.url, tmp_path, 3.0)
    client = aof_redis.client()
    applies: list[tuple[int, str]] = []
    apply_seconds: list[float] = []
    try:
        rig.worker()
        beat = rig.beat("beat")
        wait_until(lambda: leader_pid(client) is not None, timeout=30, message="a leader")
        write_manifest(manifest, [{"name": nm, "every": "200ms", "kwargs": {"gen": 0}} for nm in managed])
        assert run_apply(aof_redis.url, manifest).returncode == 0
        writer = start_manual_writer(aof_redis.url, seconds, deletions, managed[2:])
        started = time.time()
        pruned_at = apply_repeatedly(aof_redis.url, manifest, managed, seconds, applies, apply_seconds)
        writer_out, _ = writer.communicate(timeout=60)
        assert writer.returncode == 0, writer_out
        time.sleep(1)
        rig.stop(beat)
        runs = wait_drained(client, rig)
        keys, members, metas = entry_keys_members_and_metas(client)
    finally:
        rig.stop_all()

    assert pruned_at is not None, (applies[-3:], apply_seconds)
    totals, deleted = deletions_by_name(deletions, pruned, pruned_at)
    lost_meta, gaps = lost_meta_and_count_gaps(metas, by_name(runs))
    resurrected = sorted({f"redbeat:{n}" for n in deleted} & (keys | members))
    late = [r for r in runs if r["name"] in deleted and float(r["slot"]) >= deleted[r["name"]]]
    stale = [out for code, out in applies if code == 1]
    bad_applies = [out for code, out in applies if code not in (0, 1) or (code == 1 and "since the plan" not in out)]
    figures = {
        "seconds": round(seconds),
        "applied_entries": n,
        "applies": len(applies),
        "slowest_apply_s": round(max(apply_seconds), 1),
        "pruned_after_s": round(pruned_at - started, 1),
        "stale_plan_refusals": len(stale),
        "manual_saves": totals["saves"],
        "manual_deletes": totals["deletes"],
        "runs": len(runs),
        "entries_checked": len(metas),
        "lost_meta": len(lost_meta),
        "count_gaps": len(gaps),
        "duplicates": len(duplicate_slots(runs)),
        "resurrected": len(resurrected),
        "runs_after_delete": len(late),
    }
    report("concurrent-writers", figures)
    assert lost_meta == [], (lost_meta[:10], figures)
    assert gaps == [], (gaps[:3], figures)
    assert figures["duplicates"] == 0, figures
    assert resurrected == [] and late == [], (resurrected, late[:5], figures)
    assert bad_applies == [], bad_applies[:2]
    assert len(runs) >= seconds * n * 5 * 0.5, figures  # beat really ran at full speed meanwhile
