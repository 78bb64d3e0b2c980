"""The record checks and helpers shared by the reliability scenarios (RELIABILITY.md).

The processes come from the e2e rig (tests/support/celery_rig.py), run with
tests/reliability/relapp.py, whose worker records one JSON line per run
with the exact slot the beat claimed (see relapp's docstring).  Sizes scale
with REDBEAT_RELIABILITY_SCALE: ``small`` (default, CI), ``full`` (the
issue's sizes), or a number, the fraction of full.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from celery import Celery
from celery.schedules import schedule
from support.celery_rig import CeleryRig, Proc
from support.redis_proc import wait_until

HERE = Path(__file__).resolve().parent
SMALL = 1 / 3


def scale() -> float:
    raw = os.environ.get("REDBEAT_RELIABILITY_SCALE", "small").strip().lower()
    if raw in ("", "small", "ci"):
        return SMALL
    if raw == "full":
        return 1.0
    return max(0.05, min(float(raw), 10.0))


def scaled(full: float, minimum: float) -> float:
    """``full`` at full scale, proportionally less (never under ``minimum``) below it."""
    return max(minimum, full * scale())



def make_rig(redis_url: str, workdir: Path, lock_timeout: float = 3.0, **extra_env: str) -> CeleryRig:
    return CeleryRig(redis_url, workdir, lock_timeout, app="relapp", app_dir=HERE, extra_env=extra_env)


def save_interval_entries(app: Celery, names_every: dict[str, float], t0: datetime) -> None:
    """Entries of task rel.record(name), phase t0: the slots of one due every E seconds are t0 + k*E, k >= 1."""
    from redbeat import RedBeatSchedulerEntry

    for name, every in names_every.items():
        RedBeatSchedulerEntry(name, "rel.record", schedule(timedelta(seconds=every)), args=[name], app=app,
                              last_run_at=t0).save()


def leader_pid(client) -> int | None:
    value = client.get("redbeat::lock")
    if not value:
        return None
    return int(value.split(":")[-2])


def proc_of(procs: list[Proc], pid: int | None) -> Proc | None:
    return next((p for p in procs if p.pid == pid), None)


def is_stopped(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state in ("T", "t")


def wait_drained(client, rig: CeleryRig, timeout: float = 30.0, quiet: float = 1.0) -> list[dict]:
    """Wait until the broker queue is empty and the record stopped growing; return the record."""
    last = [-1, time.monotonic()]

    def settled() -> bool:
        n = len(rig.runs())
        now = time.monotonic()
        if n != last[0]:
            last[0], last[1] = n, now
            return False
        return client.llen("celery") == 0 and now - last[1] >= quiet

    wait_until(settled, timeout=timeout, interval=0.1, message="the worker to drain the queue")
    return rig.runs()


def stored_counts(client, names) -> dict[str, int]:
    out = {}
    for name in names:
        meta = client.hget(f"redbeat:{name}", "meta")
        out[name] = int(json.loads(meta).get("total_run_count") or 0) if meta else 0
    return out


# -- the record ----------------------------------------------------------------


@dataclass
class Outage:
    """A span with no working leader: from ``start`` (kill/pause) to ``end`` (the next leader's first send)."""

    start: float
    end: float


def by_name(runs: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        out[str(run["name"])].append(run)
    for name in out:
        out[name].sort(key=lambda r: (r["slot"], r["sent_at"]))
    return out


def duplicate_slots(runs: list[dict]) -> dict[tuple[str, float], list[str]]:
    """(name, slot) -> task ids, for slots dispatched as more than one message (a broker redelivery is one id)."""
    ids: dict[tuple[str, float], set[str]] = defaultdict(set)
    for run in runs:
        ids[(str(run["name"]), round(float(run["slot"]), 3))].add(str(run["task_id"]))
    return {slot: sorted(tids) for slot, tids in ids.items() if len(tids) > 1}


@dataclass
class SlotAudit:
    dispatched: int = 0
    duplicates: int = 0
    off_grid: int = 0
    count_repeats: int = 0  # two runs carrying the same total_run_count: run state went backwards
    not_newest: int = 0  # a run for an older slot than the newest due when it was sent (not coalesced)
    lost_claims: int = 0  # claimed (total_run_count moved) but never sent: a crash between claim and send
    coalesced: int = 0  # fell due while no beat led; covered by the one catch-up run at takeover
    unexplained_misses: list[str] | None = None

    def as_dict(self) -> dict[str, int]:
        return {"dispatched": self.dispatched, "duplicates": self.duplicates, "off_grid": self.off_grid,
                "count_repeats": self.count_repeats,
                "not_newest": self.not_newest, "lost_claims": self.lost_claims, "coalesced": self.coalesced,
                "unexplained_misses": len(self.unexplained_misses or [])}


def audit_slots(
    runs: list[dict],
    every: dict[str, float],
    *,
    t0: float,
    until: float,
    outages: list[Outage],
    stored: dict[str, int],
    lag: float = 1.0,
) -> SlotAudit:
    """Check the record against the written rule (docs/guarantees.md); count what it allows.

    For each entry due every E s from t0: every run is for a grid slot t0+kE;
    no slot is sent as two messages; every run is for the newest slot due when
    it was sent (missed slots coalesce into one run); and every grid slot due
    before ``until - lag`` that has no run either fell due inside an outage
    (coalesced) or was claimed and lost by the instance that died right then
    (total_run_count moved past it: at most one per entry per outage).
    """
    audit = SlotAudit(unexplained_misses=[])
    audit.duplicates = len(duplicate_slots(runs))
    grouped = by_name(runs)
    for name, interval in every.items():
        mine = grouped.get(name, [])
        audit.dispatched += len(mine)
        slots = set()
        for run in mine:
            k = (float(run["slot"]) - t0) / interval
            if abs(k - round(k)) > 1e-3 or round(k) < 1:
                audit.off_grid += 1
            slots.add(round(k))
            sent = float(run["sent_at"])
            # Right after an outage the slot a catch-up was merged into runs however late beat gets to it
            # (docs/guarantees.md, spacing rule): that run may be for an older slot than the newest.
            after_outage = any(o.start <= sent <= o.end + interval + lag for o in outages)
            newest = float(run["slot"]) <= sent + 0.01 and float(run["slot"]) > sent - interval - lag
            if not newest and not after_outage:
                audit.not_newest += 1
        counts = sorted(int(run["count"]) for run in mine)
        audit.count_repeats += len(counts) - len(set(counts))
        lost = stored.get(name, 0) - len(set(counts))
        audit.lost_claims += lost
        if lost > len(outages):
            audit.unexplained_misses.append(f"{name}: {lost} claims never sent, but only {len(outages)} outages")
        last_k = int((until - lag - t0) // interval)
        for k in range(1, last_k + 1):
            if k in slots:
                continue
            due = t0 + k * interval
            if any(o.start - interval - 0.05 <= due <= o.end + 0.05 for o in outages):
                audit.coalesced += 1
            else:
                audit.unexplained_misses.append(f"{name}: slot t0+{k * interval:g}s ({due:.3f}) never ran")
    audit.coalesced -= min(audit.coalesced, audit.lost_claims)
    return audit


#: How much earlier than beat's decision a send may be stamped apart from the previous one (the tick decides at
#: its start and stamps each message as it publishes it), so the spacing check measures the rule, not the stamp.
SEND_STAMP_SLACK = 0.1


def close_pairs(runs: list[dict], every: dict[str, float]) -> list[str]:
    """The spacing rule (docs/guarantees.md): consecutive runs of an entry are at least half its period apart.

    Measured between send times, as a user sees them; one line per pair that breaks it.
    """
    out = []
    for name, mine in by_name(runs).items():
        if name not in every:
            continue
        sent = sorted(float(run["sent_at"]) for run in mine)
        for before, after in zip(sent, sent[1:], strict=False):
            if after - before < every[name] / 2 - SEND_STAMP_SLACK:
                out.append(f"{name}: runs {after - before:.3f}s apart at {before:.3f} (period {every[name]:g}s)")
    return out


def smallest_gap_ratio(runs: list[dict], every: dict[str, float]) -> float:
    """The smallest gap between consecutive runs of one entry, as a fraction of its period (for the report)."""
    ratios = [1.0]
    for name, mine in by_name(runs).items():
        if name in every:
            sent = sorted(float(run["sent_at"]) for run in mine)
            ratios += [(after - before) / every[name] for before, after in zip(sent, sent[1:], strict=False)]
    return round(min(ratios), 3)


def report(name: str, figures: dict) -> None:
    """Print the figures (pytest -s shows them); append them to $REDBEAT_RELIABILITY_REPORT for RELIABILITY.md."""
    line = json.dumps({"scenario": name, **figures}, sort_keys=True)
    print(f"\nRELIABILITY {line}")
    out = os.environ.get("REDBEAT_RELIABILITY_REPORT")
    if out:
        with open(out, "a") as fh:
            fh.write(line + "\n")
