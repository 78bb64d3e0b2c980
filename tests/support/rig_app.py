"""What the Celery apps of the real-process tests share: their settings from the rig's environment, the run log.

tests/e2e/beatapp.py and tests/reliability/relapp.py run as real workers and
beats under :class:`support.celery_rig.CeleryRig`, which sets E2E_REDIS_URL
(broker and schedule store), E2E_LOCK_TIMEOUT (redbeat_lock_timeout) and
E2E_RUN_LOG (the file every run appends one JSON line to).  The in-process
``writer`` apps of the fixtures write entries as users' code does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import Celery


def rig_app(main: str, **conf: Any) -> Celery:
    """The app a rig process runs, configured from the rig's environment; ``conf`` adds or overrides settings."""
    app = Celery(main)
    app.conf.update(
        broker_url=os.environ["E2E_REDIS_URL"],
        broker_connection_retry_on_startup=True,
        redbeat_redis_url=os.environ["E2E_REDIS_URL"],
        redbeat_lock_timeout=float(os.environ.get("E2E_LOCK_TIMEOUT", "3")),
        task_ignore_result=True,
        result_expires=None,
        timezone="UTC",
        **conf,
    )
    return app


def append_run(record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line to E2E_RUN_LOG, in one write (workers may share the file)."""
    line = json.dumps(record) + "\n"
    fd = os.open(os.environ["E2E_RUN_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@contextmanager
def writer_app(main: str, redis_url: str) -> Iterator[Celery]:
    """An in-process app writing entries to ``redis_url`` as users' code does; its Redis client closed after."""
    app = Celery(main, set_as_current=False)
    app.conf.update(redbeat_redis_url=redis_url, timezone="UTC", broker_url=redis_url)
    try:
        yield app
    finally:
        client = getattr(app, "redbeat_redis", None)
        if client is not None:
            client.close()
