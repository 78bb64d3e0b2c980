"""Rolling back to celery-redbeat 2.4.2, and a mixed fleet, with real processes on one redis-server.

Entries are saved a few milliseconds apart within one second: with scores to the microsecond,
celery-redbeat's tick (it fetches scores up to the current whole second, plus one more) would load only
the first of them.  Our beat runs them, is stopped, and celery-redbeat's beat
(its own venv, ``-S redbeat.RedBeatScheduler``) takes over on the same Redis with a real worker.
Every slot from then on must run once, within one second of its time, none skipped, none twice.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta

import pytest
from celery.schedules import schedule
from support.celery_redbeat_venv import celery_redbeat_python

from redbeat import RedBeatSchedulerEntry

pytestmark = [pytest.mark.slow, pytest.mark.compat]

EVERY = 2
NAMES = [f"shared-second-{i}" for i in range(6)]
ON_TIME = 1.0  # a run executes at most this long after its slot


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


def slot_of(at: float, first: float) -> float:
    """The slot a run executing at ``at`` belongs to: the latest one not after it."""
    return first + EVERY * math.floor((at - first + 0.05) / EVERY)


def runs_by_name(runs: list[dict]) -> dict[str, list[float]]:
    by_name: dict[str, list[float]] = {name: [] for name in NAMES}
    for run in runs:
        by_name[str(run["label"])].append(float(run["at"]))
    return {name: sorted(times) for name, times in by_name.items()}


def check_once_per_slot(times: dict[str, list[float]], first_slots: dict[str, float]) -> None:
    for name, runs in times.items():
        slots = [slot_of(at, first_slots[name]) for at in runs]
        offsets = [round(at - first_slots[name], 3) for at in runs]
        assert len(slots) == len(set(slots)), f"{name}: a slot ran twice: {offsets}"


def check_on_time(times: dict[str, list[float]], first_slots: dict[str, float], since: float, until: float) -> None:
    """Every slot in [since, until - ON_TIME] ran once, within ON_TIME of it."""
    for name, runs in times.items():
        first = first_slots[name]
        start = first + EVERY * max(0, math.ceil((since - first) / EVERY))
        slots = [start + EVERY * k for k in range(int((until - ON_TIME - start) // EVERY) + 1)]
        assert slots, "the observation window holds no slot"
        for slot in slots:
            late = [round(at - slot, 3) for at in runs if slot - 0.05 <= at < slot + EVERY - 0.05]
            assert len(late) == 1 and late[0] <= ON_TIME, f"{name}: slot at +{slot - first:.0f}s ran {late} late"


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
    check_once_per_slot(times, first_slots)
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
    check_once_per_slot(times, first_slots)
