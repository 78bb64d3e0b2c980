"""Rolling back to celery-redbeat 2.4.2, and a mixed fleet, with real processes on one redis-server.

Entries are saved a few milliseconds apart within one second: with scores to the microsecond,
celery-redbeat's tick (it fetches scores up to the current whole second, plus one more) would load only
the first of them.  Our beat runs them, is stopped, and celery-redbeat's beat
(its own venv, ``-S redbeat.RedBeatScheduler``) takes over on the same Redis with a real worker.
Every slot from then on must run once, within one second of when it is due, none skipped, none twice.

When is a slot due?  Our beat's slots are the entry's grid (``last_run_at`` records the slot).
celery-redbeat records the moment it sent instead (docs/scheduler.md), and runs a slot missed during
the hand-over as soon as it starts: from then on its runs are offset from our grid by however late it
started, anywhere from 0 to EVERY seconds.  So runs are never labelled with our grid's slots (a
celery-redbeat run 1.96 s after a grid slot would look 40 ms early for the next one, and its next run,
a few ms sooner after it, like a second run of that slot).  Each run carries, from the beat that sent
it, its run count and the slot that beat recorded for it (tests/reliability/relapp.py stamps them into
the message): a run is due one interval after the slot of the run before it, whoever sent either, and
counts one more (tests/support/run_chain.py).  At the hand-over, the run state our stopped beat left
must be its last send: that is what celery-redbeat reads.
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

import pytest
import redis
from celery.schedules import schedule
from support.celery_redbeat_venv import celery_redbeat_python
from support.celery_rig import TESTS_DIR, CeleryRig, Proc
from support.redis_proc import wait_until
from support.run_chain import chain_problems, handover_problems, runs_by_name

from redbeat import RedBeatSchedulerEntry

pytestmark = [pytest.mark.slow, pytest.mark.compat, pytest.mark.exclusive]

EVERY = 2
NAMES = [f"shared-second-{i}" for i in range(6)]
ON_TIME = 1.0  # a run is sent at most this long after it is due (and its beat leads)
LOCK_KEY = "redbeat::lock"


@pytest.fixture
def rel_rig(fresh_redis, tmp_path):
    """A worker and beats of tests/reliability/relapp.py: each run records its count, slot, beat and send time."""
    rig = CeleryRig(fresh_redis.url, tmp_path, app="relapp", app_dir=TESTS_DIR / "reliability")
    try:
        yield rig
    finally:
        rig.stop_all()


@pytest.fixture
def client(fresh_redis):
    client = fresh_redis.client()
    yield client
    client.close()


def save_sharing_a_second(app) -> dict[str, float]:
    """Save every entry as code does (no last_run_at, a few ms apart); return the last_run_at each was saved with.

    An entry saved without last_run_at starts on the whole second (docs/switching.md "Sub-second
    scores"), so entries saved within one second share their slots and scores.
    """
    saved = {}
    for name in NAMES:
        entry = RedBeatSchedulerEntry(name, "rel.record", schedule(timedelta(seconds=EVERY)), args=[name], app=app)
        entry.save()
        stored = RedBeatSchedulerEntry.from_key(entry.key, app=app).last_run_at
        assert stored is not None and stored.microsecond == 0, stored
        saved[name] = stored.timestamp()
    return saved


def start_leading(rig: CeleryRig, client: redis.Redis, which: str, python=None) -> tuple[Proc, float]:
    """Start a beat on a Redis where no beat holds the lock; return it and when it took the lock."""
    assert not client.exists(LOCK_KEY), "the beat stopped before did not release the lock"
    proc = rig.beat(which, python=python)
    wait_until(lambda: client.exists(LOCK_KEY) or not proc.alive(), timeout=60, message=f"{which} to take the lock")
    assert proc.alive(), proc.output()[-3000:]
    return proc, time.time()


def wait_for_sent_runs(rig: CeleryRig, app) -> None:
    """Wait (at most 10 s) until the worker recorded every run the stored run counts say was sent."""

    def recorded() -> bool:
        runs = runs_by_name(rig.runs())
        counts = {name: RedBeatSchedulerEntry.from_key(f"redbeat:{name}", app=app).total_run_count for name in NAMES}
        return all(runs.get(name) and runs[name][-1].count >= counts[name] for name in NAMES)

    with contextlib.suppress(AssertionError):  # a run counted and never sent: the checks after this say which
        wait_until(recorded, timeout=10, message="the worker to record the runs the run state counts")


def check_handover(rig: CeleryRig, app) -> None:
    """The run state the stopped beat left is each entry's last send, the one celery-redbeat goes on from."""
    wait_for_sent_runs(rig, app)
    runs = runs_by_name(rig.runs())
    problems = []
    for name in NAMES:
        assert runs.get(name), f"{name} never ran before the hand-over"
        stored = RedBeatSchedulerEntry.from_key(f"redbeat:{name}", app=app)
        problems += handover_problems(runs[name][-1], stored.last_run_at, stored.total_run_count)
    assert not problems, "\n".join(problems)


def check_chains(rig: CeleryRig, saved: dict[str, float], until: float, **timing) -> None:
    runs = runs_by_name(rig.runs())
    problems = []
    for name in NAMES:
        mine = runs.get(name, [])
        if not mine:
            problems.append(f"{name} never ran")
        found = chain_problems(mine, every=EVERY, saved_at=saved[name], until=until, **timing)
        sent = [(run.count, round(run.sent_at - saved[name], 3), run.beat_pid) for run in mine]
        problems += [f"{name}: {problem}; runs (count, +s sent, beat): {sent}" for problem in found]
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(180)
def test_rollback_to_celery_redbeat_runs_every_entry_on_time(rel_rig, client, writer_app):
    cr_python = celery_redbeat_python()
    rel_rig.worker()
    saved = save_sharing_a_second(writer_app)
    ours, ours_leads = start_leading(rel_rig, client, "ours")
    time.sleep(3 * EVERY)
    rel_rig.stop(ours)
    check_handover(rel_rig, writer_app)
    theirs, theirs_leads = start_leading(rel_rig, client, "celery-redbeat", python=cr_python)
    time.sleep(5 * EVERY)
    until = time.time()
    rel_rig.stop(theirs)
    wait_for_sent_runs(rel_rig, writer_app)
    assert any(run["beat_pid"] == theirs.pid for run in rel_rig.runs()), theirs.output()[-3000:]
    check_chains(rel_rig, saved, until, on_time=ON_TIME,
                 leading_since={ours.pid: ours_leads, theirs.pid: theirs_leads})


@pytest.mark.timeout(180)
@pytest.mark.parametrize("first", ["ours", "celery-redbeat"])
def test_celery_redbeat_and_ours_never_both_lead(rel_rig, writer_app, first):
    """Both beats on one Redis, started in either order: they share the lock key, so no slot runs twice."""
    pythons = {"ours": None, "celery-redbeat": celery_redbeat_python()}
    rel_rig.worker()
    saved = save_sharing_a_second(writer_app)
    beats = []
    for which in sorted(pythons, key=lambda name: name != first):
        beats.append(rel_rig.beat(which, python=pythons[which]))
        rel_rig.wait_for(beats[-1], "Starting", timeout=60)
        time.sleep(EVERY)
    time.sleep(4 * EVERY)
    until = time.time()
    for beat in reversed(beats):
        rel_rig.stop(beat)
    wait_for_sent_runs(rel_rig, writer_app)
    check_chains(rel_rig, saved, until)
