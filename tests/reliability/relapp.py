"""The Celery app the reliability scenarios run as real workers and real ``celery beat -S redbeat.Scheduler``.

Configured from the environment the rig sets (tests/support/rig_app.py) plus:

* REL_RETRY_PERIOD: when set, ``redbeat_redis_options = {"retry_period": ...}``.
* REL_STALL_FILE: fault injection in beat only: when this file exists, the
  beat that has just claimed runs (the settle script returned) removes it
  and stops itself (SIGSTOP) *before* it sends them: the one instant where
  claim-before-send matters.

Exact slots.  In the beat process a ``before_task_publish`` handler finds
the entry being sent (the ``entry`` local of celery's ``Scheduler.apply_async``
on the stack) and puts into the message headers: the slot it was claimed for
(``entry.last_run_at``, which redbeat sets to the slot), its
``total_run_count``, the sending beat's pid and the send time.  The worker's
``rel.record`` task appends them, with its own task id and execution time,
as one JSON line to E2E_RUN_LOG: the record every scenario is checked on.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from celery.signals import before_task_publish
from support.rig_app import append_run, rig_app

app = rig_app("relapp", broker_connection_max_retries=None, worker_prefetch_multiplier=16)
if os.environ.get("REL_RETRY_PERIOD"):
    app.conf.redbeat_redis_options = {"retry_period": float(os.environ["REL_RETRY_PERIOD"])}


def _entry_being_sent():
    frame = sys._getframe(1)
    while frame is not None:
        entry = frame.f_locals.get("entry")
        if entry is not None and hasattr(entry, "last_run_at") and hasattr(entry, "total_run_count"):
            return entry
        frame = frame.f_back
    return None


@before_task_publish.connect
def _stamp_slot(sender=None, headers=None, **_kwargs):
    if headers is None:
        return
    entry = _entry_being_sent()
    slot = getattr(entry, "last_run_at", None)
    headers["rel_slot"] = slot.timestamp() if slot is not None else None
    headers["rel_count"] = getattr(entry, "total_run_count", None)
    headers["rel_beat_pid"] = os.getpid()
    headers["rel_sent_at"] = time.time()


def _install_stall() -> None:
    stall_file = os.environ.get("REL_STALL_FILE")
    if not stall_file:
        return
    from redbeat.store import EntryStore

    original = EntryStore.settle

    def settle_then_maybe_stall(self, steps, **kwargs):
        applied = original(self, steps, **kwargs)
        claimed = applied is not None and any(
            ok and step.step.value == "c" for step, ok in zip(steps, applied, strict=False)
        )
        if claimed and os.path.exists(stall_file):
            os.unlink(stall_file)
            print(f"relapp: stalled after claiming, before sending (pid {os.getpid()})", flush=True)
            os.kill(os.getpid(), signal.SIGSTOP)
            print(f"relapp: resumed after the stall (pid {os.getpid()})", flush=True)
        return applied

    EntryStore.settle = settle_then_maybe_stall


_install_stall()


@app.task(name="rel.record", bind=True)
def record(self, name: str, *args, **kwargs) -> None:
    request = self.request
    append_run({
        "name": name,
        "slot": getattr(request, "rel_slot", None),
        "count": getattr(request, "rel_count", None),
        "beat_pid": getattr(request, "rel_beat_pid", None),
        "sent_at": getattr(request, "rel_sent_at", None),
        "task_id": request.id,
        "kwargs": kwargs,
        "at": time.time(),
    })  # fmt: skip
