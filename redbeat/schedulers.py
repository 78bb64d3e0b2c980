"""celery-redbeat's module path: ``redbeat.schedulers`` re-exports the public API."""

from __future__ import annotations

from typing import Any

from celery.signals import beat_init

from .client import REDBEAT_INTERNAL_OPTIONS, RetryingConnection, get_redis
from .config import RedBeatConfig, ensure_conf
from .entry import RedBeatSchedulerEntry
from .lock import EXTEND_TO_SCRIPT as LUA_EXTEND_TO_SCRIPT
from .scheduler import RedBeatScheduler, logger

__all__ = [
    "LUA_EXTEND_TO_SCRIPT",
    "REDBEAT_INTERNAL_OPTIONS",
    "RedBeatConfig",
    "RedBeatScheduler",
    "RedBeatSchedulerEntry",
    "RetryingConnection",
    "acquire_distributed_beat_lock",
    "ensure_conf",
    "get_redis",
]


@beat_init.connect
def acquire_distributed_beat_lock(sender: Any = None, **kwargs: Any) -> None:
    """On ``celery beat`` start: try the lock once and let the tick wait on change notifications.

    celery-redbeat blocked here until it got the lock, and Celery swallowed any
    error raised, leaving ``scheduler.lock`` None (its #285).  Ours never
    blocks or raises: an instance that does not lead is a standby and
    competes for the lock on every tick.
    """
    scheduler = getattr(sender, "scheduler", None)
    if not isinstance(scheduler, RedBeatScheduler):
        return
    scheduler.wait_for_changes = True
    scheduler.start_metrics()
    try:
        scheduler._try_lead()
    except Exception:
        logger.exception("beat: taking the lock at start-up failed; will retry on the next tick")
