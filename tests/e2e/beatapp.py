"""The Celery app the e2e tests run as a real worker and a real ``celery beat -S redbeat.Scheduler``.

Configured from the environment the rig sets (tests/support/rig_app.py); its
one task, ``e2e.record``, appends {label, at, pid} to E2E_RUN_LOG per run.
"""

from __future__ import annotations

import os
import time

from support.rig_app import append_run, rig_app

app = rig_app("beatapp")


@app.task(name="e2e.record")
def record(label: str) -> None:
    append_run({"label": label, "at": time.time(), "pid": os.getpid()})
