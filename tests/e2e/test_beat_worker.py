"""Real ``celery beat -S redbeat.Scheduler`` + a real worker: tasks run at their due times, once per slot.

An entry due every second is saved with ``last_run_at = t0``, so its slots
are t0+1, t0+2, ...  The worker records when each run executed.  Runs come
in slot order, so the i-th run belongs to slot t0+i: each must execute at
or after its slot and within LATE of it.  A slot dispatched twice puts a
run *before* the next run's slot; a skipped slot makes the following runs
a whole second late, and leaves the count short.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from celery.schedules import schedule

from redbeat import RedBeatSchedulerEntry

EVERY = 1.0
LATE = 1.5  # a run may execute at most this long after its due time
OBSERVE = 6.0  # seconds of runs each test looks at


def save_every_second(app, name: str = "tick") -> float:
    """Save an entry due every EVERY seconds, phase t0 (its first slot is t0 + EVERY); return t0."""
    t0 = datetime.now(timezone.utc)
    RedBeatSchedulerEntry(
        name, "e2e.record", schedule(timedelta(seconds=EVERY)), args=[name], app=app, last_run_at=t0
    ).save()
    return t0.timestamp()


def check_runs_on_slots(runs: list[dict], *, t0: float, until: float) -> None:
    times = sorted(float(run["at"]) for run in runs)
    slots = [t0 + EVERY * (i + 1) for i in range(len(times))]
    # Every slot that fell due at least LATE before the end has run ...
    settled = int((until - LATE - t0) // EVERY)
    assert len(times) >= settled, f"{len(times)} runs, but {settled} slots fell due by {until - t0:.1f}s: {times}"
    # ... no more runs than slots that fell due ...
    assert len(times) <= int((until - t0) // EVERY), f"more runs than slots: {[t - t0 for t in times]}"
    # ... and the i-th run executed on time for the i-th slot (a duplicate runs early for its index).
    lateness = [round(at - slot, 3) for at, slot in zip(times, slots, strict=False)]
    assert all(-0.01 <= late < LATE for late in lateness), f"run - slot, per slot: {lateness}"
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    assert all(gap > EVERY / 2 for gap in gaps), f"two runs for one slot: gaps {gaps}"


def sends(log: str) -> int:
    return log.count("Sending due task tick (e2e.record)")


@pytest.mark.exclusive
@pytest.mark.slow
@pytest.mark.timeout(40)
def test_beat_runs_a_saved_entry_on_time_once_per_slot(celery_rig, writer_app):
    celery_rig.worker()
    beat = celery_rig.beat()
    celery_rig.wait_for(beat, "this instance leads", timeout=20)

    t0 = save_every_second(writer_app)
    time.sleep(OBSERVE)
    until = time.time()

    check_runs_on_slots([r for r in celery_rig.runs() if r["at"] <= until], t0=t0, until=until)
    stored = RedBeatSchedulerEntry.from_key("redbeat:tick", app=writer_app)
    assert stored.total_run_count >= len([r for r in celery_rig.runs() if r["at"] <= until])


@pytest.mark.exclusive
@pytest.mark.slow
@pytest.mark.timeout(40)
def test_two_beats_only_the_leader_dispatches(celery_rig, writer_app):
    celery_rig.worker()
    first, second = celery_rig.beat("beat-1"), celery_rig.beat("beat-2")
    for beat in (first, second):
        celery_rig.wait_for(beat, "beat: Starting...", timeout=20)

    t0 = save_every_second(writer_app)
    time.sleep(OBSERVE)
    until = time.time()

    check_runs_on_slots([r for r in celery_rig.runs() if r["at"] <= until], t0=t0, until=until)
    counts = sorted([sends(first.output()), sends(second.output())])
    assert counts[0] == 0 and counts[1] >= OBSERVE - LATE, f"due-task sends per beat: {counts}"
    roles = sorted("leader" if "this instance leads" in b.output() else "standby" for b in (first, second))
    assert roles == ["leader", "standby"]
    assert "Standing by" in (first.output() + second.output())
