"""Rolling back to celery-redbeat 2.4.2, and a mixed fleet, with real processes on one redis-server.

Entries are saved a few milliseconds apart within one second: with scores to the microsecond,
celery-redbeat's tick (it fetches scores up to the current whole second, plus one more) would load only
the first of them.  Our beat runs them, is stopped, and celery-redbeat's beat
(its own venv, ``-S redbeat.RedBeatScheduler``) takes over on the same Redis with a real worker.
Every slot from then on must run once, within one second of when it is due, none skipped, none twice.

When is a slot due?  Our beat's slots are the entry's grid (``last_run_at`` records the slot).
celery-redbeat records the moment it sent instead (docs/scheduler.md), and runs a slot missed during
the hand-over as soon as it starts: from then on its runs are offset from our grid by however late it
started, anywhere from 0 to EVERY seconds.  So the runs are never labelled with our grid's slots (a
celery-redbeat run 1.96 s after a grid slot would look 40 ms early for the next one, and its next run,
a few ms sooner after it, like a second run of that slot); they are checked by their spacing:
two sends of one slot are milliseconds apart, two slots an interval apart.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.schedules import schedule
from support.celery_redbeat_venv import celery_redbeat_python

from redbeat import RedBeatSchedulerEntry

pytestmark = [pytest.mark.slow, pytest.mark.compat, pytest.mark.exclusive]

EVERY = 2
NAMES = [f"shared-second-{i}" for i in range(6)]
ON_TIME = 1.0  # a run executes at most this long after it is due (see check_on_time)


def save_sharing_a_second(app) -> dict[str, float]:
    """Save every entry as code does (no last_run_at, a few ms apart); return each one's first slot.

    An entry saved without last_run_at starts on the whole second (docs/switching.md "Sub-second
    scores"), so entries saved within one second share their slots and scores.
    """
    first_slots = {}
    for name in NAMES:
        entry = RedBeatSchedulerEntry(name, "e2e.record", schedule(timedelta(seconds=EVERY)), args=[name], app=app)
        entry.save()
        stored = RedBeatSchedulerEntry.from_key(entry.key, app=app).last_run_at
        assert stored is not None and stored.microsecond == 0, stored
        first_slots[name] = stored.timestamp() + EVERY
    return first_slots


def runs_by_name(runs: list[dict]) -> dict[str, list[float]]:
    by_name: dict[str, list[float]] = {name: [] for name in NAMES}
    for run in runs:
        by_name[str(run["label"])].append(float(run["at"]))
    return {name: sorted(times) for name, times in by_name.items()}


def offsets(runs: list[float], first: float) -> list[float]:
    return [round(at - first, 3) for at in runs]


def check_never_twice(times: dict[str, list[float]], first_slots: dict[str, float]) -> None:
    """No two runs of an entry less than half an interval apart: that would be one slot sent twice."""
    for name, runs in times.items():
        gaps = [later - earlier for earlier, later in zip(runs, runs[1:], strict=False)]
        assert all(gap >= EVERY / 2 for gap in gaps), f"{name}: a slot ran twice: {offsets(runs, first_slots[name])}"


def check_on_time(times: dict[str, list[float]], first_slots: dict[str, float], since: float, until: float) -> None:
    """From ``since`` to ``until`` every entry runs every EVERY seconds, none more than ON_TIME late.

    Late is measured from when the beat that runs it has it due: the previous run plus EVERY (or,
    for the first run, ``since`` plus EVERY); a skipped slot makes a gap of two intervals.
    """
    for name, runs in times.items():
        marks = [since, *(at for at in runs if since <= at <= until), until]
        late = [round(later - earlier - EVERY, 3) for earlier, later in zip(marks, marks[1:], strict=False)]
        assert max(late) <= ON_TIME, f"{name}: a run came {max(late)} s late: {offsets(runs, first_slots[name])}"


@pytest.mark.timeout(180)
def test_rollback_to_celery_redbeat_runs_every_entry_on_time(celery_rig, writer_app):
    cr_python = celery_redbeat_python()
    celery_rig.worker()
    first_slots = save_sharing_a_second(writer_app)
    ours = celery_rig.beat("ours")
    celery_rig.wait_for(ours, "this instance leads", timeout=20)
    time.sleep(3 * EVERY)
    celery_rig.stop(ours)
    theirs = celery_rig.beat("celery-redbeat", python=cr_python)
    celery_rig.wait_for(theirs, "Starting", timeout=60)
    ready = time.time() + 1.0  # it takes the lock, then ticks
    time.sleep(5 * EVERY)
    until = time.time()
    assert "Sending due task" in theirs.output(), theirs.output()[-3000:]
    times = runs_by_name(celery_rig.runs())
    check_never_twice(times, first_slots)
    check_on_time(times, first_slots, since=ready, until=until)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("first", ["ours", "celery-redbeat"])
def test_celery_redbeat_and_ours_never_both_lead(celery_rig, writer_app, first):
    """Both beats on one Redis, started in either order: they share the lock key, so no slot runs twice."""
    pythons = {"ours": None, "celery-redbeat": celery_redbeat_python()}
    celery_rig.worker()
    first_slots = save_sharing_a_second(writer_app)
    for which in sorted(pythons, key=lambda name: name != first):
        proc = celery_rig.beat(which, python=pythons[which])
        celery_rig.wait_for(proc, "Starting", timeout=60)
        time.sleep(EVERY)
    time.sleep(4 * EVERY)
    times = runs_by_name(celery_rig.runs())
    assert all(times.values()), f"an entry never ran: {times}"
    check_never_twice(times, first_slots)
