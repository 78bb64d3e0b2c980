"""The Celery app the e2e tests run as a real worker and a real ``celery beat -S redbeat.Scheduler``.

Configured from the environment the test sets: E2E_REDIS_URL (broker and
schedule store), E2E_LOCK_TIMEOUT (redbeat_lock_timeout), E2E_RUN_LOG (the
file ``e2e.record`` appends one JSON line per run to).
"""

from __future__ import annotations

import json
import os
import time

from celery import Celery

app = Celery("beatapp")
app.conf.update(
    broker_url=os.environ["E2E_REDIS_URL"],
    broker_connection_retry_on_startup=True,
    redbeat_redis_url=os.environ["E2E_REDIS_URL"],
    redbeat_lock_timeout=float(os.environ.get("E2E_LOCK_TIMEOUT", "3")),
    task_ignore_result=True,
    result_expires=None,
    timezone="UTC",
)


@app.task(name="e2e.record")
def record(label: str) -> None:
    line = json.dumps({"label": label, "at": time.time(), "pid": os.getpid()}) + "\n"
    fd = os.open(os.environ["E2E_RUN_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
