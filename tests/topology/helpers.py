"""Helpers of the topology tests: a beat app on a given URL, and the installed redbeat-apply."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from celery import Celery
from support.beat import current, make_app, recording_scheduler_class
from support.redis_proc import env_without_redbeat

UTC = timezone.utc
Recording = recording_scheduler_class()

#: Two schedules, as a team would keep them in git.
MANIFEST = """\
schedules:
  - {name: ping, task: demo.tasks.ping, every: 30s}
  - {name: nightly, task: demo.tasks.report, cron: "0 3 * * *"}
"""
MANIFEST_NAMES = ("nightly", "ping")


def redbeat_apply(url: str, *args: str, command: str | None = None,
                  check: bool = False) -> subprocess.CompletedProcess[str]:
    """The installed ``redbeat-apply [command]`` (next to this python), with ``--redis-url url``."""
    executable = Path(sys.executable).with_name("redbeat-apply")
    result = subprocess.run(
        [str(executable), *([command] if command else []), "--redis-url", url, *args],
        capture_output=True, text=True, timeout=60, env=env_without_redbeat(),
    )
    if check and result.returncode != 0:
        raise AssertionError(f"redbeat-apply exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def apply_twice(url: str, manifests: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], ...]:
    """Apply, then apply again: the second run must find nothing to do."""
    first = redbeat_apply(url, *args, str(manifests), check=True)
    assert "Plan: 2 to create, 0 to update, 0 to delete" in first.stdout, first.stdout
    second = redbeat_apply(url, *args, str(manifests), check=True)
    assert second.stdout.strip() == "No changes. 2 unchanged.", second.stdout
    return first, second


@contextmanager
def beat_app(url: str, *, now: datetime | None = None, **conf: Any) -> Iterator[Celery]:
    """A Celery app (memory:// broker) whose redbeat uses ``url``; current while in the block.

    ``now``: pin ``app.now`` there (``app.now.advance(s)`` moves it); None: the real clock.
    """
    app = make_app(url, now=now, **conf)
    with current(app):
        try:
            yield app
        finally:
            client = getattr(app, "redbeat_redis", None)
            closer = getattr(getattr(client, "wrapped_connection", client), "close", None)
            if closer is not None:
                closer()


def pinned_now() -> datetime:
    """A pinned 'now' a minute ahead of the wall clock, so entries written now are due at it."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)


def watch_finds_a_hand_edit(url: str, manifests: Path, admin: Any, prefix: str = "redbeat:") -> bool:
    """The watch mode's held state on ``url`` finds an unpublished hand edit made through ``admin`` at its next
    resync; returns whether it had a change feed (Redis reported the edit) or compared fingerprints."""
    from reconciler.sync.incremental import Incremental
    from reconciler.sync.reconcile import PlanOptions, connect, load

    incremental = Incremental([], connect(url, prefix), PlanOptions())
    try:
        incremental.held.replace_desired(load([manifests]))
        incremental.subscribe()
        incremental.reconcile()
        incremental.held.resync()
        admin.hset(f"{prefix}{MANIFEST_NAMES[0]}", "definition", '{"task": "by hand"}')
        incremental.drain(timeout=0.0)
        report = incremental.held.resync()
        assert report.differing == 1 and report.tracked is incremental.tracking
        assert [c.name for c in incremental.reconcile().plan.changes] == [MANIFEST_NAMES[0]]
        return incremental.tracking
    finally:
        incremental.close()
